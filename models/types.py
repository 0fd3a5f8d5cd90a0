"""Column types of our own."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)


class EncryptedText(TypeDecorator[str]):
    """Text stored encrypted (`services.crypto`); Python code only ever sees the plaintext.

    A value no configured key opens reads as None (logged), so a list of configs still answers and a
    call with it fails as unauthenticated instead of the whole request failing.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        from services.crypto import keyring  # services sit above models; import when first used

        return None if value is None else keyring().encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        from services.crypto import UndecryptableSecret, keyring

        if value is None:
            return None
        try:
            return keyring().decrypt(value)
        except UndecryptableSecret as exc:
            log.error("%s", exc)
            return None
