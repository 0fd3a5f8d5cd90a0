"""`/experiments`: create, read with results, list, delete; run, watch, cancel and retry them."""

from __future__ import annotations

from flask import Blueprint, Response, request

from api import sse
from api.auth import current_project_id
from api.downloads import export_response
from api.extensions import db_session, settings, start_job
from api.routing import download_endpoint, endpoint, parse_query, stream_endpoint
from models.orm import Job
from models.schemas.common import Page
from models.schemas.experiments import (
    ExperimentCreate,
    ExperimentOut,
    ExperimentQuery,
    ExportQuery,
    RetryFailed,
    RunExperiment,
)
from models.schemas.jobs import ExperimentStatusOut, StatusQuery, StreamQuery
from services import experiments, export, jobs, runs
from services.errors import not_found
from services.states import JobKind

bp = Blueprint("experiments", __name__, url_prefix="/experiments")


def _params(body: ExperimentCreate | RunExperiment) -> dict | None:
    return body.generation_params.model_dump(exclude_none=True) if body.generation_params else None


def _sdk_request() -> bool:
    return "SDK-Version" in request.headers


@endpoint(bp, "", "POST", body=ExperimentCreate, response=ExperimentOut, status=201)
def create_experiment(body: ExperimentCreate) -> object:
    """Create an experiment; with `generate=true` its generation job starts (`generation_task_id`)."""
    session = db_session()
    experiment = experiments.create(session, settings(), current_project_id(), body)
    task_id = None
    if body.generate:
        job = runs.start_generation(
            session,
            settings(),
            experiment,
            rating_mode=body.rating_mode,
            n_epochs=experiment.n_epochs,
            generation_params=_params(body),
            time_limit_seconds=body.time_limit_seconds,
        )
        task_id = start_job(job)
    return experiments.view(session, experiment, task_id)


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
    """Delete an experiment with its responses and ratings (a running job is cancelled first)."""
    experiments.delete(db_session(), current_project_id(), experiment_id)


@endpoint(bp, "/<int:experiment_id>/run", "POST", body=RunExperiment, response=ExperimentOut)
def run_experiment(experiment_id: int, body: RunExperiment) -> object:
    """Generate and rate every entry × epoch of an experiment that has not run yet; 409 once it has run
    (clone it to run again) and while it runs."""
    session = db_session()
    experiment, job = runs.start_first_run(
        session,
        settings(),
        current_project_id(),
        experiment_id,
        rating_mode=body.rating_mode,
        n_epochs=body.n_epochs,
        generation_params=_params(body),
        time_limit_seconds=body.time_limit_seconds,
    )
    return experiments.view(session, experiment, start_job(job))


@endpoint(bp, "/<int:experiment_id>/retry-failed", "POST", body=RetryFailed, response=ExperimentOut)
def retry_failed(experiment_id: int, body: RetryFailed) -> object:
    """Complete the experiment in one job: regenerate failed responses, rate failed and missing ratings;
    `generation_task_id` is null when nothing is missing. 409 when a failed response carries an
    annotation, unless `discard_annotations`."""
    session = db_session()
    project_id = current_project_id()
    experiment, job = runs.retry_experiment(
        session, settings(), project_id, experiment_id, body.rating_mode, body.discard_annotations
    )
    return experiments.view(session, experiment, start_job(job))


@endpoint(bp, "/<int:experiment_id>/cancel", "POST", response=ExperimentStatusOut)
def cancel_experiment(experiment_id: int) -> object:
    """Cancel the running generation: no new model call starts; finished work is kept (REVOKED)."""
    job = runs.cancel_experiment(db_session(), current_project_id(), experiment_id)
    return runs.experiment_status(db_session(), job, for_sdk=False, log_cursor=None)


def _job(experiment_id: int, task_id: str) -> Job:
    session = db_session()
    experiments.get(session, current_project_id(), experiment_id)
    job = jobs.get(session, current_project_id(), task_id, JobKind.EXPERIMENT)
    if job.experiment_id != experiment_id:
        raise not_found("Task", task_id)
    return job


@endpoint(bp, "/<int:experiment_id>/generation/<task_id>", query=StatusQuery, response=ExperimentStatusOut)
def generation_status(experiment_id: int, task_id: str, query: StatusQuery) -> object:
    """The generation job's state and progress (the SDK sees REVOKED/REJECTED/TIMEOUT as FAILURE)."""
    job = _job(experiment_id, task_id)
    return runs.experiment_status(db_session(), job, for_sdk=_sdk_request(), log_cursor=query.log_cursor)


@stream_endpoint(bp, "/<int:experiment_id>/generation/<task_id>/stream", query=StreamQuery, event=ExperimentStatusOut)
def generation_stream(experiment_id: int, task_id: str) -> Response:
    """SSE: the generation's real state, progress and new log lines, one JSON event each, until it ends."""
    query = parse_query(StreamQuery)
    job_id = _job(experiment_id, task_id).id
    db_session().close()
    return sse.experiment_stream(job_id, query.polling_interval)


@download_endpoint(bp, "/<int:experiment_id>/export", query=ExportQuery, media_types=tuple(export.MEDIA_TYPES.values()))
def export_experiment(experiment_id: int) -> Response:
    """Download every response with its prompt, variables, error and each criterion's verdict and reasoning."""
    return export_response(current_project_id(), experiment_id, parse_query(ExportQuery).format)  # type: ignore[attr-defined]
