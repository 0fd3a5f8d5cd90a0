"""The Celery app, built from settings; `celery -A workers.app:celery_app worker` or `assay worker`."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from services.settings import Settings, load_settings

RUN_JOB = "assay.run_job"


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app on `REDIS_URL`; the job table, not Celery's result store, is the truth."""
    settings = settings or load_settings()
    app = Celery("assay", broker=settings.redis_url or "redis://127.0.0.1:6379/0")
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        task_default_queue="assay",
    )
    app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
    return app


def sender(celery: Celery) -> Callable[[str], None]:
    """What the job lifecycle sends a run message with (`services.jobs.notify`)."""

    def send(job_id: str) -> None:
        celery.send_task(RUN_JOB, args=[job_id])

    return send


class _LazyCelery:
    """Builds the app on first use, so importing this module reads no environment."""

    _app: Celery | None = None

    def __getattr__(self, name: str) -> object:
        if _LazyCelery._app is None:
            _LazyCelery._app = create_celery()
        return getattr(_LazyCelery._app, name)


celery_app = _LazyCelery()
