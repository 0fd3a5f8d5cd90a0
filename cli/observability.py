"""Process setup shared by `assay api`, `assay worker` and `assay sweeper`: metrics folder, metrics port."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def prepare_metrics_dir() -> str:
    """Give this process tree a PROMETHEUS_MULTIPROC_DIR before anything imports prometheus-client.

    Unset, a fresh private folder (removed at exit); set, it is emptied, as prometheus-client requires
    between runs, so each `assay api` or `assay worker` needs a folder of its own.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink()
        return path
    path = tempfile.mkdtemp(prefix="assay-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(shutil.rmtree, path, True)
    return path


def log_as(component: str) -> None:
    """JSON (or text, ASSAY_LOG_FORMAT) log lines for this process, tagged with `component`."""
    from services import logs
    from services.settings import load_settings

    settings = load_settings()
    logs.configure(component, settings.log_format, settings.log_level)


def log_worker_as_assay() -> None:
    """JSON lines from the start (Celery warns before it sets logging up), and Celery leaves logging
    alone when its `setup_logging` signal has a receiver."""
    from celery.signals import setup_logging

    log_as("worker")
    setup_logging.connect(lambda **_: None, weak=False)


def wait_for_schema(role: str, interval: float = 2.0) -> None:
    """Block until the database answers at the newest migration, saying once why it waits, so a worker
    or sweeper started beside `assay migrate` (compose, a Kubernetes Job) does not log errors meanwhile."""
    import logging
    import time

    from sqlalchemy.exc import SQLAlchemyError

    from models.db import Database
    from services.settings import load_settings

    settings = load_settings()
    database = Database(settings.database_url, settings.sqlite_busy_timeout_ms)
    said = None
    while True:
        try:
            problem = database.schema_problem()
        except SQLAlchemyError as exc:
            problem = f"the database does not answer: {str(exc).splitlines()[0][:200]}"
        if problem is None:
            database.dispose()
            return
        if problem != said:
            logging.getLogger("assay.startup").warning("%s waits for the database: %s", role, problem)
            said = problem
        time.sleep(interval)


def forget_process(pid: int) -> None:
    """A pool process ended: drop its live gauges (counters stay, as prometheus-client intends)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def serve_worker_metrics(port: int) -> None:
    """Serve the pool processes' metrics on `port` from the Celery parent process (a daemon thread)."""
    from celery.signals import worker_process_shutdown
    from prometheus_client import start_http_server

    from services import metrics

    start_http_server(port, registry=metrics.registry())
    worker_process_shutdown.connect(_on_process_shutdown, weak=False)


def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    forget_process(pid or os.getpid())
