"""Per-app objects (the database) and the per-request session."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from models.db import Database
from models.orm import Job
from services import jobs, wakeups
from services.settings import Settings


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


def start_job(job: Job | None) -> str | None:
    """Wake the workers for a new job and send its run messages once the request has committed (see
    `services.wakeups` and `services.jobs.notify`); returns its id (also when it was rejected at once,
    and so is sent nothing)."""
    if job is None:
        return None
    if count := jobs.run_messages(settings(), job):
        from workers.app import sender

        send, database_, job_id = sender(current_app.extensions["assay_celery"]), database(), job.id
        redis_url = settings().redis_url

        def send_messages() -> None:
            wakeups.publish(redis_url, job_id)  # the workers' schedulers join it before Celery delivers
            jobs.notify(database_, send, job_id, count)

        after_commit(send_messages)
    return job.id


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
