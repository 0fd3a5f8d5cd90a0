"""`/experiments`: create, read with results, list, delete."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.experiments import ExperimentCreate, ExperimentOut, ExperimentQuery
from services import experiments

bp = Blueprint("experiments", __name__, url_prefix="/experiments")


@endpoint(bp, "", "POST", body=ExperimentCreate, response=ExperimentOut, status=201)
def create_experiment(body: ExperimentCreate) -> object:
    """Create an experiment; with `generate=true` its generation job starts (`generation_task_id`)."""
    session = db_session()
    return experiments.view(session, experiments.create(session, current_project_id(), body))


@endpoint(bp, "", query=ExperimentQuery, response=Page[ExperimentOut])
def list_experiments(query: ExperimentQuery) -> object:
    """List experiments, newest first; `experiment_name` is exact."""
    return experiments.list_(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "/<int:experiment_id>", response=ExperimentOut)
def get_experiment(experiment_id: int) -> object:
    """One experiment with its results computed from its responses and ratings."""
    session = db_session()
    return experiments.view(session, experiments.get(session, current_project_id(), experiment_id))


@endpoint(bp, "/<int:experiment_id>", "DELETE")
def delete_experiment(experiment_id: int) -> None:
    """Delete an experiment with its responses and ratings."""
    experiments.delete(db_session(), current_project_id(), experiment_id)
