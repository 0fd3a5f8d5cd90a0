"""The sweeper: re-sends jobs whose messages were lost and times out jobs past their deadline.

Redis redelivers an unacknowledged message only after its visibility timeout, so Assay does not
rely on it: any active job with no live chunk lease for a while gets a fresh run message. Both
transitions are the job lifecycle's (`services.jobs`); this is only the loop that drives them.
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
from workers.app import sender

log = logging.getLogger(__name__)


def sweep_once(database: Database, celery: Celery, stale_after: timedelta) -> tuple[int, int]:
    """One pass; returns (jobs re-enqueued, jobs timed out)."""
    with database.session() as session:
        timed_out = jobs.expire_overdue(session)
    return jobs.resend_stale(database, sender(celery), stale_after), timed_out


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
