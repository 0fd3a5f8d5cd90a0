"""Experiment streams of one API process share their reads of a job: many watchers cost one query set
per interval, and each still gets every log line exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from flask import Flask

from api.sse import JobWatch
from models.db import Database
from models.orm import Job
from services import jobs
from services.states import TaskState
from tests.conftest import ProjectHandle, recorded_statements
from tests.services.conftest import make_experiment, new_run


def _statements(database: Database, action: Callable[[], object]) -> int:
    with recorded_statements(database.engine) as statements:
        action()
    return len(statements)


def test_twenty_watchers_of_a_job_share_one_read(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, _ = new_run(database, project, make_experiment(project, 3))
    one = _statements(database, lambda: JobWatch(plan.job_id).read(database, 1.0, 0))
    watch = JobWatch(plan.job_id)
    gate = threading.Barrier(20)

    def watcher() -> None:
        gate.wait()
        watch.read(database, 1.0, 0)

    def twenty() -> None:
        threads = [threading.Thread(target=watcher) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert _statements(database, twenty) == one


def test_a_watcher_that_joins_after_a_change_never_sees_the_shared_older_read(
    app: Flask, project: ProjectHandle
) -> None:
    database: Database = app.extensions["assay_db"]
    plan, _ = new_run(database, project, make_experiment(project, 3))
    watch = JobWatch(plan.job_id)
    with database.session() as session:
        jobs.mark_started(session, plan.job_id)
    assert watch.read(database, 60.0, 0)[0]["status"] == "STARTED"  # an older stream's read, fresh for a minute
    with database.session() as session:
        jobs.finish(session, session.get_one(Job, plan.job_id), TaskState.REVOKED)
    opened = time.monotonic()

    assert watch.read(database, 60.0, 0)[0]["status"] == "STARTED"  # the older stream: shared until due
    assert watch.read(database, 60.0, 0, not_before=opened)[0]["status"] == "REVOKED"


def test_each_stream_gets_every_log_line_once(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, _ = new_run(database, project, make_experiment(project, 3))
    with database.session() as session:
        jobs.log(session, plan.job_id, "first")
    url = f"experiments/{plan.experiment_id}/generation/{plan.job_id}/stream?polling_interval=0.05"
    early = project.client.get(project.url(url), headers=project.headers, buffered=False)
    chunks = early.response  # the stream, read an event at a time
    assert next(chunks).startswith(b": stream open")
    first = json.loads(next(chunks).decode().removeprefix("data: "))
    assert first["logs_delta"] == "first\n"
    with database.session() as session:
        jobs.log(session, plan.job_id, "second")
        jobs.finish(session, session.get_one(Job, plan.job_id), TaskState.REVOKED)
    rest = [json.loads(c.decode().removeprefix("data: ")) for c in chunks if c.startswith(b"data:")]
    early.close()
    assert "".join(e["logs_delta"] or "" for e in rest) == "second\nREVOKED\n"
    late = project.client.get(project.url(url), headers=project.headers)
    blocks = late.get_data(as_text=True).split("\n\n")
    events = [json.loads(block.removeprefix("data: ")) for block in blocks if block.startswith("data: ")]
    assert [e["status"] for e in events] == ["REVOKED"]
    assert events[0]["logs_delta"] == "first\nsecond\nREVOKED\n"
