"""How a worker stores answers and verdicts: many at once, replacing an earlier run's, never twice."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import delete, select

from llmcalls import ChatResult, Verdict
from models.db import Database
from models.orm import Entry, Job, PromptResponse, Rating
from services import execution, jobs
from services.execution import RatingOutcome
from services.settings import Settings
from services.states import JobKind
from tests.conftest import ProjectHandle
from tests.services.conftest import make_experiment, new_run
from workers.engine import _apply_together


def _answer(text: str) -> ChatResult:
    message = {"role": "assistant", "content": text}
    return ChatResult(text, message, "fake-model", 3, 4, 0, 0.1, 0.0, 0.0, 1, "stop")


def _verdict(rating: str) -> Verdict:
    return Verdict(rating, f"because {rating}", 5, 2, 0, 0.0, 0.0, 0.1, 1, "json_schema")


def _responses(database: Database, experiment_id: int) -> list[PromptResponse]:
    with database.session() as session:
        return list(session.scalars(select(PromptResponse).where(PromptResponse.experiment_id == experiment_id)))


def test_a_batch_of_answers_is_stored_once_and_a_second_store_is_refused(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    experiment_id = make_experiment(project, 3)
    plan, items = new_run(database, project, experiment_id)
    calls = [(plan, item, _answer(f"a{i}"), None) for i, item in enumerate(items)]

    with database.session() as session:
        first = execution.store_responses(session, calls[:2])
    with database.session() as session:  # a worker that took over the chunk stores item 1 again, and item 2
        second = execution.store_responses(session, calls[1:])

    assert all(isinstance(i, int) for i in first)
    assert second[0] is None and isinstance(second[1], int)
    stored = _responses(database, experiment_id)
    assert sorted(r.messages[0]["content"] for r in stored) == ["a0", "a1", "a2"]
    assert {r.job_id for r in stored} == {plan.job_id}


def test_a_new_run_replaces_the_old_answers_and_their_ratings(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    experiment_id = make_experiment(project, 2)
    old_plan, old_items = new_run(database, project, experiment_id)
    with database.session() as session:
        ids = execution.store_responses(session, [(old_plan, item, _answer("old"), None) for item in old_items])
        calls = [(i, [RatingOutcome(old_plan.criteria[0].id, _verdict("YES"))], True, True) for i in ids]
        execution.store_ratings_many(session, calls)
        session.get_one(Job, old_plan.job_id).status = "SUCCESS"

    plan, items = new_run(database, project, experiment_id)
    assert all(item.replaces and item.response_id is None for item in items)
    with database.session() as session:
        execution.store_responses(session, [(plan, items[0], None, "the model failed")])

    stored = {r.entry_id: r for r in _responses(database, experiment_id)}
    assert stored[items[0].entry_id].error == "the model failed" and stored[items[0].entry_id].job_id == plan.job_id
    assert stored[items[1].entry_id].messages[0]["content"] == "old"  # not regenerated yet: kept
    with database.session() as session:
        assert session.scalar(select(Rating.id).where(Rating.response_id == ids[0])) is None


def test_ratings_of_many_responses_mark_the_complete_ones_rated(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    experiment_id = make_experiment(project, 2)
    plan, items = new_run(database, project, experiment_id)
    criterion = plan.criteria[0].id
    with database.session() as session:
        ids = execution.store_responses(session, [(plan, item, _answer("x"), None) for item in items])
        execution.store_ratings_many(
            session,
            [
                (ids[0], [RatingOutcome(criterion, _verdict("NO"))], True, True),
                (ids[1], [RatingOutcome(criterion, None, "judge unreadable")], False, True),
            ],
        )

    stored = {r.id: r for r in _responses(database, experiment_id)}
    assert stored[ids[0]].rated_at is not None and stored[ids[1]].rated_at is None
    assert [v.rating for v in stored[ids[0]].verdicts] == ["NO"]
    assert [(r.rating, r.error) for r in stored[ids[1]].ratings] == [(None, "judge unreadable")]


def test_engine_applies_grouped_writes_once_and_returns_results_in_order() -> None:
    calls: list[Any] = []

    def single(_session: Any, x: int) -> int:
        calls.append(("single", x))
        return -x

    def many(_session: Any, args: list[tuple[int]]) -> list[int]:
        calls.append(("many", [a[0] for a in args]))
        return [a[0] * 10 for a in args]

    def grouped(_session: Any, x: int) -> int:
        return many(_session, [(x,)])[0]

    grouped.many = many  # type: ignore[attr-defined]
    batch = [(grouped, (1,), None), (single, (2,), None), (grouped, (3,), None)]

    assert _apply_together(None, batch) == [10, -2, 30]
    assert calls == [("single", 2), ("many", [1, 3])]


def test_a_batch_item_whose_entry_was_deleted_fails_alone(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, items = new_run(database, project, make_experiment(project, 2))
    gone, kept = items
    batch = [
        {"template_variables_id": work.entry_id, "experiment_id": plan.experiment_id, "epoch": 1, "messages": []}
        for work in (gone, kept)
    ]
    with database.session() as session:
        job = jobs.create(session, Settings(), project_id=project.id, kind=JobKind.RESPONSES_BATCH, items=batch)
        job_id = job.id
        session.execute(delete(Entry).where(Entry.id == gone.entry_id))
    with database.session() as session:
        assert execution.batch_response_target(session, job_id, batch[0], Settings()) is None
        target = execution.batch_response_target(session, job_id, batch[1], Settings())
        assert target is not None and target.needs_generation
        for item in batch:
            execution.store_batch_response(session, job_id, item, target, _answer("hi"), None)
    with database.session() as session:
        assert session.get_one(Job, job_id).failed == 1
        stored = session.scalars(select(PromptResponse.entry_id).where(PromptResponse.job_id == job_id)).all()
        assert stored == [kept.entry_id]
