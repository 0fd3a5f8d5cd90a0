"""Prompt responses and their ratings: listing with the SDK's filters, manual adds, annotations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from models.db import in_batches, insert_ignoring_conflicts
from models.orm import (
    USAGE_KEYS,
    Collection,
    Entry,
    Experiment,
    LLMConfig,
    Prompt,
    PromptResponse,
    PromptTemplate,
    Rating,
)
from models.schemas.common import MAX_ID
from models.schemas.responses import CreatePromptResponse, ResponsesQuery
from services import templates
from services.errors import Conflict, Invalid, NotFound, owned
from services.pagination import Paged, paginate, paginate_by_id

RESPONSE_ROLES = {"assistant", "tool", "user", "system"}


def response_text(messages: list[Any] | None) -> str:
    """The model's answer: the last assistant message of a stored response (what the judge rates)."""
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            if isinstance(content, list):  # content parts: their text, in order
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def get(session: Session, project_id: int, response_id: int) -> PromptResponse:
    return owned(session, PromptResponse, project_id, response_id, "Response")


def list_(session: Session, project_id: int, query: ResponsesQuery, page_size: int) -> Paged[PromptResponse]:
    """Responses in entry order, each with its ratings; every filter is optional and they combine."""
    stmt: Select[Any] = select(PromptResponse)
    if query.experiment_id is not None:
        # The experiment's responses are its project's: filtering by the experiment alone lets a page be
        # read from the (experiment_id, entry_id, epoch, id) index. Another project's experiment has none.
        owner = session.scalar(select(Experiment.project_id).where(Experiment.id == query.experiment_id))
        if owner != project_id:
            return Paged(items=[], count=0)
        stmt = stmt.where(PromptResponse.experiment_id == query.experiment_id)
    else:
        stmt = stmt.where(PromptResponse.project_id == project_id)
    if query.response_ids:
        stmt = stmt.where(PromptResponse.id.in_(query.response_ids))
    if query.template_variables_id is not None:
        stmt = stmt.where(PromptResponse.entry_id == query.template_variables_id)
    if query.epoch is not None:
        stmt = stmt.where(PromptResponse.epoch == query.epoch)
    if query.llm_model_name is not None:
        stmt = stmt.where(PromptResponse.llm_model_name == query.llm_model_name)
    if query.failed is not None:
        stmt = stmt.where(PromptResponse.error.is_not(None) if query.failed else PromptResponse.error.is_(None))
    if query.prompt_template_id is not None:
        stmt = stmt.where(PromptResponse.prompt.has(Prompt.prompt_template_id == query.prompt_template_id))
    if query.collection_id is not None:
        stmt = stmt.where(
            PromptResponse.entry_id.in_(select(Entry.id).where(Entry.collection_id == query.collection_id))
        )
    # Entry order, so a listing reads the same however the workers happened to finish.
    order = (PromptResponse.entry_id, PromptResponse.epoch, PromptResponse.id)
    return paginate_by_id(session, stmt.order_by(*order), query.page, page_size, PromptResponse)


def prompt_for(session: Session, template: PromptTemplate | None, entry: Entry) -> Prompt:
    """The rendered prompt of (template, entry), created once and shared."""
    template_id = template.id if template else None
    existing = select(Prompt).where(Prompt.prompt_template_id == template_id, Prompt.entry_id == entry.id)
    prompt = session.scalar(existing)
    if prompt is not None:
        return prompt
    messages = templates.render_messages(template.messages, entry.input_values) if template else []
    try:
        with session.begin_nested():
            prompt = Prompt(prompt_template_id=template_id, entry_id=entry.id, messages=messages)
            session.add(prompt)
    except IntegrityError:  # experiments sharing the template stored it at the same moment
        prompt = session.scalars(existing).one()
    return prompt


