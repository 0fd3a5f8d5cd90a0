"""`/prompt_templates`: versioned templates."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.templates import PromptTemplateCreate, PromptTemplateOut, PromptTemplateQuery
from services import templates

bp = Blueprint("prompt_templates", __name__, url_prefix="/prompt_templates")


@endpoint(bp, "", "POST", body=PromptTemplateCreate, response=PromptTemplateOut, status=201)
def create_prompt_template(body: PromptTemplateCreate) -> object:
    """Create a template, or the next version of a name; identical content is a 409 carrying its id."""
    return templates.create(db_session(), current_project_id(), body)


@endpoint(bp, "", query=PromptTemplateQuery, response=Page[PromptTemplateOut])
def list_prompt_templates(query: PromptTemplateQuery) -> object:
    """List templates; `name` is exact and its newest version comes first."""
    return templates.list_(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "/<int:template_id>", response=PromptTemplateOut)
def get_prompt_template(template_id: int) -> object:
    """One template version."""
    return templates.get(db_session(), current_project_id(), template_id)


@endpoint(bp, "/<int:template_id>", "DELETE")
def delete_prompt_template(template_id: int) -> None:
    """Delete one template version (409 while an experiment uses it)."""
    templates.delete(db_session(), current_project_id(), template_id)
