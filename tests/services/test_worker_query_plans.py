"""The statements a worker runs for a job use indexes on the tables that grow with a project's history.

A worker's CPU per model call must not grow with the database: a statement that scans responses,
ratings, prompts, entries, jobs, chunks or logs costs more with every run. Each statement recorded
while a second run of an experiment replaces the first's answers is explained on PostgreSQL with
sequential scans disabled: a `Seq Scan` left on such a table means no index can serve it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from llmcalls import ChatResult, Verdict
from models.db import Database
from models.orm import Job
from services import execution, jobs
from services.execution import RatingOutcome
from services.states import TaskState
from tests.conftest import ProjectHandle
from tests.services.conftest import make_experiment, new_run

HISTORY_TABLES = ("responses", "ratings", "prompts", "entries", "jobs", "job_chunks", "job_logs")
OWNER = "worker-1"


@contextmanager
def recorded(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """(statement, parameters) of every SELECT, UPDATE and DELETE `engine` runs inside the block."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _answer() -> ChatResult:
    return ChatResult("a", {"role": "assistant", "content": "a"}, "fake-model", 3, 4, 0, 0.1, 0.0, 0.0, 1, "stop")


def _run_once(database: Database, project: ProjectHandle, experiment_id: int) -> None:
    """What a worker's units do for one run of the experiment, in order."""
    plan, _ = new_run(database, project, experiment_id)
    with database.session() as session:
        jobs.mark_started(session, plan.job_id)
    with database.session() as session:
        jobs.claimable_jobs(session)
        chunk = jobs.claim_chunk(session, plan.job_id, OWNER, 20.0)
        assert chunk is not None
        chunk_id, items = chunk.id, chunk.items
    with database.session() as session:
        work = execution.load_items(session, plan, items)
        ids = execution.store_responses(session, [(plan, item, _answer(), None) for item in work])
        verdict = Verdict("YES", "ok", 5, 2, 0, 0.0, 0.0, 0.1, 1, "json_schema")
        outcomes = [RatingOutcome(plan.criteria[0].id, verdict)]
        execution.store_ratings_many(session, [(i, outcomes, True, True) for i in ids])
        jobs.renew_leases(session, [chunk_id], OWNER, 20.0)
        jobs.current_state(session, plan.job_id)
        jobs.complete_chunk(session, chunk_id, OWNER)
        jobs.pending_chunks(session, plan.job_id)
        jobs.succeed(session, plan.job_id)
        assert session.get_one(Job, plan.job_id).status == TaskState.SUCCESS


def _seq_scans(database: Database, statement: str, parameters: Any) -> list[str]:
    with database.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
    return [line.strip() for line in plan if any(f"Seq Scan on {table} " in line + " " for table in HISTORY_TABLES)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_rerun_of_an_experiment_scans_no_table_that_grows_with_history(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    experiment_id = make_experiment(project, 3)
    _run_once(database, project, experiment_id)
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE"))

    with recorded(database.engine) as statements:
        _run_once(database, project, experiment_id)  # replaces the first run's answers

    assert any(s.startswith("DELETE FROM responses") for s, _ in statements)  # the replacing path ran
    scans = {
        statement: found
        for statement, parameters in statements
        if (found := _seq_scans(database, statement, parameters))
    }
    assert scans == {}
