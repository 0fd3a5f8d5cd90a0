"""Starting jobs (experiment runs, retries, batches) and reporting their state to clients."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.orm import Session

from models.db import in_batches
from models.orm import Criterion, Entry, Experiment, Job, PromptResponse, Rating
from models.schemas.responses import BatchCreateRatings, BatchCreateResponses
from services import jobs, response_columns, responses
from services.errors import Conflict, Invalid, NotFound, owned
from services.settings import Settings
from services.states import JobKind, TaskState

SDK_HIDDEN_STATES = {TaskState.REVOKED, TaskState.REJECTED, TaskState.TIMEOUT}


def start_generation(
    session: Session,
    settings: Settings,
    experiment: Experiment,
    *,
    rating_mode: str,
    n_epochs: int,
    generation_params: dict[str, Any] | None = None,
    items: list[list[int]] | None = None,
    time_limit_seconds: int | None = None,
) -> Job:
    """Create the experiment's generation job: one item per (entry, epoch), or the given items."""
    if jobs.active_job_for(session, experiment.id) is not None:
        raise Conflict(f"Experiment {experiment.id} is already running (task {experiment.generation_task_id})")
    from_column = experiment.response_column_id is not None
    if experiment.prompt_template_id is None and not from_column:
        raise Invalid("body.prompt_template_id: the experiment has no prompt template to generate from")
    n_epochs = 1 if from_column else n_epochs  # a column holds one response per test case
    if items is None:
        entry_ids = session.scalars(
            select(Entry.id).where(Entry.collection_id == experiment.collection_id).order_by(Entry.id)
        ).all()
        items = [[entry_id, epoch] for entry_id in entry_ids for epoch in range(1, n_epochs + 1)]
    experiment.n_epochs = n_epochs
    experiment.rating_mode = rating_mode
    if generation_params is not None:
        experiment.generation_params = generation_params
    job = jobs.create(
        session,
        settings,
        project_id=experiment.project_id,
        kind=JobKind.EXPERIMENT,
        items=items,
        experiment_id=experiment.id,
        params={
            "rating_mode": rating_mode,
            "llm_config_id": experiment.llm_config_id,
            response_columns.STORED_RESPONSES: from_column,
        },
        time_limit_seconds=time_limit_seconds or experiment.time_limit_seconds,
    )
    if job.status == TaskState.PENDING:
        experiment.generation_task_id = job.id
        if from_column:
            response_columns.store(session, experiment, job, items)
    session.flush()
    return job


def start_first_run(
    session: Session, settings: Settings, project_id: int, experiment_id: int, **options: Any
) -> tuple[Experiment, Job]:
    """`POST experiments/{id}/run`: the SDK documents it for experiments that have not run yet (an
    APIError otherwise, so a second run never replaces half the responses); clone to run again."""
    experiment = owned(session, Experiment, project_id, experiment_id, "Experiment")
    if jobs.active_job_for(session, experiment.id) is None and has_run(session, experiment):
        raise Conflict(
            f"Experiment {experiment.id} has already been run: clone it and run the clone, "
            "or retry its failed responses (retry-failed)"
        )
    return experiment, start_generation(session, settings, experiment, **options)


def has_run(session: Session, experiment: Experiment) -> bool:
    """A response stored, or a generation job that was not refused before any work."""
    job = select(Job.id).where(
        Job.experiment_id == experiment.id, Job.kind == JobKind.EXPERIMENT, Job.status != TaskState.REJECTED
    )
    response = select(PromptResponse.id).where(PromptResponse.experiment_id == experiment.id)
    return session.scalar(job.limit(1)) is not None or session.scalar(response.limit(1)) is not None


def cancel_generation(session: Session, experiment: Experiment) -> Job:
    """Revoke the experiment's running generation; 409 when nothing runs."""
    job = jobs.active_job_for(session, experiment.id)
    if job is None:
        raise Conflict(f"Experiment {experiment.id} has no running generation")
    return jobs.cancel(session, job)


