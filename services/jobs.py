"""The job lifecycle: the job row is the truth for every long-running task; its items are leased in chunks.

Every transition lives here: `create` (PENDING, or REJECTED when the project's queue is full), `notify`
(run messages sent after the commit, then the row marked enqueued), `mark_started` (STARTED, or
REJECTED when its inputs vanished), `finish` (SUCCESS, FAILURE, REVOKED, TIMEOUT: first writer
wins), `cancel`, `time_out` and `expire_overdue` (one TIMEOUT message, wherever it is noticed),
`resend_stale` (the sweeper's re-send of lost messages). A job's work is split into `JobChunk` rows:
a worker leases one chunk at a time and renews the lease while it works; a chunk whose lease expired
(its worker died) is taken over by the next worker that asks. The job ends when every chunk is done.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from models.db import Database, in_batches
from models.orm import Entry, Experiment, Job, JobChunk, JobLog, PromptResponse
from services import metrics
from services.errors import Conflict, Invalid, not_found
from services.settings import Settings
from services.states import TERMINAL_STATES, JobKind, TaskState

ACTIVE_STATES = (TaskState.PENDING, TaskState.STARTED)
logger = logging.getLogger(__name__)
Send = Callable[[str], None]
"""Sends one run message for a job id (the queue; raises when it is unreachable)."""
process_log = logging.getLogger("assay.jobs")


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def is_past(moment: datetime) -> bool:
    return _aware(moment) < now()  # type: ignore[operator]


def create(
    session: Session,
    settings: Settings,
    *,
    project_id: int,
    kind: JobKind,
    items: Sequence[Any],
    experiment_id: int | None = None,
    params: dict[str, Any] | None = None,
    time_limit_seconds: int | None = None,
) -> Job:
    """Write a job with its chunks; over the project's queue limit it is written REJECTED instead (without
    chunks). More items than `max_job_items` is refused before anything is written."""
    if len(items) > settings.max_job_items:
        raise Invalid(
            f"the job would have {len(items):,} items (entries x epochs, or batch items); the limit is "
            f"{settings.max_job_items:,} (ASSAY_MAX_JOB_ITEMS): split it into smaller collections or batches"
        )
    job = Job(
        id=str(uuid.uuid4()),
        project_id=project_id,
        kind=kind,
        experiment_id=experiment_id,
        params=params or {},
        total=len(items),
        time_limit_seconds=time_limit_seconds or settings.job_time_limit_seconds,
    )
    active = session.scalar(
        select(func.count(Job.id)).where(Job.project_id == project_id, Job.status.in_(ACTIVE_STATES))
    )
    if active >= settings.max_active_jobs_per_project:
        job.status = TaskState.REJECTED
        job.error_msg = (
            f"REJECTED: the project already has {active} queued or running jobs "
            f"(limit {settings.max_active_jobs_per_project}); try again when some have finished"
        )
        job.finished_at = now()
    session.add(job)
    if job.status != TaskState.REJECTED:
        session.add_all(
            JobChunk(job_id=job.id, position=i, items=list(items[start:end]))
            for i, (start, end) in enumerate(chunk_bounds(len(items), settings.job_chunk_size))
        )
    session.flush()
    metrics.job_state(kind, job.status)
    return job


def chunk_bounds(total: int, size: int) -> list[tuple[int, int]]:
    """Each chunk's [start, end) among a job's items: `size` items, but the job's last 4 x `size` in
    chunks of a quarter of that, so the job's end is spread over every worker taking part instead of
    waiting for one worker's last big chunk while the others have nothing left to claim."""
    size = max(1, size)
    small, tail = max(1, size // 4), max(0, total - 4 * size)
    bounds = [(start, min(start + size, tail)) for start in range(0, tail, size)]
    return bounds + [(start, min(start + small, total)) for start in range(tail, total, small)]


def run_messages(settings: Settings, job: Job) -> int:
    """How many run messages a new job is sent: one per chunk up to the fanout; none unless PENDING."""
    if job.status != TaskState.PENDING:
        return 0
    return min(settings.job_fanout, max(1, len(chunk_bounds(job.total, settings.job_chunk_size))))


def _is_uuid(text: str) -> bool:
    """Job ids are UUIDs; anything else (a NUL byte, 10 KB of text) is no job, not a database error."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def mark_enqueued(session: Session, job_id: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=now()))


def notify(database: Database, send: Send, job_id: str, count: int) -> bool:
    """Send `count` run messages for a committed job, then mark it enqueued. False when the queue is
    unreachable: the row stays unmarked, the workers' scouts find it and the sweeper re-sends."""
    try:
        for _ in range(max(1, count)):
            send(job_id)
    except Exception as exc:
        logger.warning("could not enqueue job %s (the sweeper will): %s", job_id, exc)
        return False
    with database.session() as session:
        mark_enqueued(session, job_id)
    return True


def resend_stale(database: Database, send: Send, stale_after: timedelta) -> int:
    """Re-send one run message to every active job nobody works on; how many were sent."""
    with database.session() as session:
        stale = [job.id for job in stale_jobs(session, stale_after)]
    sent = [job_id for job_id in stale if notify(database, send, job_id, 1)]
    for job_id in sent:
        logger.info("re-enqueued job %s", job_id)
    return len(sent)


def get(session: Session, project_id: int, job_id: str, kind: JobKind | None = None) -> Job:
    job = session.get(Job, job_id) if _is_uuid(job_id) else None
    if job is None or job.project_id != project_id or (kind is not None and job.kind != kind):
        raise not_found("Task", job_id)
    return job


def log(session: Session, job_id: str, line: str) -> None:
    """A line of the job's run log (clients read it), also in this process's log."""
    session.add(JobLog(job_id=job_id, line=line))
    process_log.info(line, extra={"job_id": job_id})


def logs_since(session: Session, job_id: str, cursor: int) -> tuple[str | None, int]:
    """Log lines after `cursor` (a log id), joined, and the new cursor."""
    rows = session.execute(
        select(JobLog.id, JobLog.line).where(JobLog.job_id == job_id, JobLog.id > cursor).order_by(JobLog.id)
    ).all()
    if not rows:
        return None, cursor
    return "".join(f"{line}\n" for _, line in rows), rows[-1][0]


def progress(session: Session, job: Job) -> dict[str, int]:
    """Counts derived from what is stored, so a crash can neither lose nor double-count progress."""
    if job.kind != JobKind.EXPERIMENT:
        done = session.scalar(
            select(func.coalesce(func.sum(func.json_array_length(JobChunk.items)), 0)).where(
                JobChunk.job_id == job.id, JobChunk.done.is_(True)
            )
        )
        return {"processed": int(done or 0), "total": job.total, "failed": job.failed}
    return experiment_progress(session, [job])[job.id]


def experiment_progress(session: Session, jobs: Sequence[Job]) -> dict[str, dict[str, int]]:
    """`progress` of many experiment jobs in one grouped query (the Studio's list follows up to 200)."""
    counts = {
        job_id: (int(responses), int(rated))
        for job_id, responses, rated in session.execute(
            select(PromptResponse.job_id, func.count(PromptResponse.id), func.count(PromptResponse.rated_at))
            .where(PromptResponse.job_id.in_([job.id for job in jobs]))
            .group_by(PromptResponse.job_id)
        )
    }
    return {
        job.id: {
            "completed_responses": counts.get(job.id, (0, 0))[0],
            "completed_ratings": counts.get(job.id, (0, 0))[1],
            "total_responses": job.total,
        }
        for job in jobs
    }


def mark_started(session: Session, job_id: str) -> Job | None:
    """PENDING -> STARTED (once); returns the job unless it already ended."""
    # What the start check needs (the experiment's columns, the first chunk's items) comes with the lock,
    # in one round trip: this is on the path from submit to STARTED.
    first_items = (
        select(JobChunk.items)
        .where(JobChunk.job_id == Job.id)
        .order_by(JobChunk.position)
        .limit(1)
        .scalar_subquery()
        .label("items")
    )
    row = session.execute(
        select(Job, Experiment.id, Experiment.prompt_template_id, Experiment.llm_config_id, first_items)
        .outerjoin(Experiment, Experiment.id == Job.experiment_id)
        .where(Job.id == job_id)
        .with_for_update(of=Job)
    ).first()
    if row is None or row.Job.status in TERMINAL_STATES:
        return None
    job = row.Job
    if job.status == TaskState.PENDING and (reason := rejection_reason(session, job, row)):
        finish(session, job, TaskState.REJECTED, f"REJECTED: {reason}")
        return None
    if job.status == TaskState.PENDING:
        job.status = TaskState.STARTED
        job.started_at = now()
        job.deadline_at = job.started_at + timedelta(seconds=job.time_limit_seconds or 36_000)
        log(session, job.id, f"Started: {job.total} item(s)")
        metrics.job_state(job.kind, TaskState.STARTED)
    return job


def rejection_reason(session: Session, job: Job, started: Any) -> str | None:
    """Why a queued experiment job can no longer run as it was asked for, if it cannot; `started` holds
    the experiment's `id`, `prompt_template_id` and `llm_config_id` (all None once it was deleted) and the
    job's first chunk's `items`."""
    if job.kind != JobKind.EXPERIMENT:
        return None
    if started.id is None or (started.prompt_template_id is None and not job.params.get("stored_responses")):
        return "the experiment or its prompt template was deleted after the job was queued"
    if started.llm_config_id != job.params.get("llm_config_id", started.llm_config_id):
        return "the experiment's LLM config changed after the job was queued"
    if _all_entries_deleted(session, job, started.items):
        return "every entry of the collection was deleted after the job was queued"
    return None


def _all_entries_deleted(session: Session, job: Job, first_items: list[Any] | None = None, batch: int = 1000) -> bool:
    """Whether none of the job's entries exists: one entry of the first chunk's `first_items` settles it;
    otherwise every chunk is read and its entries looked at a batch at a time (one IN list of 100,000 ids
    is past PostgreSQL's limit)."""
    if first_items and _any_entry_exists(session, [entry_id for entry_id, _ in first_items]):
        return False
    items = session.scalars(select(JobChunk.items).where(JobChunk.job_id == job.id).order_by(JobChunk.position)).all()
    entry_ids = [entry_id for chunk in items for entry_id, _ in chunk]
    return bool(entry_ids) and not any(_any_entry_exists(session, ids) for ids in in_batches(entry_ids, batch))


def _any_entry_exists(session: Session, entry_ids: Sequence[int]) -> bool:
    return session.scalar(select(Entry.id).where(Entry.id.in_(entry_ids)).limit(1)) is not None


def claim_chunk(
    session: Session, job_id: str, owner: str, lease_seconds: float, running: Collection[int] = ()
) -> JobChunk | None:
    """Lease the next chunk that is free, whose lease expired or that `owner` leased without running it
    (a claim whose commit was lost with its connection), other than those the caller is still
    `running` (its own lease on one can expire while it runs, and it must not run it twice at once)."""
    current = now()
    candidate = session.scalar(
        select(JobChunk)
        .where(
            JobChunk.job_id == job_id,
            JobChunk.done.is_(False),
            or_(JobChunk.lease_owner.is_(None), JobChunk.lease_owner == owner, JobChunk.lease_expires_at < current),
            JobChunk.id.not_in(running),
        )
        .order_by(JobChunk.position)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if candidate is None:
        return None
    if candidate.lease_owner not in (None, owner):
        log(session, job_id, f"Chunk {candidate.position} taken over after its worker stopped renewing")
    if candidate.lease_owner != owner:
        candidate.attempts += 1
    candidate.lease_owner = owner
    candidate.lease_expires_at = current + timedelta(seconds=lease_seconds)
    session.flush()
    return candidate


def renew_leases(session: Session, chunk_ids: Sequence[int], owner: str, lease_seconds: float) -> list[int]:
    """Extend this owner's leases; returns the ids it still holds (the others were taken over)."""
    if not chunk_ids:
        return []
    session.execute(
        update(JobChunk)
        .where(JobChunk.id.in_(chunk_ids), JobChunk.lease_owner == owner, JobChunk.done.is_(False))
        .values(lease_expires_at=now() + timedelta(seconds=lease_seconds))
    )
    return list(session.scalars(select(JobChunk.id).where(JobChunk.id.in_(chunk_ids), JobChunk.lease_owner == owner)))


def complete_chunk(session: Session, chunk_id: int, owner: str) -> None:
    session.execute(update(JobChunk).where(JobChunk.id == chunk_id, JobChunk.lease_owner == owner).values(done=True))


def claimable_jobs(session: Session, limit: int = 50) -> list[str]:
    """Active jobs with a chunk that is free or whose lease expired: work any worker may join."""
    current = now()
    return list(
        session.scalars(
            select(JobChunk.job_id)
            .join(Job, Job.id == JobChunk.job_id)
            .where(
                Job.status.in_(ACTIVE_STATES),
                JobChunk.done.is_(False),
                or_(JobChunk.lease_owner.is_(None), JobChunk.lease_expires_at < current),
            )
            .group_by(JobChunk.job_id)
            .limit(limit)
        )
    )


def pending_chunks(session: Session, job_id: str) -> tuple[int, datetime | None]:
    """How many chunks are not done, and the earliest time a foreign lease on one of them expires."""
    count, earliest = session.execute(
        select(func.count(JobChunk.id), func.min(JobChunk.lease_expires_at)).where(
            JobChunk.job_id == job_id, JobChunk.done.is_(False)
        )
    ).one()
    return int(count), _aware(earliest)


def finish(session: Session, job: Job, status: TaskState, error_msg: str | None = None) -> bool:
    """Move an unfinished job to a terminal state (first writer wins); clears the experiment's task id."""
    changed = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_(ACTIVE_STATES))
        .values(status=status, error_msg=error_msg, finished_at=now())
    ).rowcount
    if not changed:
        return False
    if job.experiment_id is not None:
        session.execute(
            update(Experiment)
            .where(Experiment.id == job.experiment_id, Experiment.generation_task_id == job.id)
            .values(generation_task_id=None, has_internal_error=status == TaskState.FAILURE)
        )
    log(session, job.id, f"{status.value}" + (f": {error_msg}" if error_msg else ""))
    metrics.job_state(job.kind, status)
    return True