def prompts_for(session: Session, template: PromptTemplate | None, entries: list[Entry]) -> dict[int, Prompt]:
    """The rendered prompts of many entries at once (created where missing), by entry id."""
    template_id = template.id if template else None
    entry_ids = [e.id for e in entries]
    stored = (
        select(Prompt)
        .where(Prompt.prompt_template_id == template_id, Prompt.entry_id.in_(entry_ids))
        .options(lazyload("*"))  # the joined entry and template are not needed here
    )
    found = {p.entry_id: p for p in session.scalars(stored)}
    missing = [e for e in entries if e.id not in found]
    if template is None or not missing:
        return found | {e.id: prompt_for(session, template, e) for e in missing}
    # One statement for the chunk; experiments sharing the template may store some at the same moment.
    render = templates.render_messages
    rows = [
        {"prompt_template_id": template_id, "entry_id": e.id, "messages": render(template.messages, e.input_values)}
        for e in missing
    ]
    session.execute(insert_ignoring_conflicts(session, Prompt, "prompt_template_id", "entry_id"), rows)
    return {p.entry_id: p for p in session.scalars(stored)}


def check_response_messages(messages: list[dict[str, Any]], where: str = "body.messages") -> None:
    for i, message in enumerate(messages):
        if message.get("role") not in RESPONSE_ROLES:
            raise Invalid(f"{where}[{i}].role must be one of {sorted(RESPONSE_ROLES)}")
    if not any(m.get("role") in {"assistant", "tool"} for m in messages):
        raise Invalid(f"{where}: needs at least one assistant or tool message")


def check_items(
    session: Session,
    project_id: int,
    items: Sequence[CreatePromptResponse],
    where: Callable[[int], str],
    needs_messages: bool = False,
) -> None:
    """Every entry, experiment and LLM config the items refer to is the project's, and every item's
    messages are valid when given (or always, with `needs_messages`). One query per kind and 1,000 ids,
    not three per item, so checking 100,000 items takes seconds; `where(i)` names item i in the errors."""
    entries = _existing(
        session,
        select(Entry.id).join(Collection).where(Collection.project_id == project_id),
        Entry.id,
        {item.template_variables_id for item in items},
    )
    experiments = _existing(
        session,
        select(Experiment.id).where(Experiment.project_id == project_id),
        Experiment.id,
        {item.experiment_id for item in items if item.experiment_id is not None},
    )
    configs = _existing(
        session,
        select(LLMConfig.id).where(LLMConfig.project_id == project_id),
        LLMConfig.id,
        {item.llm_config_id for item in items if item.llm_config_id is not None},
    )
    for i, item in enumerate(items):
        if item.messages or needs_messages:
            check_response_messages(item.messages, f"{where(i)}.messages")
        if item.template_variables_id not in entries:
            raise NotFound(f"{where(i)}.template_variables_id: entry {item.template_variables_id} not found")
        if item.experiment_id is not None and item.experiment_id not in experiments:
            raise NotFound(f"{where(i)}.experiment_id: Experiment {item.experiment_id} not found")
        if item.llm_config_id is not None and item.llm_config_id not in configs:
            raise NotFound(f"{where(i)}.llm_config_id: LLM config {item.llm_config_id} not found")


def prepare_uploads(
    session: Session, project_id: int, items: Sequence[CreatePromptResponse], where: Callable[[int], str]
) -> None:
    """Refuse uploads (items with messages) that would replace a stored response or repeat one of the same
    request, and link each item whose metadata names one of the project's LLM configs to it."""
    keys: dict[tuple[int, int, int], int] = {}
    for i, item in enumerate(items):
        if not item.messages or item.experiment_id is None:
            continue
        key = (item.experiment_id, item.template_variables_id, item.epoch)
        if key in keys:
            raise Invalid(f"{where(i)}: repeats {where(keys[key])} (entry {key[1]}, epoch {key[2]})")
        keys[key] = i
    stored = _stored_keys(session, keys)
    if stored:
        experiment_id, entry_id, epoch, response_id = stored[0]
        raise Conflict(
            f"{where(keys[(experiment_id, entry_id, epoch)])}: experiment {experiment_id} already has response "
            f"{response_id} for entry {entry_id}, epoch {epoch}; add it under another epoch or delete that one first"
        )
    _link_configs(session, project_id, items)


