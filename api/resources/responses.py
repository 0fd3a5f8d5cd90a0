"""`/responses`: the responses of experiments with their ratings embedded, and response batches."""

from __future__ import annotations

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from api import sse
from api.auth import current_project_id
from api.extensions import db_session, settings, start_job
from api.routing import endpoint, parse_query, stream_endpoint
from models.orm import Job
from models.schemas.common import Page
from models.schemas.jobs import StreamQuery, TaskStatusOut
from models.schemas.responses import (
    AnnotationUpdate,
    BatchCreateResponses,
    ComparisonSamplesQuery,
    CreatePromptResponse,
    PromptResponseOut,
    ResponsesQuery,
    ResponsesSampleOut,
)
from services import comparison, jobs, responses, runs
from services.states import JobKind

bp = Blueprint("responses", __name__, url_prefix="/responses")


def start_batch(job: Job) -> str:
    """Enqueue a batch job after the commit and answer with its id as a bare JSON string."""
    return start_job(job) or job.id


def batch_routes(blueprint: Blueprint, kind: JobKind) -> None:
    """Status, SSE stream and cancel of a batch kind: the same three routes for responses and ratings."""

    @endpoint(blueprint, "/batches/<task_id>", response=TaskStatusOut)
    def batch_status(task_id: str) -> object:
        """A batch's state (the SDK sees REVOKED/REJECTED/TIMEOUT as FAILURE) with processed/total/failed."""
        job = jobs.get(db_session(), current_project_id(), task_id, kind)
        return runs.batch_status(db_session(), job, for_sdk="SDK-Version" in request.headers)

    @endpoint(blueprint, "/batches/<task_id>", "DELETE", response=TaskStatusOut)
    def cancel_batch(task_id: str) -> object:
        """Cancel a batch: no new model call starts; finished items are kept (REVOKED)."""
        job = jobs.cancel(db_session(), jobs.get(db_session(), current_project_id(), task_id, kind))
        return runs.batch_status(db_session(), job, for_sdk=False)

    @stream_endpoint(blueprint, "/batches/<task_id>/stream", query=StreamQuery, event=TaskStatusOut)
    def batch_stream(task_id: str) -> Response:
        """SSE: the batch's real state until it ends, then the stream closes."""
        query = parse_query(StreamQuery)
        job_id = jobs.get(db_session(), current_project_id(), task_id, kind).id

        def poll(session: Session) -> dict:
            return runs.batch_status(session, session.get_one(Job, job_id), for_sdk=False)

        db_session().close()
        return sse.stream(poll, query.polling_interval)


@endpoint(bp, "", query=ResponsesQuery, response=Page[PromptResponseOut])
def list_responses(query: ResponsesQuery) -> object:
    """List responses in id order with their ratings; filter by experiment, ids (repeated), entry, ..."""
    return responses.list_(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "", "POST", body=CreatePromptResponse, response=PromptResponseOut, status=201)
def add_response(body: CreatePromptResponse) -> object:
    """Store a response produced elsewhere (it replaces the same entry and epoch of the experiment)."""
    return responses.add(db_session(), current_project_id(), body)


@endpoint(bp, "/batches", "POST", body=BatchCreateResponses, response=str, status=201)
def create_response_batch(body: BatchCreateResponses) -> object:
    """Store or generate many responses as one job; answers the task id as a bare JSON string."""
    return start_batch(runs.start_response_batch(db_session(), settings(), current_project_id(), body))


batch_routes(bp, JobKind.RESPONSES_BATCH)


@endpoint(bp, "/comparison/samples", query=ComparisonSamplesQuery, response=list[ResponsesSampleOut])
def comparison_samples(query: ComparisonSamplesQuery) -> object:
    """The test cases two experiments both answered, one sample of response ids per experiment each
    (A's first); `filter_samples_by` keeps those B improved or regressed, largest change first (at most 100)."""
    return comparison.samples(db_session(), current_project_id(), query)


@endpoint(bp, "/<int:response_id>", response=PromptResponseOut)
def get_response(response_id: int) -> object:
    """One response with its ratings."""
    return responses.get(db_session(), current_project_id(), response_id)


@endpoint(bp, "/<int:response_id>", "PATCH", body=AnnotationUpdate, response=PromptResponseOut)
def annotate_response(response_id: int, body: AnnotationUpdate) -> object:
    """Set a response's annotation."""
    return responses.annotate(db_session(), current_project_id(), response_id, body.annotation)


@endpoint(bp, "/<int:response_id>", "DELETE")
def delete_response(response_id: int) -> None:
    """Delete a response and its ratings."""
    responses.delete(db_session(), current_project_id(), response_id)
