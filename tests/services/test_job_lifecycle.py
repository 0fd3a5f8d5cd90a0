"""The job lifecycle: run messages after the commit, re-sends, and one TIMEOUT wherever it is noticed."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from models.db import Database
from models.orm import Job, JobChunk
from services import jobs
from services.states import TaskState
from tests.conftest import ProjectHandle
from tests.services.conftest import make_experiment, new_run


def _job(database: Database, job_id: str) -> Job:
    with database.session() as session:
        return session.get_one(Job, job_id)


def _redis_down(job_id: str) -> None:
    raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_job_is_marked_enqueued_only_once_its_messages_are_sent(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, _ = new_run(database, project, make_experiment(project, 2))
    assert jobs.notify(database, _redis_down, plan.job_id, 3) is False
    assert _job(database, plan.job_id).enqueued_at is None  # the sweeper's to re-send
    sent: list[str] = []
    assert jobs.notify(database, sent.append, plan.job_id, 3) is True
    assert sent == [plan.job_id] * 3 and _job(database, plan.job_id).enqueued_at is not None


def test_the_sweeper_re_sends_a_job_nobody_works_on_once_its_queue_answers(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, _ = new_run(database, project, make_experiment(project, 2))
    assert jobs.resend_stale(database, _redis_down, timedelta(seconds=-1)) == 0
    sent: list[str] = []
    assert jobs.resend_stale(database, sent.append, timedelta(seconds=-1)) == 1 and sent == [plan.job_id]
    assert jobs.resend_stale(database, sent.append, timedelta(hours=1)) == 0  # just sent: not stale


def test_a_worker_and_the_sweeper_time_a_job_out_with_one_message(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    messages, experiment_id = [], make_experiment(project, 1)
    for notice in (lambda s, job_id: jobs.current_state(s, job_id), lambda s, _: jobs.expire_overdue(s)):
        plan, _ = new_run(database, project, experiment_id)
        with database.session() as session:
            jobs.mark_started(session, plan.job_id)
            session.execute(update(Job).where(Job.id == plan.job_id).values(deadline_at=jobs.now() - timedelta(1)))
        with database.session() as session:
            notice(session, plan.job_id)
        job = _job(database, plan.job_id)
        assert job.status == TaskState.TIMEOUT and isinstance(job.status, TaskState)
        messages.append(job.error_msg)
    assert messages[0] == messages[1] == f"TIMEOUT: the job ran past its time limit of {job.time_limit_seconds} s"


def test_a_claim_repeated_after_its_commit_was_lost_finds_its_own_lease(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, _ = new_run(database, project, make_experiment(project, 4))  # a job this short: two chunks of 2
    with database.session() as session:
        first = jobs.claim_chunk(session, plan.job_id, "worker-a", 60)
    with database.session() as session:  # worker-a never learnt it holds `first`, and asks again
        again = jobs.claim_chunk(session, plan.job_id, "worker-a", 60)
        other = jobs.claim_chunk(session, plan.job_id, "worker-b", 60)
        nothing = jobs.claim_chunk(session, plan.job_id, "worker-b", 60, running=[other.id])
    assert (again.id, again.attempts) == (first.id, 1)  # not counted as a restart of a dead worker's chunk
    assert other.id != first.id and nothing is None


def test_a_jobs_last_items_go_in_small_chunks_so_its_end_is_shared(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, _ = new_run(database, project, make_experiment(project, 55))  # chunks of 10, the last 40 of 2
    with database.session() as session:
        chunks = session.scalars(select(JobChunk).where(JobChunk.job_id == plan.job_id).order_by(JobChunk.position))
        sizes = [len(chunk.items) for chunk in chunks]
    assert sizes == [10, 5] + [2] * 20
