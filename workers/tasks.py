"""Celery tasks: stable names, time limits, ids as arguments. The work itself runs in `workers.engine`."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_process_init

from workers.app import RUN_JOB

# One line per model call at INFO costs CPU on the hot path and buries the worker's own log.
QUIET_LOGGERS = ("httpx", "httpx2", "openai", "aiohttp.access")


@worker_process_init.connect
def start_engine(**_: Any) -> None:
    """Start each pool process's scheduler at once, so it scouts for work even before any message."""
    from workers.job_run import scheduler

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    scheduler()


@shared_task(name=RUN_JOB, soft_time_limit=30, time_limit=60, ignore_result=True)
def run_job(job_id: str) -> None:
    """Hand a job to this process's scheduler, which works on it alongside its other jobs."""
    from workers.job_run import scheduler

    scheduler().submit(job_id)
