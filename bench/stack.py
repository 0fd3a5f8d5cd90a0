"""A benchmark stack: the fake model, the API and N workers on PostgreSQL and Redis, as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import redis

from cli.up import free_port, wait_for_url
from fakellm.testing import FakeLLM

PG_ADMIN = os.environ.get("ASSAY_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ASSAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _fresh_database(name: str) -> str:
    _drop_database(name)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class BenchStack:
    """Start with `start()`, stop with `stop()`; `env` holds the settings every process got."""

    settings: dict[str, str]
    workers: int = 1
    log_dir: Path = Path("bench/results/logs")
    fake: FakeLLM = field(default_factory=FakeLLM)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    base_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    database: str = field(default_factory=lambda: f"assay_bench_{os.getpid()}")

    def start(self) -> BenchStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.fake.start()
        redis.Redis.from_url(REDIS_URL).flushdb()
        self.env = {
            **os.environ,
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": _fresh_database(self.database),
            "ASSAY_LLM_BASE_URL": self.fake.base_url,
            # LLM configs of the scenarios point at the fake model on loopback.
            "ASSAY_LLM_ALLOWED_HOSTS": urlsplit(self.fake.base_url).netloc,
            "ASSAY_RATE_LIMIT": "",  # the benchmarks measure Assay, not its per-key request limit
            "ASSAY_LLM_MODEL": "fake-model",
            "OPENAI_API_KEY": "sk-bench",
            "PYTHONUNBUFFERED": "1",
            **self.settings,
        }
        subprocess.run([sys.executable, "-m", "cli", "migrate"], env=self.env, check=True, capture_output=True)
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self._spawn(
            "api",
            ["api", "--port", str(port), "--workers", "2", "--threads", self.settings.get("BENCH_API_THREADS", "64")],
        )
        for i in range(self.workers):
            self.worker_procs.append(self._spawn(f"worker{i}", ["worker", "--hostname", f"bench{i}@%h"]))
        wait_for_url(f"{self.base_url}/api/v0/openapi.json", 60)
        return self

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def project_key(self) -> tuple[int, str]:
        out = subprocess.run(
            [sys.executable, "-m", "cli", "projects", "create", f"bench {time.time_ns()}"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        project_id = int(out.split()[1])
        return project_id, out.strip().rsplit(" ", 1)[-1]

    def job_start_latency(self, job_id: str) -> float | None:
        """Seconds from the job row's creation (inside the submitting request) to STARTED, from the job table."""
        url = self.env["DATABASE_URL"]
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT created_at, started_at FROM jobs WHERE id = %s", (job_id,)).fetchone()
        return None if row is None or row[1] is None else (row[1] - row[0]).total_seconds()

    def worker_processes(self) -> list[psutil.Process]:
        """Every process of every worker (the Celery parent and its pool children)."""
        found = []
        for proc in self.worker_procs:
            parent = psutil.Process(proc.pid)
            found += [parent, *parent.children(recursive=True)]
        return found

    def api_processes(self) -> list[psutil.Process]:
        parent = psutil.Process(self.procs[0].pid)
        return [parent, *parent.children(recursive=True)]

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.fake.close()
        _drop_database(self.database)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20