def time_out(session: Session, job: Job) -> bool:
    """STARTED -> TIMEOUT, with the one message every place that notices the deadline uses."""
    return finish(
        session, job, TaskState.TIMEOUT, f"TIMEOUT: the job ran past its time limit of {job.time_limit_seconds} s"
    )


def expire_overdue(session: Session) -> int:
    """Time out every job past its deadline; how many."""
    return sum(time_out(session, job) for job in overdue_jobs(session))


def current_state(session: Session, job_id: str) -> TaskState:
    """The job's state as its workers must obey it: past its deadline it is timed out now; a job
    deleted with its experiment counts as REVOKED."""
    job = session.get(Job, job_id)
    if job is None:
        return TaskState.REVOKED
    if job.status == TaskState.STARTED and job.deadline_at is not None and is_past(job.deadline_at):
        time_out(session, job)
        return TaskState.TIMEOUT
    return job.status


def fail(session: Session, job_id: str, message: str) -> None:
    """End a job in FAILURE with `message` (unless it already ended)."""
    if (job := session.get(Job, job_id)) is not None:
        finish(session, job, TaskState.FAILURE, message)


def succeed(session: Session, job_id: str) -> None:
    """End a job whose every chunk is done in SUCCESS (unless it already ended)."""
    if (job := session.get(Job, job_id)) is not None:
        finish(session, job, TaskState.SUCCESS)


