"""A queued experiment job starts unless what it was asked to run is gone."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import delete, func, select

from models.db import Database
from models.orm import Entry, Experiment, Job, JobChunk
from services import jobs, runs
from services.errors import Invalid
from services.settings import Settings
from services.states import JobKind, TaskState
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


def test_a_job_over_the_item_limit_is_refused_before_anything_is_written(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    experiment_id = make_experiment(project, 3)
    with database.session() as session:
        experiment = session.get_one(Experiment, experiment_id)
        with pytest.raises(Invalid, match="6 items.*limit is 5 \\(ASSAY_MAX_JOB_ITEMS\\)"):
            runs.start_generation(session, Settings(max_job_items=5), experiment, rating_mode="fast", n_epochs=2)
        session.rollback()
        assert session.scalar(select(func.count(Job.id))) == 0


def test_a_rejected_job_writes_no_chunks(app: Flask, project: ProjectHandle) -> None:
    database: Database = app.extensions["assay_db"]
    with database.session() as session:
        job = jobs.create(
            session,
            Settings(max_active_jobs_per_project=0),
            project_id=project.id,
            kind=JobKind.RATINGS_BATCH,
            items=list(range(1, 101)),
        )
        assert job.status == TaskState.REJECTED
        assert session.scalar(select(func.count(JobChunk.id)).where(JobChunk.job_id == job.id)) == 0
