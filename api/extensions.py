"""Per-app objects (the database) and the per-request session."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from models.db import Database
from models.orm import Job
from services import jobs
from services.settings import Settings

log = logging.getLogger(__name__)


def init_db(app: Flask, settings: Settings) -> None:
    database = Database(settings.database_url, settings.sqlite_busy_timeout_ms)
    if settings.auto_migrate:
        database.migrate()
    app.extensions["assay_db"] = database
    app.teardown_appcontext(_close_session)


def database() -> Database:
    return current_app.extensions["assay_db"]


def settings() -> Settings:
    return current_app.config["ASSAY_SETTINGS"]


def db_session() -> Session:
    """The request's one session; the view wrapper commits it once, teardown closes it."""
    if "db_session" not in g:
        g.db_session = database().sessionmaker()
    return g.db_session


def after_commit(fn: Callable[[], None]) -> None:
    """Run `fn` once the request's unit of work has committed (for example: enqueue a job)."""
    g.setdefault("after_commit", []).append(fn)


def run_after_commit() -> None:
    for fn in g.pop("after_commit", []):
        fn()


def commit() -> None:
    """The request's one commit point, then what waited for it (enqueueing jobs)."""
    db_session().commit()
    run_after_commit()


def init_queue(app: Flask, settings: Settings) -> None:
    from workers.app import create_celery

    app.extensions["assay_celery"] = create_celery(settings)


def enqueue_job(job_id: str, fanout: int) -> None:
    """Send `fanout` run messages after the commit; if Redis is down the sweeper sends them later."""
    celery = current_app.extensions["assay_celery"]
    database = current_app.extensions["assay_db"]

    def send() -> None:
        from workers.app import RUN_JOB

        try:
            for _ in range(max(1, fanout)):
                celery.send_task(RUN_JOB, args=[job_id])
        except Exception as exc:  # the job row is committed; the sweeper re-sends lost messages
            log.warning("could not enqueue job %s (the sweeper will): %s", job_id, exc)
            return
        with database.session() as session:
            jobs.mark_enqueued(session, job_id)

    after_commit(send)


def start_job(job: Job | None) -> str | None:
    """Enqueue a new job after the commit; returns its id (also when it was rejected at once)."""
    if job is None:
        return None
    if count := jobs.run_messages(settings(), job):
        enqueue_job(job.id, count)
    return job.id


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