def log_if_present(session: Session, job_id: str, line: str) -> None:
    """A log line for a job that may have been deleted meanwhile."""
    if session.get(Job, job_id) is not None:
        log(session, job_id, line)


def cancel(session: Session, job: Job) -> Job:
    """Revoke a queued or running job; workers stop starting model calls as soon as they see it."""
    if job.status in TERMINAL_STATES:
        raise Conflict(f"Task {job.id} already ended with {job.status}")
    finish(session, job, TaskState.REVOKED, "REVOKED: cancelled by the user")
    session.refresh(job)
    return job


def active_job_for(session: Session, experiment_id: int) -> Job | None:
    return session.scalar(select(Job).where(Job.experiment_id == experiment_id, Job.status.in_(ACTIVE_STATES)).limit(1))


def stale_jobs(session: Session, older_than: timedelta) -> list[Job]:
    """Active jobs nobody is working on: queued messages lost, or every lease expired."""
    current = now()
    cutoff = current - older_than
    live_lease = select(JobChunk.id).where(
        JobChunk.job_id == Job.id, JobChunk.done.is_(False), JobChunk.lease_expires_at >= current
    )
    return list(
        session.scalars(
            select(Job).where(
                Job.status.in_(ACTIVE_STATES),
                or_(Job.enqueued_at < cutoff, and_(Job.enqueued_at.is_(None), Job.created_at < cutoff)),
                ~live_lease.exists(),
            )
        )
    )


def overdue_jobs(session: Session) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status == TaskState.STARTED, Job.deadline_at < now())))