def cancel_experiment(session: Session, project_id: int, experiment_id: int) -> Job:
    """Cancel one of the project's experiments' running generation (404 if not its own, 409 if idle)."""
    return cancel_generation(session, owned(session, Experiment, project_id, experiment_id, "Experiment"))


def retry_failed(
    session: Session, settings: Settings, experiment: Experiment, rating_mode: str, discard_annotations: bool = False
) -> Job | None:
    """Complete the experiment in one job: regenerate its failed responses, generate the entries x epochs
    that have none, and rate every response lacking a successful rating for a live criterion (failed
    ratings are replaced). None when nothing is missing. Regenerating deletes a failed response, so one
    carrying an annotation is refused (409) unless `discard_annotations`."""
    failed = _failed_responses(session, experiment)
    annotated = [response_id for response_id, _, _, annotation in failed if annotation]
    if annotated and not discard_annotations:
        raise Conflict(
            f"failed response(s) {annotated[:20]} carry annotations that regenerating them would delete; "
            "send discard_annotations=true to retry them anyway"
        )
    unrated = _unrated_responses(session, experiment)
    keys = {(row[1], row[2]) for row in failed + unrated} | _ungenerated(session, experiment)
    if not keys:
        return None
    items = [list(key) for key in sorted(keys)]
    job = start_generation(
        session, settings, experiment, rating_mode=rating_mode, n_epochs=experiment.n_epochs, items=items
    )
    if job.status == TaskState.PENDING:
        _adopt_for_rating(session, job, [row[0] for row in unrated])
    return job


def _failed_responses(session: Session, experiment: Experiment) -> list[Row[Any]]:
    return list(
        session.execute(
            select(PromptResponse.id, PromptResponse.entry_id, PromptResponse.epoch, PromptResponse.annotation).where(
                PromptResponse.experiment_id == experiment.id, PromptResponse.error.is_not(None)
            )
        )
    )


def _unrated_responses(session: Session, experiment: Experiment) -> list[Row[Any]]:
    """Successful responses without a successful rating for some live criterion of the experiment's set."""
    live = select(Criterion.id).where(
        Criterion.criterion_set_id == experiment.criterion_set_id, Criterion.superseded.is_(False)
    )
    wanted = session.scalar(select(func.count()).select_from(live.subquery())) or 0
    rated = (
        select(func.count(Rating.id))
        .where(Rating.response_id == PromptResponse.id, Rating.error.is_(None), Rating.criterion_id.in_(live))
        .scalar_subquery()
    )
    query = select(PromptResponse.id, PromptResponse.entry_id, PromptResponse.epoch).where(
        PromptResponse.experiment_id == experiment.id, PromptResponse.error.is_(None), rated < wanted
    )
    return list(session.execute(query))


def _ungenerated(session: Session, experiment: Experiment) -> set[tuple[int, int]]:
    """The (entry, epoch) pairs of the experiment's collection with no response at all."""
    entry_ids = session.scalars(select(Entry.id).where(Entry.collection_id == experiment.collection_id))
    wanted = {(entry_id, epoch) for entry_id in entry_ids for epoch in range(1, (experiment.n_epochs or 1) + 1)}
    stored = session.execute(
        select(PromptResponse.entry_id, PromptResponse.epoch).where(PromptResponse.experiment_id == experiment.id)
    )
    return wanted - {(entry_id, epoch) for entry_id, epoch in stored}


def _adopt_for_rating(session: Session, job: Job, response_ids: list[int]) -> None:
    """Hand kept responses to the new job unrated, without their failed ratings: its workers then rate
    exactly the criteria they lack, as they would for a response of their own."""
    for ids in in_batches(response_ids):
        session.execute(delete(Rating).where(Rating.response_id.in_(ids), Rating.error.is_not(None)))
        session.execute(update(PromptResponse).where(PromptResponse.id.in_(ids)).values(job_id=job.id, rated_at=None))


