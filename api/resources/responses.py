"""`/responses`: the responses of experiments with their ratings embedded."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.responses import AnnotationUpdate, CreatePromptResponse, PromptResponseOut, ResponsesQuery
from services import responses

bp = Blueprint("responses", __name__, url_prefix="/responses")


@endpoint(bp, "", query=ResponsesQuery, response=Page[PromptResponseOut])
def list_responses(query: ResponsesQuery) -> object:
    """List responses in id order with their ratings; filter by experiment, ids (repeated), entry, ..."""
    return responses.list_(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "", "POST", body=CreatePromptResponse, response=PromptResponseOut, status=201)
def add_response(body: CreatePromptResponse) -> object:
    """Store a response produced elsewhere (it replaces the same entry and epoch of the experiment)."""
    return responses.add(db_session(), current_project_id(), body)


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
