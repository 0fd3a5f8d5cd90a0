"""Agentic experiments: results of agents run outside Assay, uploaded per task and rated by the judge.

The collection's rows are the tasks. When the experiment is created its tasks (id and name) and its
criteria are frozen, so uploads keep resolving the same way whatever happens to the collection later;
a result names its task by `task_id` (authoritative) or `task_name` (a frozen name, or the row's
current name after a rename). Uploaded results become responses; the criteria they bring no rating for
are rated by an experiment job that owns those responses, so the engine only rates them (chunked,
crash-safe), as for a response column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from models.db import in_batches
from models.orm import Collection, Criterion, Entry, Experiment, Job, PromptResponse, Rating
from models.schemas.agent_results import AgentResultsUpload, AgentTrialIn, TaskRef
from services import jobs, responses
from services.errors import Conflict, Invalid, ServiceError, owned
from services.execution import active_criteria
from services.response_columns import STORED_RESPONSES
from services.settings import Settings
from services.states import JobKind, TaskState
from services.templates import render_messages


class TaskMatchFailed(ServiceError):
    """No result named a task: the SDK turns this 400 (`kind: unmatched_tasks`) into TaskMatchError."""

    status = 400


# ---- freezing the definition at creation


def task_name_column(collection: Collection) -> str:
    """The column naming the tasks: `task_name` when the collection has one, else its first column."""
    names = [c.name for c in collection.columns]
    if not names:
        raise Invalid("body.collection_id: an AGENTIC experiment needs a collection with a column naming its tasks")
    return "task_name" if "task_name" in names else names[0]


def freeze(session: Session, experiment: Experiment, collection: Collection) -> None:
    """Store the tasks and criteria that uploads to this experiment are keyed by."""
    column = task_name_column(collection)
    rows = session.execute(
        select(Entry.id, Entry.input_values).where(Entry.collection_id == collection.id).order_by(Entry.id)
    )
    experiment.agent_definition = {
        "version": 1,
        "task_name_column": column,
        "tasks": [[entry_id, _name(values, column)] for entry_id, values in rows],
        "criterion_ids": [c.id for c in active_criteria(session, experiment.criterion_set_id)],
    }


def _name(values: dict[str, Any], column: str) -> str:
    value = values.get(column)
    return value if isinstance(value, str) else "" if value is None else str(value)


# ---- reading it back


@dataclass
class Frozen:
    """An agentic experiment's frozen definition with the tasks' current rows."""

    experiment: Experiment
    column: str
    tasks: dict[int, str]
    criterion_ids: list[int]
    current: dict[int, dict[str, Any]] = field(default_factory=dict)

    def match(self, ref: TaskRef) -> tuple[int | None, str | None, str | None]:
        """(task id, frozen task name, None), or the reason the reference resolves to no task."""
        if ref.task_id is not None:
            if ref.task_id not in self.tasks:
                return None, None, f"task_id {ref.task_id} is not a task of experiment {self.experiment.id}"
            return self._existing(ref.task_id)
        name = (ref.task_name or "").strip()
        if not name:
            return None, None, "task_id or task_name is required"
        found = [t for t, n in self.tasks.items() if n == name]
        if not found:
            found = [t for t, n in self.tasks.items() if _name(self.current.get(t, {}), self.column) == name]
        if len(found) > 1:
            return None, name, f"{len(found)} tasks are named '{name}': use task_id"
        if not found:
            return None, name, f"no task is named '{name}' (column '{self.column}')"
        return self._existing(found[0])

    def _existing(self, task_id: int) -> tuple[int | None, str | None, str | None]:
        if task_id not in self.current:
            return task_id, self.tasks[task_id], "the task's collection row was deleted"
        return task_id, self.tasks[task_id], None


def load(session: Session, project_id: int, experiment_id: int) -> Frozen:
    experiment = owned(session, Experiment, project_id, experiment_id, "Experiment")
    definition = experiment.agent_definition
    if experiment.evaluation_mode != "AGENTIC" or not definition:
        raise Invalid(f"Experiment {experiment.id} is not an AGENTIC experiment (evaluation_mode AGENTIC)")
    tasks = {task_id: name for task_id, name in definition["tasks"]}
    # A frozen criterion deleted since accepts no rating any more.
    kept = set(session.scalars(select(Criterion.id).where(Criterion.id.in_(definition["criterion_ids"]))))
    criterion_ids = [c for c in definition["criterion_ids"] if c in kept]
    frozen = Frozen(experiment, definition["task_name_column"], tasks, criterion_ids)
    for batch in in_batches(sorted(tasks)):
        rows = session.execute(select(Entry.id, Entry.input_values).where(Entry.id.in_(batch)))
        frozen.current.update((entry_id, values) for entry_id, values in rows)
    return frozen


def definition(session: Session, project_id: int, experiment_id: int) -> dict[str, Any]:
    """The task and criterion ids an upload accepts, each criterion rendered with the task's values."""
    frozen = load(session, project_id, experiment_id)
    criteria = {c.id: c for c in session.scalars(select(Criterion).where(Criterion.id.in_(frozen.criterion_ids)))}
    tasks = []
    for task_id, name in frozen.tasks.items():
        values = frozen.current.get(task_id)
        current = _name(values, frozen.column) if values is not None else None
        tasks.append(
            {
                "task_id": task_id,
                "task_name": name,
                "criteria": [_criterion(criteria[c], values or {}) for c in frozen.criterion_ids if c in criteria],
                "row_exists": values is not None,
                "current_task_name": current if current != name else None,
            }
        )
    return {"version": 1, "task_name_column": frozen.column, "tasks": tasks}


