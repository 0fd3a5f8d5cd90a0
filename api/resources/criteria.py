"""`/criteria`: add, replace, list, edit (as a new version) and delete criteria."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.criteria import CreateCriteria, CriteriaQuery, CriterionOut, CriterionUpdate
from services import criteria, generation

bp = Blueprint("criteria", __name__, url_prefix="/criteria")


@endpoint(bp, "", "POST", body=CreateCriteria, response=list[CriterionOut], status=201, errors=(502,))
def create_criteria(body: CreateCriteria) -> object:
    """Add criteria to a set or a template's set (identical strings reused); replace, clear or generate."""
    return generation.create_criteria(db_session(), settings(), current_project_id(), body)


@endpoint(bp, "", query=CriteriaQuery, response=Page[CriterionOut])
def list_criteria(query: CriteriaQuery) -> object:
    """The current criteria of a template's linked set or of a set, in order."""
    return criteria.list_criteria(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "/<int:criterion_id>", response=CriterionOut)
def get_criterion(criterion_id: int) -> object:
    """One criterion, including superseded versions."""
    return criteria.get_criterion(db_session(), current_project_id(), criterion_id)


@endpoint(bp, "/<int:criterion_id>", "PUT", body=CriterionUpdate, response=CriterionOut)
def update_criterion(criterion_id: int, body: CriterionUpdate) -> object:
    """Edit a criterion: returns a new version at the same place; the old one stays for its ratings."""
    return criteria.update_criterion(db_session(), current_project_id(), criterion_id, body)


@endpoint(bp, "/<int:criterion_id>", "DELETE")
def delete_criterion(criterion_id: int) -> None:
    """Remove a criterion from its set (retired rather than erased when ratings use it)."""
    criteria.delete_criterion(db_session(), current_project_id(), criterion_id)
