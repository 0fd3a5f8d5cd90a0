"""Provider keys encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, with rotation.

Where the keys come from, in order (every source present is tried when decrypting; the first encrypts):
1. `ASSAY_ENCRYPTION_KEYS`: Fernet keys, comma-separated, newest first. To rotate, put a new key first,
   keep the old ones after it, and run `assay rotate-keys` (or let rows be re-encrypted when rewritten).
2. A key derived (HKDF-SHA256) from `ASSAY_SECRET_KEY`, which every API process must share already.
3. Otherwise a key file in the user data folder (`encryption_key`, owner-only), made on first use: fine
   for one machine (`assay up`, tests), not for API and workers on different hosts, which must set 1 or 2.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import platformdirs
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.settings import Settings, load_settings

log = logging.getLogger(__name__)

PREFIX = "fernet:"
"""Marks an encrypted value, so a row written before encryption existed is told apart for sure."""
PLACEHOLDER_SECRETS = frozenset({"change-me", "dev-only-change-me", "changeme", "secret"})
KEY_FILE = "encryption_key"


class UndecryptableSecret(ValueError):
    """No configured key opens the stored value (the keys differ between processes, or one was dropped)."""


def derived_key(secret: str) -> bytes:
    """The Fernet key derived from `ASSAY_SECRET_KEY`."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"assay llm_configs.api_key")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def _file_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # one creator among racing processes
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as file:
                file.write(Fernet.generate_key())
    return path.read_bytes().strip()


def _configured_keys(settings: Settings) -> list[bytes]:
    keys = [k.strip().encode() for k in settings.encryption_keys.split(",") if k.strip()]
    if settings.secret_key and settings.secret_key not in PLACEHOLDER_SECRETS:
        keys.append(derived_key(settings.secret_key))
    return keys


def keys_for(settings: Settings, data_dir: Path | None = None) -> list[bytes]:
    """Every key of the sources above, the one that encrypts first."""
    keys = _configured_keys(settings)
    folder = data_dir or Path(platformdirs.user_data_dir("assay"))
    if not keys or (folder / KEY_FILE).exists():
        keys.append(_file_key(folder))
    return keys


class Keyring:
    """Encrypts with the first key, decrypts with any."""

    def __init__(self, keys: list[bytes], configured: bool = True) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.configured = configured
        """Whether the encrypting key was set by the operator (not this machine's key file)."""

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str) -> str:
        """The plaintext; a value without the prefix was stored before encryption and is returned as is."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret(
                "no configured key decrypts this provider key: ASSAY_ENCRYPTION_KEYS (or ASSAY_SECRET_KEY) "
                "must be the same on every API and worker process"
            ) from None

    def rotate(self, stored: str) -> str:
        """The value encrypted with the current first key (plaintext from before encryption too)."""
        if not stored.startswith(PREFIX):
            return self.encrypt(stored)
        return PREFIX + self._fernet.rotate(stored[len(PREFIX) :].encode()).decode()


_current: Keyring | None = None


def configure(settings: Settings) -> None:
    """Use `settings`' keys in this process (the API and the CLI call it; otherwise the environment's)."""
    global _current
    _current = Keyring(keys_for(settings), configured=bool(_configured_keys(settings)))


def keyring() -> Keyring:
    if _current is None:
        configure(load_settings())
    assert _current is not None
    return _current
