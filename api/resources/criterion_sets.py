"""`/criterion_sets`: named sets of criteria, and their links to prompt templates."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.criteria import CriterionSetCreate, CriterionSetOut, NameQuery
from services import criteria

bp = Blueprint("criterion_sets", __name__, url_prefix="/criterion_sets")


@endpoint(bp, "", "POST", body=CriterionSetCreate, response=CriterionSetOut, status=201)
def create_criterion_set(body: CriterionSetCreate) -> object:
    """Create a set, optionally with criteria; a taken name is a 409."""
    return criteria.create_set(db_session(), current_project_id(), body)


@endpoint(bp, "", query=NameQuery, response=Page[CriterionSetOut])
def list_criterion_sets(query: NameQuery) -> object:
    """List sets in creation order; `name` is exact."""
    return criteria.list_sets(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "/<int:set_id>", response=CriterionSetOut)
def get_criterion_set(set_id: int) -> object:
    """One set with its current criteria and linked templates."""
    return criteria.get_set(db_session(), current_project_id(), set_id)


@endpoint(bp, "/<int:set_id>", "DELETE")
def delete_criterion_set(set_id: int) -> None:
    """Delete a set and its criteria and unlink its templates (409 while an experiment uses it)."""
    criteria.delete_set(db_session(), current_project_id(), set_id)


@endpoint(bp, "/<int:set_id>/prompt_templates/<int:template_id>", "PUT", response=CriterionSetOut)
def link_prompt_template(set_id: int, template_id: int) -> object:
    """Link a template version to this set (its `criterion_set_id` becomes the set's id)."""
    return criteria.link_template(db_session(), current_project_id(), set_id, template_id)


@endpoint(bp, "/<int:set_id>/prompt_templates/<int:template_id>", "DELETE")
def unlink_prompt_template(set_id: int, template_id: int) -> None:
    """Unlink a template version from this set; a template linked elsewhere or nowhere is left as is."""
    criteria.unlink_template(db_session(), current_project_id(), set_id, template_id)
