"""The terminal's REST client: one project of a (possibly remote) Assay, reached over plain HTTP.

Where it connects: `--base-url`, else `ASSAY_BASE_URL` / `ELLUMINATE_BASE_URL`, else `base_url` in the
config file; the key: `ASSAY_API_KEY` / `ELLUMINATE_API_KEY`, else `api_key` in the config file. The config
file is TOML at `ASSAY_CONFIG` or `<user config dir>/assay/config.toml`.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import click
import httpx2
import platformdirs

URL_VARS = ("ASSAY_BASE_URL", "ELLUMINATE_BASE_URL")
KEY_VARS = ("ASSAY_API_KEY", "ELLUMINATE_API_KEY")
# The SDK's rule: 429 and 503 mean "nothing was done, try again", even for a POST.
RETRY_STATUSES = (429, 503)


class CliError(click.ClickException):
    """Nothing could be evaluated (bad setup, unreachable server, missing resource): exit code 2, so a CI
    gate tells it apart from a failed threshold (1)."""

    exit_code = 2


class ApiError(CliError):
    """A refused request, with the server's `detail` sentence."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(f"{detail} (HTTP {status})")
        self.status = status
        self.body = body if isinstance(body, dict) else {}


def config_path() -> Path:
    return Path(os.environ.get("ASSAY_CONFIG") or Path(platformdirs.user_config_dir("assay")) / "config.toml")


def _config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"{path}: not a readable TOML file: {exc}") from None


def _first_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def configured_url(base_url: str | None) -> str | None:
    """The Assay to talk to, or None when nothing names one."""
    return base_url or _first_env(URL_VARS) or _config().get("base_url")


def configured_key() -> str | None:
    return _first_env(KEY_VARS) or _config().get("api_key")


@dataclass
class Assay:
    """One project's REST API; `detail` of any refusal becomes an `ApiError`."""

    base_url: str
    key: str
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        # Proxies from the environment apply, except to this machine (an embedded or local Assay).
        local = {f"all://{host}": None for host in ("127.0.0.1", "localhost", "[::1]")}
        self._http = httpx2.Client(headers={"X-API-Key": self.key}, timeout=self.timeout, mounts=local)
        self._project_id: int | None = None

    @classmethod
    def connect(cls, base_url: str | None) -> Assay:
        url = configured_url(base_url)
        if not url:
            raise CliError(f"No Assay to talk to: pass --base-url or set {URL_VARS[0]}")
        key = configured_key()
        if not key:
            raise CliError(f"No API key: set {KEY_VARS[0]} (or {KEY_VARS[1]}) or api_key in {config_path()}")
        return cls(url, key)

    @property
    def project_id(self) -> int:
        if self._project_id is None:
            projects = self.request("GET", f"{self.base_url}/api/v0/projects")["items"]
            if not projects:
                raise CliError("This key sees no project")
            self._project_id = projects[0]["id"]
        return self._project_id

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v0/projects/{self.project_id}/{path.lstrip('/')}"

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self._send(method, url, **kwargs)
        if response.is_success:
            return response.json() if response.content else None
        raise _refusal(response)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        for attempt in range(4):
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx2.TransportError as exc:
                if attempt == 3 or not isinstance(exc, httpx2.ConnectError):
                    raise CliError(f"Cannot reach {self.base_url}: {exc}") from None
            else:
                if response.status_code not in RETRY_STATUSES or attempt == 3:
                    return response
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", self.url(path), params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", self.url(path), json=body, params=params)

    def upload_rows(self, collection_id: int, rows: list[dict[str, Any]], skip_existing: bool) -> list[Any]:
        """Add rows as the SDK does: one multipart JSONL part named `file`; returns the entries created."""
        body = "\n".join(json.dumps(row, ensure_ascii=False) for row in rows).encode()
        files = {"file": ("variables.jsonl", body, "application/jsonl")}
        params = {"skip_existing": "true" if skip_existing else "false"}
        return self.request(
            "POST", self.url(f"collections/{collection_id}/entries/batches"), files=files, params=params
        )

    def download(self, path: str, out: BinaryIO, **params: Any) -> None:
        """Stream a download (an export can be large) into `out`."""
        with self._http.stream("GET", self.url(path), params=params) as response:
            if not response.is_success:
                response.read()
                raise _refusal(response)
            for chunk in response.iter_bytes():
                out.write(chunk)

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list, page by page (pages are numbered from 1, `count` is the total)."""
        page, seen = 1, 0
        while True:
            data = self.get(path, page=page, **params)
            yield from data["items"]
            seen += len(data["items"])
            if not data["items"] or seen >= data["count"]:
                return
            page += 1

    def find(self, path: str, name: str, field: str = "name") -> dict[str, Any] | None:
        """The resource whose name is exactly `name` (lists filter by exact name), or None."""
        items = self.get(path, **{field: name})["items"]
        return items[0] if items else None


def _refusal(response: httpx2.Response) -> ApiError:
    body = _json_or_none(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    return ApiError(response.status_code, str(detail or response.text or response.reason_phrase), body)


def _json_or_none(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
