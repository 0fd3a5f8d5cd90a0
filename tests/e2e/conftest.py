"""A real Assay server process (gunicorn) on a fresh database, and a project key made by the CLI."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, _pg_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def fresh_pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return _pg_url(name)


def assay_cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout


@dataclass
class LiveServer:
    base_url: str
    env: dict[str, str]

    def new_project(self, name: str) -> tuple[int, str]:
        """Create a project through the CLI; returns (id, key)."""
        out = assay_cli(self.env, "projects", "create", name)
        project_id = int(re.search(r"project (\d+)", out).group(1))  # type: ignore[union-attr]
        key = re.search(r"API key \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]
        return project_id, key


def _backend_url(tmp: Path, worker_name: str) -> str:
    if os.environ.get("ASSAY_E2E_DB", "postgresql") == "sqlite":
        return f"sqlite:///{tmp / 'e2e.db'}"
    return fresh_pg_database(f"assay_e2e_{worker_name}")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    env = {**os.environ, "DATABASE_URL": _backend_url(tmp, "api"), "PYTHONUNBUFFERED": "1"}
    # The 0.7.x SDKs route even localhost through a proxy taken from the environment.
    for var in ("ELLUMINATE_API_KEY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(var, None)
    port = free_port()
    log = open(tmp / "api.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--port", str(port), "--workers", "1", "--threads", "16"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base_url}/api/v0/openapi.json", proc=proc)
        yield LiveServer(base_url, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
