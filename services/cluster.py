"""What the whole cluster is doing, read from the database and Redis (for `/metrics`)."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models.orm import Job, JobChunk
from services.jobs import ACTIVE_STATES, now

QUEUE = "assay"  # the Celery queue of run messages (workers.app's task_default_queue)


def job_counts(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(Job.kind, Job.status, func.count(Job.id)).group_by(Job.kind, Job.status))
    return {(kind, status): count for kind, status, count in rows}


def free_chunks(session: Session) -> int:
    """Unfinished chunks of active jobs that no live lease holds: work waiting for a worker."""
    return (
        session.scalar(
            select(func.count(JobChunk.id))
            .join(Job, Job.id == JobChunk.job_id)
            .where(
                Job.status.in_(ACTIVE_STATES),
                JobChunk.done.is_(False),
                or_(JobChunk.lease_owner.is_(None), JobChunk.lease_expires_at < now()),
            )
        )
        or 0
    )


def state(session: Session, connection: redis.Redis) -> dict[str, Any]:
    """Jobs by (kind, state), free chunks and, when Redis answers, the queue's length."""
    result: dict[str, Any] = {"jobs": job_counts(session), "free_chunks": free_chunks(session)}
    try:
        result["queue_depth"] = connection.llen(QUEUE)
    except redis.RedisError:
        pass
    return result
