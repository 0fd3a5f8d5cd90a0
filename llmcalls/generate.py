"""Generation helpers: criteria for a prompt template, and values for a template's placeholders."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .calls import Message, ModelSpec
from .errors import LLMOutputError
from .limiter import Limiter
from .structured import OutputFormat, StructuredTask, call_structured, extract_json, schema_instructions

MIN_CRITERIA, MAX_CRITERIA = 3, 7
PARSE_ATTEMPTS = 2
DEFAULT_TIMEOUT = 90.0

CRITERIA_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "criteria": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": MIN_CRITERIA,
            "maxItems": MAX_CRITERIA,
        }
    },
    "required": ["criteria"],
    "additionalProperties": False,
}

_CRITERIA_TASK = (
    "You write evaluation criteria for the answers a language model gives to a prompt template. "
    f"Write between {MIN_CRITERIA} and {MAX_CRITERIA} criteria. Each criterion is one self-contained "
    "yes/no question about a single answer, phrased so that YES means the answer is good. Cover "
    "different aspects (correctness, following the instructions, format, tone) without overlap."
)
_ENTRY_TASK = (
    "You write test cases for a prompt template. Invent one realistic, specific value for each "
    "placeholder (written as {{ name }} in the template), so that the filled-in prompt is a "
    "sensible request. Give the values only, not the filled-in prompt."
)


async def generate_criteria(
    spec: ModelSpec,
    template_messages: Sequence[Mapping[str, Any]],
    *,
    limiter: Limiter | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Ask for 3-7 yes/no criteria suited to the prompt template, deduplicated and stripped.

    Finishes within ``timeout`` seconds. Raises :class:`~llmcalls.errors.LLMOutputError` if the answer
    holds no criteria, :class:`~llmcalls.errors.LLMCallError` if the model cannot be called.
    """
    task = StructuredTask(
        name="criteria",
        schema=CRITERIA_SCHEMA,
        messages=lambda output_format: _messages(_CRITERIA_TASK, template_messages, CRITERIA_SCHEMA, output_format),
        parse=parse_criteria,
        parse_attempts=PARSE_ATTEMPTS,
    )
    answer = await call_structured(spec, task, limiter=limiter, deadline=time.monotonic() + timeout)
    return answer.value


async def generate_entry(
    spec: ModelSpec,
    template_messages: Sequence[Mapping[str, Any]],
    placeholders: Sequence[str],
    *,
    limiter: Limiter | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, str]:
    """Ask for a value for every placeholder of the prompt template; returns ``{name: value}``.

    Finishes within ``timeout`` seconds. Raises :class:`~llmcalls.errors.LLMOutputError` if a value is
    missing or the answer is not a JSON object, :class:`~llmcalls.errors.LLMCallError` if the model
    cannot be called.
    """
    names = list(dict.fromkeys(placeholders))
    if not names:
        return {}
    schema = entry_schema(names)
    task = StructuredTask(
        name="entry",
        schema=schema,
        messages=lambda output_format: _messages(_ENTRY_TASK, template_messages, schema, output_format),
        parse=lambda content: parse_entry(content, names),
        parse_attempts=PARSE_ATTEMPTS,
    )
    answer = await call_structured(spec, task, limiter=limiter, deadline=time.monotonic() + timeout)
    return answer.value


def entry_schema(names: Sequence[str]) -> dict[str, Any]:
    """A strict JSON schema: an object with one string property per placeholder."""
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in names},
        "required": list(names),
        "additionalProperties": False,
    }


def _messages(
    task: str,
    template_messages: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    output_format: OutputFormat,
) -> list[Message]:
    system = task if output_format == "json_schema" else f"{task}\n\n{schema_instructions(schema)}"
    user = f"The prompt template:\n<prompt_template>\n{render_template(template_messages)}\n</prompt_template>"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def render_template(messages: Sequence[Mapping[str, Any]]) -> str:
    """The template's messages as readable text, one ``[role]`` block per message."""
    return "\n\n".join(f"[{message.get('role', 'user')}]\n{_text(message.get('content'))}" for message in messages)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def parse_criteria(content: str) -> list[str]:
    """Criteria from ``{"criteria": [...]}`` (or a bare list): stripped, deduplicated, at most 7."""
    data = extract_json(content)
    items = data.get("criteria") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise LLMOutputError(f'expected a JSON object {{"criteria": [...]}}, got: {_excerpt(content)!r}')
    unique: dict[str, str] = {}
    for item in items:
        text = item.strip() if isinstance(item, str) else ""
        if text:
            unique.setdefault(text.casefold(), text)
    if not unique:
        raise LLMOutputError(f"the answer holds no criteria: {_excerpt(content)!r}")
    return list(unique.values())[:MAX_CRITERIA]


def parse_entry(content: str, names: Sequence[str]) -> dict[str, str]:
    """``{name: value}`` for exactly ``names`` from a JSON object; any missing value is an error."""
    data = extract_json(content)
    if not isinstance(data, dict):
        raise LLMOutputError(f"expected a JSON object with the placeholder values, got: {_excerpt(content)!r}")
    missing = [name for name in names if data.get(name) is None]
    if missing:
        raise LLMOutputError(f"the answer has no value for placeholder(s) {', '.join(missing)}")
    return {name: _value_text(data[name]) for name in names}


def _value_text(value: Any) -> str:
    # JSON mode may answer a number or a list where a string was asked; keep it, as text.
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _excerpt(content: str, limit: int = 200) -> str:
    return content if len(content) <= limit else content[:limit] + "…"
