"""The sweeper: re-sends jobs whose messages were lost and times out jobs past their deadline.

Redis redelivers an unacknowledged message only after its visibility timeout, so Assay does not
rely on it: any active job with no live chunk lease for a while gets a fresh run message.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from celery import Celery

from models.db import Database
from services import heartbeat, jobs
from services.settings import Settings
from services.states import TaskState
from workers.app import RUN_JOB

log = logging.getLogger(__name__)


def sweep_once(database: Database, celery: Celery, stale_after: timedelta) -> tuple[int, int]:
    """One pass; returns (jobs re-enqueued, jobs timed out)."""
    with database.session() as session:
        overdue = jobs.overdue_jobs(session)
        for job in overdue:
            jobs.finish(
                session, job, TaskState.TIMEOUT, f"TIMEOUT: ran past its time limit of {job.time_limit_seconds} s"
            )
        stale = [job.id for job in jobs.stale_jobs(session, stale_after)]
    for job_id in stale:
        try:
            celery.send_task(RUN_JOB, args=[job_id])
        except Exception as exc:  # Redis down: try again next pass
            log.warning("sweeper could not enqueue %s: %s", job_id, exc)
            continue
        with database.session() as session:
            jobs.mark_enqueued(session, job_id)
        log.info("re-enqueued job %s", job_id)
    return len(stale), len(overdue)


def run_forever(settings: Settings, interval: float, stale_after: float) -> None:
    from workers.app import create_celery

    database = Database(settings.database_url, settings.sqlite_busy_timeout_ms)
    celery = create_celery(settings)
    name = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        heartbeat.beat(settings.redis_url, "sweeper", name)
        try:
            sweep_once(database, celery, timedelta(seconds=stale_after))
        except Exception:
            log.exception("sweep failed; retrying")
        time.sleep(interval)
