from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from models.schemas.common import Id, PageQuery, RequestModel, UtcDatetime, WireModel

MESSAGE_ROLES = {"developer", "system", "user", "assistant", "tool", "function"}


def check_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each message is an OpenAI chat message: a known role, and content where the role needs it."""
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in MESSAGE_ROLES:
            raise ValueError(f"messages[{i}].role must be one of {sorted(MESSAGE_ROLES)}, got {role!r}")
        content = msg.get("content")
        if role in {"system", "developer", "user"} and not isinstance(content, str | list):
            raise ValueError(f"messages[{i}].content must be a string or a list of parts")
        for j, part in enumerate(content if isinstance(content, list) else []):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise ValueError(f"messages[{i}].content[{j}] must be an object with a string 'type'")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise ValueError(f"messages[{i}].content[{j}].text must be a string")
    return messages


class PromptTemplateCreate(RequestModel):
    name: str = Field(min_length=1, max_length=500)
    messages: list[dict[str, Any]] = Field(min_length=1)
    response_format_json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parent_prompt_template_id: Id | None = None

    _check_messages = field_validator("messages")(check_messages)


class PromptTemplateQuery(PageQuery):
    name: str | None = None
    version: str | None = Field(default=None, description="A version number; 'None' or 'latest' mean latest")
    criterion_set_id: Id | None = None
    compatible_collection_id: Id | None = None
    sort_options: str | None = Field(default=None, description="Accepted and ignored (the SDK sends '{}')")


class PromptTemplateOut(WireModel):
    id: int
    name: str
    version: int
    messages: list[dict[str, Any]] = []
    placeholders: list[str] = []
    response_format_json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    criterion_set_id: int | None = None
    parent_prompt_template_id: int | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
