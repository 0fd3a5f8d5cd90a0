"""Model-made criteria and test inputs, answered within the request (the SDK waits up to 120 s).

The database transaction is ended before the model is called and a new one stores the result,
so no transaction is held across a model call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from llmcalls import (
    Limiter,
    LLMError,
    LocalLimiter,
    ModelSpec,
    RedisLimiter,
    close_all,
    generate_criteria,
    generate_entry,
)
from models.orm import Criterion, Entry, PromptTemplate
from models.schemas.collections import EntryCreate
from models.schemas.criteria import CreateCriteria, CriterionIn
from services import collections, templates
from services import criteria as criteria_service
from services.errors import Conflict, ServiceError
from services.execution import spec_for
from services.settings import Settings

T = TypeVar("T")
TIME_BOUND_SECONDS = 90.0


class ModelFailed(ServiceError):
    """The model could not produce usable output; nothing was written."""

    status = 502


def _limiter(settings: Settings, spec: ModelSpec) -> Limiter:
    if settings.redis_url:
        return RedisLimiter(settings.redis_url, spec.limiter_key, spec.max_connections)
    return LocalLimiter(spec.max_connections)


def call_model(settings: Settings, spec: ModelSpec, make: Callable[[Limiter], Awaitable[T]]) -> T:
    """Run one model coroutine to completion on a private loop, within the time bound."""

    async def run() -> T:
        try:
            return await asyncio.wait_for(make(_limiter(settings, spec)), TIME_BOUND_SECONDS)
        finally:
            await close_all()

    try:
        return asyncio.run(run())
    except (LLMError, TimeoutError) as exc:
        raise ModelFailed(f"The model could not generate a usable answer: {exc}") from None


def criteria_for_template(
    session: Session, settings: Settings, project_id: int, template: PromptTemplate, delete_existing: bool
) -> list[Criterion]:
    """Generate criteria for a template into its linked set (created and named like it when missing).

    Concurrent requests both call the model, but the template row is locked before writing and the
    check repeated, so exactly one stores its criteria and the others get the 409 the SDK expects.
    """
    _refuse_if_it_has_criteria(session, template, delete_existing)
    messages, template_id = template.messages, template.id
    session.commit()  # end the read transaction; nothing was written
    spec = spec_for(None, settings, judge=True)
    texts = call_model(settings, spec, lambda lim: generate_criteria(spec, messages, limiter=lim, timeout=80))
    template = session.get(PromptTemplate, template_id, with_for_update=True, populate_existing=True)
    if template is None or template.project_id != project_id:
        raise Conflict(f"Prompt template {template_id} was deleted while its criteria were generated")
    _refuse_if_it_has_criteria(session, template, delete_existing)
    items = [CriterionIn(criterion_str=text) for text in texts]
    return criteria_service.add_to_template(session, template, items, replace=delete_existing)


def _refuse_if_it_has_criteria(session: Session, template: PromptTemplate, delete_existing: bool) -> None:
    if not delete_existing and template.criterion_set_id is not None:
        if criteria_service.current_criteria(session, template.criterion_set_id):
            raise Conflict(f"Prompt template {template.id} already has criteria", prompt_template_id=template.id)


def values_for_template(session: Session, settings: Settings, template: PromptTemplate) -> dict[str, Any]:
    """Invent one value per placeholder of the template (the caller stores the row)."""
    messages, placeholders = template.messages, list(template.placeholders)
    session.commit()  # end the read transaction; nothing was written
    spec = spec_for(None, settings)
    return call_model(settings, spec, lambda lim: generate_entry(spec, messages, placeholders, limiter=lim, timeout=80))


def create_criteria(session: Session, settings: Settings, project_id: int, body: CreateCriteria) -> list[Criterion]:
    """`POST criteria`: generate with the model when no criteria are given for a template."""
    if body.prompt_template_id is not None and body.criteria is None:
        template = templates.get(session, project_id, body.prompt_template_id)
        return criteria_for_template(session, settings, project_id, template, body.delete_existing)
    return criteria_service.create_criteria(session, project_id, body)


def add_entry(session: Session, settings: Settings, project_id: int, collection_id: int, body: EntryCreate) -> Entry:
    """`POST collections/<id>/entries`: with `prompt_template_id` the model invents the row's values."""
    if body.prompt_template_id is not None and body.input_values is None:
        collections.get(session, project_id, collection_id)
        template = templates.get(session, project_id, body.prompt_template_id)
        values = values_for_template(session, settings, template)
        body = EntryCreate(input_values=values, environment_config=body.environment_config)
    return collections.add_entry(session, project_id, collection_id, body)
