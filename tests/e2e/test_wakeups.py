"""A worker joins a job on its wake-up alone: no run message, no sweeper to re-send one, and no scout
until long after the test."""

from __future__ import annotations

import pytest
from elluminate import Client

from models.db import Database
from models.orm import Experiment
from services import runs, wakeups
from services.settings import load_settings
from tests.e2e.conftest import Rest, Stack
from tests.e2e.runs import final_status, new_experiment

pytestmark = pytest.mark.e2e

# The workers scout once when they start (before the job exists) and then not for an hour.
STACK_ENV = {"ASSAY_WORKER_SCOUT_SECONDS": "3600"}
STACK_SWEEPER = False


def test_a_committed_job_runs_on_its_wake_up_without_a_run_message(stack: Stack) -> None:
    project_id, key = stack.new_project("Wake-ups")
    experiment = new_experiment(Client(base_url=stack.base_url, api_key=key), "Woken", 6)
    database = Database(stack.env["DATABASE_URL"])
    with database.session() as session:  # the job a submission writes, without its Celery messages
        job = runs.start_generation(
            session, load_settings(), session.get(Experiment, experiment.id), rating_mode="fast", n_epochs=1
        )
    database.engine.dispose()

    wakeups.publish(stack.env["REDIS_URL"], job.id)

    status = final_status(Rest(stack.base_url, key, project_id), experiment.id, job.id, timeout=60)
    assert status["status"] == "SUCCESS"
    assert status["completed_responses"] == 6