def retry_experiment(
    session: Session,
    settings: Settings,
    project_id: int,
    experiment_id: int,
    rating_mode: str | None = None,
    discard_annotations: bool = False,
) -> tuple[Experiment, Job | None]:
    """Complete one of the project's experiments (see `retry_failed`), rated as asked or as its last run was."""
    experiment = owned(session, Experiment, project_id, experiment_id, "Experiment")
    mode = rating_mode or experiment.rating_mode
    return experiment, retry_failed(session, settings, experiment, mode, discard_annotations)


def start_response_batch(session: Session, settings: Settings, project_id: int, body: BatchCreateResponses) -> Job:
    """Validate every item first (nothing is written when one is invalid), then create the job; items
    without messages are generated by the job (replacing what their (entry, epoch) had), items with
    messages may not replace a stored response (409)."""
    responses.check_items(session, project_id, body.prompt_response_ins, _batch_item)
    responses.prepare_uploads(session, project_id, body.prompt_response_ins, _batch_item)
    items = [item.model_dump(mode="json") for item in body.prompt_response_ins]
    return jobs.create(session, settings, project_id=project_id, kind=JobKind.RESPONSES_BATCH, items=items)


def _batch_item(i: int) -> str:
    return f"body.prompt_response_ins[{i}]"


def start_rating_batch(session: Session, settings: Settings, project_id: int, body: BatchCreateRatings) -> Job:
    found = set(
        session.scalars(
            select(PromptResponse.id).where(
                PromptResponse.project_id == project_id, PromptResponse.id.in_(body.prompt_response_ids)
            )
        )
    )
    missing = [rid for rid in body.prompt_response_ids if rid not in found]
    if missing:
        raise NotFound(f"body.prompt_response_ids: response(s) {missing[:10]} not found")
    return jobs.create(
        session,
        settings,
        project_id=project_id,
        kind=JobKind.RATINGS_BATCH,
        items=list(dict.fromkeys(body.prompt_response_ids)),
        params={"rating_mode": body.rating_mode},
    )


def _visible_state(job: Job, for_sdk: bool) -> dict[str, Any]:
    """The official SDK's blocking loops end only on SUCCESS/FAILURE, so it sees the others as FAILURE."""
    status = TaskState(job.status)
    if for_sdk and status in SDK_HIDDEN_STATES:
        return {"status": TaskState.FAILURE.value, "error_msg": job.error_msg or status.value, "state": status.value}
    return {"status": status.value, "error_msg": job.error_msg, "state": status.value}


def experiment_status(session: Session, job: Job, *, for_sdk: bool, log_cursor: int | None) -> dict[str, Any]:
    """State, progress and, when the caller keeps a log cursor, the log lines after it.

    The lines are read before the state: on PostgreSQL each statement sees the latest commits, so a
    state read first could be older than a line read after it (a PENDING event carrying "Started"),
    and a client following the lines of STARTED events would never see that one."""
    logs_delta, cursor = jobs.logs_since(session, job.id, log_cursor) if log_cursor is not None else (None, None)
    if log_cursor is not None:
        session.refresh(job)
    payload = {**_visible_state(job, for_sdk), **jobs.progress(session, job)}
    payload["logs_delta"], payload["log_cursor"] = logs_delta, cursor
    payload["generation_task_id"] = _reported_task(session, job)
    payload["has_internal_error"] = job.status == TaskState.FAILURE
    return payload


def _reported_task(session: Session, job: Job) -> str | None:
    """The experiment's task as the SDK's agent-evaluation wait reads it beside the polled task's status: the
    one the experiment runs now (another upload may have taken over), else the polled job itself. It must
    never be null for a job of this experiment, ended or not: the SDK takes a null there for a task id that
    is not the experiment's and raises, so an evaluation that ended before its first poll would fail."""
    current = session.scalar(select(Experiment.generation_task_id).where(Experiment.id == job.experiment_id))
    return current or job.id


def batch_status(session: Session, job: Job, *, for_sdk: bool) -> dict[str, Any]:
    return {**_visible_state(job, for_sdk), **jobs.progress(session, job)}
