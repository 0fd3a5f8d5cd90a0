"""Experiments whose responses are a column of their collection (`response_column_id`): no model is
called. Starting the run stores every entry's value of that column as its response, in the same unit of
work as the job, marked as the job's own; the job's workers then only rate them (a response the job
already holds is never generated again), chunked and crash-safe like any other run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, lazyload

from models.db import in_batches
from models.orm import Entry, Experiment, Job, PromptResponse
from services import responses
from services.errors import Invalid

# Marks a job whose responses were stored when it was created: it needs no prompt template to run.
STORED_RESPONSES = "stored_responses"


def column_name(experiment: Experiment) -> str:
    for column in experiment.collection.columns:
        if column.id == experiment.response_column_id:
            return column.name
    raise Invalid(
        f"response_column_id: column {experiment.response_column_id} is no longer a column of collection "
        f"{experiment.collection_id}"
    )


def store(session: Session, experiment: Experiment, job: Job, items: list[list[int]]) -> None:
    """Store the column's values as the responses of `items` (replacing an earlier run's, as a retry does)."""
    column = column_name(experiment)
    entry_ids = [entry_id for entry_id, _ in items]
    table = PromptResponse.__table__
    for batch in in_batches(entry_ids):
        session.execute(delete(table).where(table.c.experiment_id == experiment.id, table.c.entry_id.in_(batch)))
        query = select(Entry).where(Entry.id.in_(batch)).options(lazyload("*"))
        entries = list(session.scalars(query))
        prompts = responses.prompts_for(session, experiment.prompt_template, entries)
        rows = [_row(experiment, job, entry, prompts[entry.id].id, column) for entry in entries]
        if rows:
            session.execute(insert(table), rows)


def _row(experiment: Experiment, job: Job, entry: Entry, prompt_id: int, column: str) -> dict[str, Any]:
    messages, error = answer(entry.input_values, column)
    return {
        "project_id": experiment.project_id,
        "experiment_id": experiment.id,
        "prompt_id": prompt_id,
        "entry_id": entry.id,
        "epoch": 1,
        "job_id": job.id,
        "messages": messages,
        "error": error,
        "rated_at": datetime.now(UTC) if error else None,
    }


def answer(values: dict[str, Any], column: str) -> tuple[list[dict[str, Any]], str | None]:
    """The response messages a test case's column value stands for, or why it stands for none."""
    value = values.get(column)
    if value is None or value == "":
        return [], f"the test case has no value in the response column '{column}'"
    if isinstance(value, list) and _is_conversation(value):
        return value, None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return [{"role": "assistant", "content": text}], None


def _is_conversation(value: list[Any]) -> bool:
    roles = [m.get("role") for m in value if isinstance(m, dict)]
    return (
        len(roles) == len(value) and set(roles) <= responses.RESPONSE_ROLES and bool({"assistant", "tool"} & set(roles))
    )