def _stored_keys(session: Session, keys: dict[tuple[int, int, int], int]) -> list[tuple[int, int, int, int]]:
    """The stored responses among `keys` (experiment, entry, epoch), with their ids."""
    entries_by_experiment: dict[int, set[int]] = {}
    for experiment_id, entry_id, _ in keys:
        entries_by_experiment.setdefault(experiment_id, set()).add(entry_id)
    table = PromptResponse.__table__
    found = []
    for experiment_id, entry_ids in entries_by_experiment.items():
        for batch in in_batches(sorted(entry_ids)):
            query = select(table.c.experiment_id, table.c.entry_id, table.c.epoch, table.c.id).where(
                table.c.experiment_id == experiment_id, table.c.entry_id.in_(batch)
            )
            found += [tuple(row) for row in session.execute(query) if tuple(row[:3]) in keys]
    return found


def _link_configs(session: Session, project_id: int, items: Sequence[CreatePromptResponse]) -> None:
    """The SDK sends an LLMConfig given as metadata inside it, with `llm_config_id` null."""
    named = {
        item.metadata.llm_model_config.id
        for item in items
        if item.llm_config_id is None and item.metadata and item.metadata.llm_model_config
    }
    scope = select(LLMConfig.id).where(LLMConfig.project_id == project_id)
    configs = _existing(session, scope, LLMConfig.id, {i for i in named if i is not None and 1 <= i <= MAX_ID})
    for item in items:
        reference = item.metadata.llm_model_config if item.metadata else None
        if item.llm_config_id is None and reference is not None and reference.id in configs:
            item.llm_config_id = reference.id


def uploaded_columns(metadata: dict[str, Any] | None, llm_config_id: int | None) -> dict[str, Any]:
    """A client-produced response's reported usage and, with no LLM config linked, its reported model name."""
    metadata = metadata or {}
    model = (metadata.get("llm_model_config") or {}).get("llm_model_name") if llm_config_id is None else None
    return {"llm_model_name": model, **{key: metadata.get(key) for key in USAGE_KEYS}}


def _existing(session: Session, scope: Select[Any], column: Any, ids: set[int]) -> set[int]:
    """The ids among `ids` that `scope` (a select of `column`) holds, asked 1,000 at a time."""
    found: set[int] = set()
    for batch in in_batches(sorted(ids)):
        found.update(session.scalars(scope.where(column.in_(batch))))
    return found


def add(session: Session, project_id: int, body: CreatePromptResponse) -> PromptResponse:
    """Store a response the caller produced (no model call); an (entry, epoch) already answered is a 409."""
    check_items(session, project_id, [body], lambda _: "body", needs_messages=True)
    prepare_uploads(session, project_id, [body], lambda _: "body")
    entry = session.get_one(Entry, body.template_variables_id)
    experiment = session.get(Experiment, body.experiment_id) if body.experiment_id is not None else None
    template = experiment.prompt_template if experiment else None
    response = PromptResponse(
        project_id=project_id,
        experiment_id=experiment.id if experiment else None,
        prompt_id=prompt_for(session, template, entry).id,
        entry_id=entry.id,
        epoch=body.epoch,
        llm_config_id=body.llm_config_id,
        messages=body.messages,
        **uploaded_columns(body.metadata.model_dump() if body.metadata else None, body.llm_config_id),
    )
    session.add(response)
    session.flush()
    return response


def replace_existing(session: Session, experiment: Experiment | None, entry_id: int, epoch: int) -> None:
    if experiment is None:
        return
    old = session.scalar(
        select(PromptResponse).where(
            PromptResponse.experiment_id == experiment.id,
            PromptResponse.entry_id == entry_id,
            PromptResponse.epoch == epoch,
        )
    )
    if old is not None:
        session.delete(old)
        session.flush()


def annotate(session: Session, project_id: int, response_id: int, annotation: str) -> PromptResponse:
    response = get(session, project_id, response_id)
    response.annotation = annotation
    session.flush()
    return response


def delete(session: Session, project_id: int, response_id: int) -> None:
    session.delete(get(session, project_id, response_id))
    session.flush()


def ratings_of(session: Session, project_id: int, response_id: int, page: int | None, page_size: int) -> Paged[Rating]:
    get(session, project_id, response_id)
    stmt = select(Rating).where(Rating.response_id == response_id, Rating.rating.is_not(None)).order_by(Rating.id)
    return paginate(session, stmt, page, page_size)
