"""LLM configurations: named model settings, unique per project. The provider key is kept for the workers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from llmcalls.outbound import OutboundPolicy, OutboundRefused, check_url
from models.orm import Experiment, LLMConfig
from models.schemas.llm_configs import LLMConfigCreate, LLMConfigQuery
from services.errors import Conflict, Invalid, owned
from services.pagination import Paged, paginate


def create(session: Session, project_id: int, body: LLMConfigCreate, policy: OutboundPolicy) -> LLMConfig:
    """Store a new configuration; a name already used in the project is a conflict, a URL the policy
    refuses a 422."""
    _ensure_allowed(body.llm_base_url, policy)
    _ensure_name_free(session, project_id, body.name)
    config = LLMConfig(project_id=project_id, **_columns(body), api_key=body.api_key)
    session.add(config)
    session.flush()
    return config


def update(
    session: Session, project_id: int, config_id: int, body: LLMConfigCreate, policy: OutboundPolicy
) -> LLMConfig:
    """Replace every setting; the stored key is kept unless a new one is sent."""
    config = get(session, project_id, config_id)
    _ensure_allowed(body.llm_base_url, policy)
    if body.name != config.name:
        _ensure_name_free(session, project_id, body.name)
    for column, value in _columns(body).items():
        setattr(config, column, value)
    if body.api_key is not None:
        config.api_key = body.api_key
    session.flush()
    return config


def _columns(body: LLMConfigCreate) -> dict[str, Any]:
    values = body.model_dump(exclude={"api_key"})
    values["description"] = values["description"] or ""
    return values


def _ensure_allowed(url: str | None, policy: OutboundPolicy) -> None:
    if url is None:
        return  # OpenAI's public API
    try:
        check_url(url, policy)
    except OutboundRefused as exc:
        raise Invalid(f"body.llm_base_url: {exc}") from None


def _ensure_name_free(session: Session, project_id: int, name: str) -> None:
    same_name = select(LLMConfig.id).where(LLMConfig.project_id == project_id, LLMConfig.name == name)
    if session.scalar(same_name) is not None:
        raise Conflict(f"LLM config '{name}' already exists")


def get(session: Session, project_id: int, config_id: int) -> LLMConfig:
    return owned(session, LLMConfig, project_id, config_id, "LLM config")


def list_(session: Session, project_id: int, query: LLMConfigQuery, page_size: int) -> Paged[LLMConfig]:
    """Configurations in creation order; `name` is exact."""
    stmt: Select[Any] = select(LLMConfig).where(LLMConfig.project_id == project_id)
    if query.name is not None:
        stmt = stmt.where(LLMConfig.name == query.name)
    return paginate(session, stmt.order_by(LLMConfig.id), query.page, page_size)


def delete(session: Session, project_id: int, config_id: int) -> None:
    """Delete a configuration; refused while an experiment would run on it."""
    config = get(session, project_id, config_id)
    used_by = select(Experiment.name).where(Experiment.llm_config_id == config_id).order_by(Experiment.id)
    names = [repr(n) for n in session.scalars(used_by)]
    if names:
        listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise Conflict(f"LLM config {config_id} is used by experiment(s) {listed}; delete them first")
    session.delete(config)
    session.flush()


def reencrypt_keys(session: Session) -> int:
    """Write every stored provider key again, so it is encrypted with the current first key (rotation)."""
    configs = list(session.scalars(select(LLMConfig).where(LLMConfig.api_key.is_not(None))))
    for config in configs:
        flag_modified(config, "api_key")
    session.flush()
    return len(configs)
