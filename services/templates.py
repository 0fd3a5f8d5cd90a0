"""Prompt templates: versioned by name; identical content under one name is a conflict."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from models.orm import Experiment, PromptTemplate
from models.schemas.common import MAX_ID
from models.schemas.templates import PromptTemplateCreate, PromptTemplateQuery
from services.errors import Conflict, Invalid, owned
from services.pagination import Paged, paginate

PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")


def placeholders_of(messages: list[dict[str, Any]]) -> list[str]:
    """The sorted `{{ var }}` names used anywhere in the messages' text."""
    found: set[str] = set()
    for message in messages:
        found.update(PLACEHOLDER.findall(_text_of(message.get("content"))))
    return sorted(found)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def render_messages(messages: list[dict[str, Any]], values: dict[str, Any]) -> list[dict[str, Any]]:
    """Substitute `{{ var }}` with the entry's values; unknown names are left as written."""

    def sub(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: _as_text(values[m.group(1)]) if m.group(1) in values else m.group(0), text)

    rendered = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            content = sub(content)
        elif isinstance(content, list):
            content = [{**p, "text": sub(p["text"])} if isinstance(p, dict) and "text" in p else p for p in content]
        rendered.append({**message, "content": content})
    return rendered


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def content_hash(body: PromptTemplateCreate) -> str:
    content = [body.messages, body.response_format_json_schema, body.tools, body.tool_choice]
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def create(session: Session, project_id: int, body: PromptTemplateCreate) -> PromptTemplate:
    """A new name is version 1; new content under a known name is latest+1 and inherits its criterion set."""
    digest = content_hash(body)
    existing = session.scalar(
        select(PromptTemplate.id).where(
            PromptTemplate.project_id == project_id,
            PromptTemplate.name == body.name,
            PromptTemplate.content_hash == digest,
        )
    )
    if existing is not None:
        raise Conflict("Prompt template with this name and content already exists", prompt_template_id=existing)
    if body.parent_prompt_template_id is not None:
        get(session, project_id, body.parent_prompt_template_id)
    latest = _latest(session, project_id, body.name)
    template = PromptTemplate(
        project_id=project_id,
        name=body.name,
        version=(latest.version + 1) if latest else 1,
        messages=body.messages,
        placeholders=placeholders_of(body.messages),
        response_format_json_schema=body.response_format_json_schema,
        tools=body.tools,
        tool_choice=body.tool_choice,
        content_hash=digest,
        parent_prompt_template_id=body.parent_prompt_template_id,
        criterion_set_id=latest.criterion_set_id if latest else None,
    )
    session.add(template)
    session.flush()
    return template


def _latest(session: Session, project_id: int, name: str) -> PromptTemplate | None:
    return session.scalar(
        select(PromptTemplate)
        .where(PromptTemplate.project_id == project_id, PromptTemplate.name == name)
        .order_by(PromptTemplate.version.desc())
        .limit(1)
    )


def get(session: Session, project_id: int, template_id: int) -> PromptTemplate:
    return owned(session, PromptTemplate, project_id, template_id, "Prompt template")


def _version_filter(version: str | None) -> int | None:
    if version is None or version.strip().lower() in {"", "none", "null", "latest"}:
        return None
    try:
        number = int(version)
    except ValueError:
        number = MAX_ID + 1
    if abs(number) > MAX_ID:  # also the INTEGER column's bound: a larger number would be a database error
        raise Invalid(f"query.version: expected a version number or 'latest', got {version!r}")
    return number


def list_(session: Session, project_id: int, query: PromptTemplateQuery, page_size: int) -> Paged[PromptTemplate]:
    """Name filters are exact; for one name the newest version comes first."""
    stmt: Select[Any] = select(PromptTemplate).where(PromptTemplate.project_id == project_id)
    if query.name is not None:
        stmt = stmt.where(PromptTemplate.name == query.name)
    version = _version_filter(query.version)
    if version is not None:
        stmt = stmt.where(PromptTemplate.version == version)
    if query.criterion_set_id is not None:
        stmt = stmt.where(PromptTemplate.criterion_set_id == query.criterion_set_id)
    if query.compatible_collection_id is not None:
        stmt = _compatible_with_collection(session, project_id, stmt, query.compatible_collection_id)
    stmt = stmt.order_by(PromptTemplate.name, PromptTemplate.version.desc(), PromptTemplate.id.desc())
    return paginate(session, stmt, query.page, page_size)


def _compatible_with_collection(
    session: Session, project_id: int, stmt: Select[Any], collection_id: int
) -> Select[Any]:
    from services import collections

    names = set(collections.column_names(collections.get(session, project_id, collection_id)))
    ids = [t.id for t in session.scalars(stmt) if set(t.placeholders) <= names]
    return stmt.where(PromptTemplate.id.in_(ids))


def delete(session: Session, project_id: int, template_id: int) -> None:
    template = get(session, project_id, template_id)
    in_use = session.scalar(select(func.count(Experiment.id)).where(Experiment.prompt_template_id == template_id))
    if in_use:
        raise Conflict(f"Prompt template {template_id} is used by {in_use} experiment(s); delete them first")
    session.delete(template)
    session.flush()