def _criterion(criterion: Criterion, values: dict[str, Any]) -> dict[str, Any]:
    rendered = render_messages([{"content": criterion.criterion_str}], values)[0]["content"]
    label = criterion.label or criterion.criterion_str
    return {"criterion_id": criterion.id, "label": label[:25], "scope": "shared", "rendered_criterion_str": rendered}


def preview(session: Session, project_id: int, experiment_id: int, refs: Sequence[TaskRef]) -> dict[str, Any]:
    """The task each reference would be stored against, or why none; nothing is stored."""
    frozen = load(session, project_id, experiment_id)
    results = [_match_out(i, *frozen.match(ref)) for i, ref in enumerate(refs)]
    matched = sum(1 for r in results if r["reason"] is None)
    return {
        "task_name_column": frozen.column,
        "matched": matched,
        "unmatched": len(results) - matched,
        "results": results,
    }


def _match_out(index: int, task_id: int | None, task_name: str | None, reason: str | None) -> dict[str, Any]:
    return {"index": index, "task_id": task_id, "task_name": task_name, "reason": reason}


# ---- uploads

ACCEPTED_TASKS_SHOWN = 10
REASONS_SHOWN = 20


@dataclass
class Planned:
    """What an upload will store, decided before anything is written: (task id, trial, its ratings)."""

    rows: list[tuple[int, AgentTrialIn, list[Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def upload(
    session: Session, settings: Settings, project_id: int, experiment_id: int, body: AgentResultsUpload
) -> tuple[dict[str, Any], Job | None]:
    """Store every result that names a task (the others are reported in `errors`), its precomputed
    ratings, and queue the judge for the criteria it brings no rating for (`evaluate`)."""
    frozen = load(session, project_id, experiment_id)
    matches = [frozen.match(result) for result in body.results]
    if all(reason is not None for _, _, reason in matches):
        raise _refusal(frozen, "unmatched_tasks", "No result names a task of this experiment", matches)
    planned = _plan(session, frozen, body, matches)
    if not planned.rows:
        raise _refusal(frozen, "nothing_stored", "No result could be stored", planned.errors)
    stored = _store(session, frozen.experiment, body.epoch, planned.rows)
    job, pending = _queue_evaluation(session, settings, frozen, stored, planned, body.evaluate)
    outcome = {
        "created_responses": len(stored),
        "created_ratings": sum(len(ratings) for _, _, ratings in planned.rows),
        "errors": planned.errors,
        "pending_evaluations": pending,
        "evaluation_task_id": job.id if job is not None else None,
    }
    return outcome, job


def _refusal(frozen: Frozen, kind: str, message: str, reasons: Sequence[Any]) -> TaskMatchFailed:
    texts = [r if isinstance(r, str) else f"results[{i}]: {r[2]}" for i, r in enumerate(reasons)][:REASONS_SHOWN]
    accepted = [{"task_id": t, "task_name": n} for t, n in frozen.tasks.items() if t in frozen.current]
    return TaskMatchFailed(
        f"{message}; nothing was stored: {'; '.join(texts[:3])}",
        kind=kind,
        accepted_tasks=accepted[:ACCEPTED_TASKS_SHOWN],
        accepted_tasks_total=len(accepted),
        results=texts,
    )


def _plan(session: Session, frozen: Frozen, body: AgentResultsUpload, matches: list[Any]) -> Planned:
    planned = Planned()
    taken = _answered(session, frozen.experiment.id, body.epoch, [t for t, _, r in matches if r is None])
    for i, (trial, (task_id, _, reason)) in enumerate(zip(body.results, matches, strict=True)):
        where = f"results[{i}]"
        problem = reason or _trial_problem(trial)
        if problem is None and task_id in taken:
            problem = f"task {task_id} already has a result for epoch {body.epoch}; it was not replaced"
        if problem is not None:
            planned.errors.append(f"{where}: {problem}")
            continue
        taken.add(task_id)
        planned.rows.append((task_id, trial, _ratings(frozen, trial, where, planned.errors)))
    return planned


def _answered(session: Session, experiment_id: int, epoch: int, task_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for batch in in_batches(sorted(set(task_ids))):
        query = select(PromptResponse.entry_id).where(
            PromptResponse.experiment_id == experiment_id,
            PromptResponse.epoch == epoch,
            PromptResponse.entry_id.in_(batch),
        )
        found.update(session.scalars(query))
    return found


def _trial_problem(trial: AgentTrialIn) -> str | None:
    if not trial.messages:
        return None if trial.error else "needs the agent's messages, or an error"
    try:
        responses.check_response_messages(trial.messages, "messages")
    except Invalid as exc:
        return exc.detail
    return None


def _ratings(frozen: Frozen, trial: AgentTrialIn, where: str, errors: list[str]) -> list[Any]:
    kept: dict[int, Any] = {}
    for j, rating in enumerate(trial.criterion_ratings):
        if rating.criterion_id is None:
            errors.append(f"{where}.criterion_ratings[{j}]: criterion_id is required (a label never selects one)")
        elif rating.criterion_id not in frozen.criterion_ids:
            errors.append(f"{where}.criterion_ratings[{j}]: criterion {rating.criterion_id} is not in the definition")
        else:
            kept.setdefault(rating.criterion_id, rating)
    return list(kept.values())


def _store(session: Session, experiment: Experiment, epoch: int, rows: list[Any]) -> list[PromptResponse]:
    entries: list[Entry] = []
    for batch in in_batches([task_id for task_id, _, _ in rows]):
        entries += session.scalars(select(Entry).where(Entry.id.in_(batch)).options(lazyload("*")))
    prompts = responses.prompts_for(session, experiment.prompt_template, entries)
    stored = [
        _response(experiment, epoch, prompts[task_id].id, task_id, trial, ratings) for task_id, trial, ratings in rows
    ]
    session.add_all(stored)
    try:
        session.flush()
    except IntegrityError:  # another upload stored a result for one of these tasks and epoch meanwhile
        raise Conflict(
            f"a concurrent upload stored results for epoch {epoch} of these tasks; nothing was stored"
        ) from None
    return stored


def _response(
    experiment: Experiment, epoch: int, prompt_id: int, task_id: int, trial: AgentTrialIn, ratings: list[Any]
) -> PromptResponse:
    response = PromptResponse(
        project_id=experiment.project_id,
        experiment_id=experiment.id,
        prompt_id=prompt_id,
        entry_id=task_id,
        epoch=epoch,
        messages=trial.messages,
        error=trial.error,
        duration_seconds=trial.duration_seconds,
        input_tokens=trial.input_tokens,
        output_tokens=trial.output_tokens,
        cached_tokens=trial.cached_tokens,
        trajectory=trial.trajectory,
    )
    response.ratings = [Rating(criterion_id=r.criterion_id, rating=r.rating, reasoning=r.reasoning) for r in ratings]
    return response


def _queue_evaluation(
    session: Session, settings: Settings, frozen: Frozen, stored: list[PromptResponse], planned: Planned, evaluate: bool
) -> tuple[Job | None, int]:
    """An experiment job owning the responses that still lack ratings; the others are rated already."""
    now, pending = datetime.now(UTC), []
    for response, (_, _, ratings) in zip(stored, planned.rows, strict=True):
        missing = set(frozen.criterion_ids) - {r.criterion_id for r in ratings}
        if response.error is None and missing:
            pending.append(response)
        else:
            response.rated_at = now
    if not pending or not evaluate:
        return None, 0
    experiment = frozen.experiment
    job = jobs.create(
        session,
        settings,
        project_id=experiment.project_id,
        kind=JobKind.EXPERIMENT,
        items=[[r.entry_id, r.epoch] for r in pending],
        experiment_id=experiment.id,
        params={
            "rating_mode": experiment.rating_mode,
            "llm_config_id": experiment.llm_config_id,
            STORED_RESPONSES: True,
        },
    )
    if job.status != TaskState.PENDING:
        planned.errors.append(f"the evaluation was not queued: {job.error_msg}")
        return job, 0
    for response in pending:
        response.job_id = job.id
    experiment.generation_task_id = job.id
    session.flush()
    return job, len(pending)
