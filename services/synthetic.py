"""Synthetic experiments for benchmarks and tests: thousands of responses and ratings bulk-inserted in
one transaction, with no model call, shaped like a finished run (some failures, varied verdicts)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from models.orm import (
    Collection,
    CollectionColumn,
    Criterion,
    CriterionSet,
    Entry,
    Experiment,
    Job,
    Prompt,
    PromptResponse,
    PromptTemplate,
    Rating,
    utcnow,
)
from services import collections
from services.states import JobKind, TaskState

TEMPLATE = [{"role": "user", "content": "Answer briefly: {{question}}"}]


@dataclass
class Seeded:
    experiment_id: int
    criterion_ids: list[int]
    entry_ids: list[int]


def _ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(stmt, rows))


def _library(session: Session, project_id: int, name: str, n_criteria: int) -> tuple[int, int, list[int]]:
    template = PromptTemplate(
        project_id=project_id,
        name=name,
        version=1,
        messages=TEMPLATE,
        placeholders=["question"],
        content_hash=uuid.uuid4().hex,
    )
    criterion_set = CriterionSet(project_id=project_id, name=name)
    session.add_all([template, criterion_set])
    session.flush()
    criteria = [
        Criterion(
            project_id=project_id, criterion_set_id=criterion_set.id, criterion_str=f"Criterion {i + 1}?", position=i
        )
        for i in range(n_criteria)
    ]
    session.add_all(criteria)
    session.flush()
    return template.id, criterion_set.id, [c.id for c in criteria]


def _collection(session: Session, project_id: int, name: str, n: int) -> tuple[int, list[int]]:
    collection = Collection(project_id=project_id, name=name)
    collection.columns.append(CollectionColumn(name="question", column_position=0))
    session.add(collection)
    session.flush()
    values = [{"question": f"Question number {i}?"} for i in range(n)]
    rows = [
        {"collection_id": collection.id, "input_values": v, "identity_hash": collections.identity_hash(v, None)}
        for v in values
    ]
    return collection.id, _ids(session, Entry, rows)


def verdict(i: int, criterion_index: int) -> str | None:
    """Deterministic: criterion k passes about (90 - 15k)% of the time; every 97th rating failed."""
    if i % 97 == criterion_index:
        return None
    return "YES" if (i * 7 + criterion_index * 13) % 100 < 90 - 15 * criterion_index else "NO"


def seed_experiment(
    session: Session, project_id: int, name: str, n: int, n_criteria: int = 3, entries: list[int] | None = None
) -> Seeded:
    """A finished experiment with `n` responses (every 50th failed) and their ratings; `entries` reuses a
    collection's entries (so two seeded experiments can be compared), else a new collection is made."""
    template_id, set_id, criterion_ids = _library(session, project_id, name, n_criteria)
    if entries is None:
        collection_id, entries = _collection(session, project_id, name, n)
    else:
        collection_id = session.get_one(Entry, entries[0]).collection_id
    experiment = Experiment(
        project_id=project_id,
        name=name,
        prompt_template_id=template_id,
        collection_id=collection_id,
        criterion_set_id=set_id,
    )
    session.add(experiment)
    session.flush()
    now = utcnow()
    job = Job(
        id=str(uuid.uuid4()),
        project_id=project_id,
        kind=JobKind.EXPERIMENT,
        experiment_id=experiment.id,
        status=TaskState.SUCCESS,
        total=n,
        started_at=now,
        finished_at=now,
    )
    session.add(job)
    prompts = _ids(
        session,
        Prompt,
        [
            {
                "prompt_template_id": template_id,
                "entry_id": e,
                "messages": [{"role": "user", "content": f"Answer briefly: Question {i}?"}],
            }
            for i, e in enumerate(entries[:n])
        ],
    )
    responses = _ids(
        session,
        PromptResponse,
        [
            _response(project_id, experiment.id, job.id, i, e, p, now)
            for i, (e, p) in enumerate(zip(entries[:n], prompts, strict=True))
        ],
    )
    ratings = [
        {
            "response_id": r,
            "criterion_id": c,
            "rating": verdict(i + len(name), k),
            "reasoning": f"Reason {i}/{k}",
            "error": None if verdict(i + len(name), k) else "judge answer unreadable",
            "created_at": now,
        }
        for i, r in enumerate(responses)
        if i % 50 != 49
        for k, c in enumerate(criterion_ids)
    ]
    session.execute(insert(Rating), ratings)
    session.flush()
    return Seeded(experiment.id, criterion_ids, entries[:n])


def _response(
    project_id: int, experiment_id: int, job_id: str, i: int, entry_id: int, prompt_id: int, now: Any
) -> dict[str, Any]:
    failed = i % 50 == 49
    return {
        "project_id": project_id,
        "experiment_id": experiment_id,
        "job_id": job_id,
        "entry_id": entry_id,
        "prompt_id": prompt_id,
        "epoch": 1,
        "messages": [] if failed else [{"role": "assistant", "content": f"Answer {i} to question {i}."}],
        "error": "RateLimitError: 429 Too Many Requests" if failed else None,
        "llm_model_name": "fake-model",
        "duration_seconds": 0.1,
        "input_tokens": 12,
        "output_tokens": 8,
        "rated_at": None if failed else now,
        "created_at": now,
    }
