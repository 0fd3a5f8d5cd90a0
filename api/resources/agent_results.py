"""`/experiments/{id}/agent-results`: results of agents run outside Assay, for AGENTIC experiments."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings, start_job
from api.routing import endpoint
from models.schemas.agent_results import (
    AgentResultsDefinitionOut,
    AgentResultsUpload,
    AgentResultsUploadOut,
    MatchPreviewOut,
    MatchPreviewRequest,
)
from services import agent_results

bp = Blueprint("agent_results", __name__, url_prefix="/experiments")


@endpoint(bp, "/<int:experiment_id>/agent-results/definition", response=AgentResultsDefinitionOut)
def get_definition(experiment_id: int) -> object:
    """The tasks and criteria an upload is keyed by, frozen when the experiment was created."""
    return agent_results.definition(db_session(), current_project_id(), experiment_id)


@endpoint(bp, "/<int:experiment_id>/agent-results/preview", "POST", body=MatchPreviewRequest, response=MatchPreviewOut)
def preview_matching(experiment_id: int, body: MatchPreviewRequest) -> object:
    """The task each result would be stored against, or why none; nothing is stored."""
    return agent_results.preview(db_session(), current_project_id(), experiment_id, body.results)


@endpoint(bp, "/<int:experiment_id>/agent-results", "POST", body=AgentResultsUpload, response=AgentResultsUploadOut)
def upload(experiment_id: int, body: AgentResultsUpload) -> object:
    """Store agent trials per task with their ratings; the judge rates the criteria they lack (a job,
    `evaluation_task_id`). A batch naming no task is a 400 with `kind: unmatched_tasks`."""
    outcome, job = agent_results.upload(db_session(), settings(), current_project_id(), experiment_id, body)
    start_job(job)
    return outcome
