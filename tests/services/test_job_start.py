"""A queued experiment job starts unless what it was asked to run is gone."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete

from models.db import Database
from models.orm import Entry, Job
from services import jobs
from services.states import TaskState
from tests.conftest import ProjectHandle
from tests.services.conftest import make_experiment, new_run


def test_a_job_whose_entries_were_all_deleted_is_rejected_at_start(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, items = new_run(database, project, make_experiment(project, 3))
    with database.session() as session:
        session.execute(delete(Entry).where(Entry.id.in_([item.entry_id for item in items])))

    with database.session() as session:
        assert jobs.mark_started(session, plan.job_id) is None
    with database.session() as session:
        job = session.get_one(Job, plan.job_id)
        assert job.status == TaskState.REJECTED and "every entry" in (job.error_msg or "")


def test_one_surviving_entry_in_a_later_batch_is_enough_to_start(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    plan, items = new_run(database, project, make_experiment(project, 5))
    with database.session() as session:
        session.execute(delete(Entry).where(Entry.id.in_([item.entry_id for item in items[:-1]])))

    with database.session() as session:
        job = session.get_one(Job, plan.job_id)
        assert jobs._all_entries_deleted(session, job, batch=2) is False  # checked two ids at a time
        assert jobs.mark_started(session, plan.job_id) is not None
    with database.session() as session:
        assert session.get_one(Job, plan.job_id).status == TaskState.STARTED
