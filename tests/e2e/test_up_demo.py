"""`assay up` and `assay demo` as a newcomer runs them: embedded defaults, then the machine's services."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import requests

from models.db import migration_head
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.conftest import free_port, wait_http

pytestmark = pytest.mark.e2e

UNSET = (
    "REDIS_URL",
    "DATABASE_URL",
    "OPENAI_API_KEY",
    "ASSAY_LLM_BASE_URL",
    "ASSAY_LLM_MODEL",
    "ELLUMINATE_API_KEY",
    "ELLUMINATE_BASE_URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No Redis, database or model configured; the user data folder in a temporary place."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**env, "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1", **extra}


def assay(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def check_demo_output(out: str) -> None:
    assert "Results of 'Assay demo" in out
    assert re.search(r"all criteria\s+100\.0%", out), out
    assert "responses: 8 (failed: 0)" in out
    assert "built-in fake model" in out


def start_up(env: dict[str, str], *args: str) -> tuple[str, subprocess.Popen[str], str]:
    """`assay up` on a free port, read until it says it is up; returns (base URL, process, what it said)."""
    port = free_port()
    proc = subprocess.Popen(
        assay("up", "--port", str(port), *args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    out = ""
    for line in proc.stdout:
        out += line
        if "Ctrl-C stops everything" in line:
            break
    assert f"Assay is up at http://127.0.0.1:{port}" in out, out
    return f"http://127.0.0.1:{port}", proc, out


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """`assay up` with embedded defaults; yields (base URL, API key, process)."""
    base_url, proc, _ = start_up(clean_env(tmp_path, ASSAY_BOOTSTRAP_API_KEY="ak_test_bootstrap"))
    yield base_url, "ak_test_bootstrap", proc
    if proc.poll() is None:
        stop_and_check_nothing_left(proc)


def stop_and_check_nothing_left(proc: subprocess.Popen[str]) -> None:
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 5  # api, worker, sweeper and (embedded) redis, fake model or their subprocesses
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]


def test_up_then_demo_then_sigterm_leaves_nothing(tmp_path: Path, up: tuple[str, str, subprocess.Popen[str]]) -> None:
    base_url, key, proc = up
    env = clean_env(tmp_path, ELLUMINATE_API_KEY=key)
    demo = subprocess.run(assay("demo", "--base-url", base_url), env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    check_demo_output(demo.stdout)
    stop_and_check_nothing_left(proc)


def test_demo_alone_starts_and_stops_its_own_stack_then_up_prints_a_key(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.process_iter()}
    demo = subprocess.run(assay("demo"), env=clean_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "starting one for the demo" in demo.stdout
    assert re.search(r"Using the Assay at http://127\.0\.0\.1:\d+", demo.stdout)
    check_demo_output(demo.stdout)
    leftovers = [p for p in psutil.process_iter() if p.pid not in before and _data_home(p) == str(tmp_path / "data")]
    assert leftovers == []
    # The schema existed before the sweeper's first pass.
    assert "no such table" not in (tmp_path / "data" / "assay" / "logs" / "sweeper.log").read_text()

    # The demo's project has no key a newcomer saw: `assay up` makes one and prints it, once.
    base_url, proc, out = start_up(clean_env(tmp_path))
    try:
        key = re.search(r"API key: (ak_\S+)", out).group(1)  # type: ignore[union-attr]
        answer = requests.get(f"{base_url}/api/v0/projects", headers={"X-API-Key": key}, timeout=10)
        assert answer.status_code == 200
    finally:
        stop_and_check_nothing_left(proc)
    _, proc, again = start_up(clean_env(tmp_path))
    stop_and_check_nothing_left(proc)
    assert "API key: " not in again and "assay keys list" in again


def _data_home(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("XDG_DATA_HOME")
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


@pytest.fixture
def machine_services(tmp_path: Path) -> Iterator[dict[str, str]]:
    name = f"assay_up_{os.getpid()}"
    url = create_pg_database(name)
    yield {"REDIS_URL": f"redis://127.0.0.1:6379/{1 + (os.getpid() + 7) % 15}", "DATABASE_URL": url}
    drop_pg_database(name)


def test_up_on_the_machines_redis_and_postgresql(tmp_path: Path, machine_services: dict[str, str]) -> None:
    env = clean_env(tmp_path, ASSAY_BOOTSTRAP_API_KEY="ak_pg_bootstrap", **machine_services)
    base_url, proc, _ = start_up(env)
    try:
        commands = [" ".join(p.cmdline()) for p in psutil.Process(proc.pid).children()]
        assert not any("redis-server" in c for c in commands), commands
        demo = subprocess.run(
            assay("demo", "--base-url", base_url),
            env={**env, "ELLUMINATE_API_KEY": "ak_pg_bootstrap"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        check_demo_output(demo.stdout)
    finally:
        stop_and_check_nothing_left(proc)


def test_version_is_one_line() -> None:
    out = subprocess.run(assay("--version"), capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"assay, version \d+\.\d+\.\d+\S*\n", out)


@pytest.fixture
def foreign_api(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`assay api` on a database of its own, started with ASSAY_AUTO_MIGRATE=false (so not migrated)."""
    env = clean_env(
        tmp_path / "foreign", DATABASE_URL=f"sqlite:///{tmp_path / 'foreign.db'}", ASSAY_AUTO_MIGRATE="false"
    )
    port = free_port()
    proc = subprocess.Popen(
        assay("api", "--port", str(port), "--workers", "1", "--threads", "4"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield f"http://127.0.0.1:{port}", env
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_api_with_auto_migrate_false_leaves_the_schema_to_assay_migrate(
    foreign_api: tuple[str, dict[str, str]],
) -> None:
    base_url, env = foreign_api
    before = requests.get(f"{base_url}/readyz", timeout=10)
    assert before.status_code == 503
    assert "assay migrate" in before.json()["checks"]["database"]
    subprocess.run(assay("migrate"), env=env, check=True, capture_output=True, timeout=120)
    assert requests.get(f"{base_url}/readyz", timeout=10).status_code == 200


def test_demo_refuses_another_assay_with_one_line(tmp_path: Path, foreign_api: tuple[str, dict[str, str]]) -> None:
    base_url, env = foreign_api
    subprocess.run(assay("migrate"), env=env, check=True, capture_output=True, timeout=120)
    demo = subprocess.run(
        assay("demo", "--base-url", base_url), env=clean_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert demo.returncode == 1
    assert f"Using the Assay at {base_url}" in demo.stdout
    assert demo.stderr.strip().count("\n") == 0, demo.stderr
    assert demo.stderr.startswith(f"The Assay at {base_url} refused a key made in this machine's database")


def test_demo_refuses_a_server_that_is_not_assay(tmp_path: Path) -> None:
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        demo = subprocess.run(
            assay("demo", "--base-url", url), env=clean_env(tmp_path), capture_output=True, text=True, timeout=120
        )
    finally:
        server.shutdown()
    assert demo.returncode == 1
    assert (
        demo.stderr.strip()
        == f"{url} is not an Assay server (no /healthz or /api/v0/openapi.json); pass --base-url of one"
    )


def test_a_sweeper_started_before_the_migration_waits_for_it_quietly(tmp_path: Path) -> None:
    import redis as redis_client

    db = 1 + (os.getpid() + 11) % 15
    env = clean_env(
        tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'early.db'}", REDIS_URL=f"redis://127.0.0.1:6379/{db}"
    )
    log_path = tmp_path / "sweeper.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(assay("sweeper", "--interval", "0.2"), env=env, stdout=log, stderr=subprocess.STDOUT)
    heartbeat = f"assay:heartbeat:sweeper:{socket.gethostname()}:{proc.pid}"
    redis = redis_client.Redis(port=6379, db=db)
    try:
        _wait_until(lambda: "waits for the database" in log_path.read_text(), proc)
        assert not redis.exists(heartbeat)
        subprocess.run(assay("migrate"), env=env, check=True, capture_output=True, timeout=120)
        _wait_until(lambda: bool(redis.exists(heartbeat)), proc)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert [line["message"] for line in lines if line["level"] == "WARNING"] == [
        "the sweeper waits for the database: schema at nothing, newest migration is "
        f"{migration_head()}: run `assay migrate`"
    ]
    assert not [line for line in lines if line["level"] == "ERROR"]


def _wait_until(condition: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll `condition` until it holds; fail if `proc` exits first or after `timeout` seconds (a hang)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"exited with {proc.returncode}"
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.1)


def _two_free_ports() -> int:
    """A port P such that P and P + 1 are both free right now."""
    for _ in range(50):
        first = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise AssertionError("no two adjacent free ports")


def test_up_gives_each_worker_its_own_metrics_port(tmp_path: Path) -> None:
    port = _two_free_ports()
    _, proc, _ = start_up(clean_env(tmp_path, ASSAY_WORKER_METRICS_PORT=str(port)), "--workers", "2")
    try:
        for metrics_port in (port, port + 1):
            wait_http(f"http://127.0.0.1:{metrics_port}/metrics", timeout=60)
            answer = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
            assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    finally:
        stop_and_check_nothing_left(proc)
