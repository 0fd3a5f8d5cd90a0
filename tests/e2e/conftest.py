"""A real Assay server process (gunicorn) on a fresh database, and a project key made by the CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli.up import free_port, redis_server_binary, wait_for_url
from tests.conftest import create_pg_database, drop_pg_database, fake_host


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    """`wait_for_url`, failing at once if `proc` exits first."""
    wait_for_url(url, timeout, lambda: None if proc is None or proc.poll() is None else f"pid {proc.pid}")


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
    return create_pg_database(f"assay_e2e_{worker_name}_{os.getpid()}")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    env = {
        **os.environ,
        "DATABASE_URL": _backend_url(tmp, "api"),
        "PYTHONUNBUFFERED": "1",
        "ASSAY_LLM_ALLOWED_HOSTS": "127.0.0.1",  # models the tests start on loopback
        "ASSAY_RATE_LIMIT": "",  # SDK polling loops; the limit itself is tested in tests/api/test_throttling.py
    }
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


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Stack:
    """A whole Assay on this machine: fake model, API, workers and sweeper, on PostgreSQL and Redis."""

    base_url: str
    env: dict[str, str]
    fake: Any
    tmp: Path
    workers: list[subprocess.Popen]
    procs: list[subprocess.Popen]
    redis: OwnRedis | None = None
    # Each worker's /metrics URL (ASSAY_WORKER_METRICS_PORT), by the name it was started with.
    worker_metrics: dict[str, str] = field(default_factory=dict)

    def new_project(self, name: str) -> tuple[int, str]:
        return LiveServer(self.base_url, self.env).new_project(name)

    def start_worker(self, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"worker-{name}.log", "w")  # noqa: SIM115
        port = free_port()
        self.worker_metrics[name] = f"http://127.0.0.1:{port}/metrics"
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "--concurrency", "1", "--hostname", f"{name}@%h"],
            env={**self.env, "ASSAY_WORKER_METRICS_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        self.procs.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker's whole process group (the Celery parent and its pool child)."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _redis_db() -> int:
    return 1 + os.getpid() % 15


class OwnRedis:
    """A redis-server of the test's own on a free port (never the shared 6379), so a test may stop it."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([redis_server_binary(), *args, "--dir", str(self.tmp)], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost host would: nothing is saved, clients see the port refuse."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A module's stack; a test module may set `STACK_ENV` to change settings (limits, leases),
    `STACK_OWN_REDIS = True` to get a Redis of its own (`stack.redis`) that its tests may stop, and
    `STACK_SWEEPER = False` to run without the sweeper (which re-sends run messages)."""
    from fakellm.testing import FakeLLM

    tmp = tmp_path_factory.mktemp("stack")
    own_redis = OwnRedis(tmp) if getattr(request.module, "STACK_OWN_REDIS", False) else None
    if own_redis is not None:
        own_redis.start()
        redis_url = own_redis.url
    else:
        redis_url = f"redis://127.0.0.1:6379/{_redis_db()}"
        subprocess.run(["redis-cli", "-n", str(_redis_db()), "flushdb"], check=True, capture_output=True)
    fake = FakeLLM()
    fake.start()
    db_name = f"assay_stack_{os.getpid()}_{request.module.__name__.rsplit('.', 1)[-1]}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "DATABASE_URL": create_pg_database(db_name),
        "ASSAY_LLM_BASE_URL": fake.base_url,
        "ASSAY_LLM_ALLOWED_HOSTS": fake_host(fake),
        "ASSAY_RATE_LIMIT": "",
        "ASSAY_LLM_MODEL": "fake-model",
        "OPENAI_API_KEY": "sk-test",
        "ASSAY_JOB_LEASE_SECONDS": "3",
        "ASSAY_JOB_CHUNK_SIZE": "5",
        **getattr(request.module, "STACK_ENV", {}),
    }
    for var in ("ELLUMINATE_API_KEY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(var, None)
    assay_cli(env, "migrate")
    port = free_port()
    procs: list[subprocess.Popen] = []
    api_log = open(tmp / "api.log", "w")  # noqa: SIM115
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "cli", "api", "--port", str(port), "--workers", "2", "--threads", "32"],
            env=env,
            stdout=api_log,
            stderr=subprocess.STDOUT,
        )
    )
    if getattr(request.module, "STACK_SWEEPER", True):
        sweeper_log = open(tmp / "sweeper.log", "w")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "cli", "sweeper", "--interval", "1", "--stale-after", "5"],
                env=env,
                stdout=sweeper_log,
                stderr=subprocess.STDOUT,
            )
        )
    stack = Stack(f"http://127.0.0.1:{port}", env, fake, tmp, [], procs, own_redis)
    try:
        stack.start_worker("w1")
        stack.start_worker("w2")
        wait_http(f"{stack.base_url}/api/v0/openapi.json", proc=procs[0])
        yield stack
    finally:
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM) if proc in stack.workers else proc.terminate()
                except ProcessLookupError:
                    pass
        for proc in procs:
            _stop(proc)
        fake.close()
        if own_redis is not None:
            own_redis.kill()
        drop_pg_database(db_name)


@dataclass
class Rest:
    """Plain REST calls into one project, for what the SDK does not expose (cancel, raw status)."""

    base_url: str
    key: str
    project_id: int

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v0/projects/{self.project_id}/{path.lstrip('/')}"

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        import requests

        headers = {"X-API-Key": self.key, **(headers or {})}
        return requests.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)
