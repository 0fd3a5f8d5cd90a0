"""`/llm_configs`: named model settings; provider keys are stored but only ever shown masked."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from llmcalls.outbound import OutboundPolicy, policy_from
from models.schemas.common import Page
from models.schemas.llm_configs import LLMConfigCreate, LLMConfigOut, LLMConfigQuery
from services import llm_configs

bp = Blueprint("llm_configs", __name__, url_prefix="/llm_configs")


def _policy() -> OutboundPolicy:
    return policy_from(settings().llm_allowed_hosts)


@endpoint(bp, "", "POST", body=LLMConfigCreate, response=LLMConfigOut, status=201)
def create_llm_config(body: LLMConfigCreate) -> object:
    """Create a model configuration; a taken name is a 409."""
    return llm_configs.create(db_session(), current_project_id(), body, _policy())


@endpoint(bp, "", query=LLMConfigQuery, response=Page[LLMConfigOut])
def list_llm_configs(query: LLMConfigQuery) -> object:
    """List configurations in creation order; `name` is exact."""
    return llm_configs.list_(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "/<int:config_id>", response=LLMConfigOut)
def get_llm_config(config_id: int) -> object:
    """One configuration (its API key masked)."""
    return llm_configs.get(db_session(), current_project_id(), config_id)


@endpoint(bp, "/<int:config_id>", "PUT", body=LLMConfigCreate, response=LLMConfigOut)
def update_llm_config(config_id: int, body: LLMConfigCreate) -> object:
    """Replace a configuration's settings; a null or omitted `api_key` keeps the stored key."""
    return llm_configs.update(db_session(), current_project_id(), config_id, body, _policy())


@endpoint(bp, "/<int:config_id>", "DELETE")
def delete_llm_config(config_id: int) -> None:
    """Delete a configuration (409 while an experiment uses it)."""
    llm_configs.delete(db_session(), current_project_id(), config_id)
