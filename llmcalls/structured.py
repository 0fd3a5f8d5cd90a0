"""Structured answers: JSON schema first, then JSON mode, then plain text, learnt per endpoint.

Many OpenAI-compatible servers refuse ``response_format: json_schema`` (or JSON mode) with a 400.
The first refusal moves that (base URL, model) down to the next format for the rest of the
process, so later calls go straight to what works. Answers are parsed by the caller's function;
unusable answers are asked again a few times, then fail -- they are never guessed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from .calls import ChatResult, Message, ModelSpec, chat
from .clients import DEFAULT_BASE_URL
from .errors import LLMCallError, LLMOutputError
from .limiter import Limiter

log = logging.getLogger(__name__)

T = TypeVar("T")
OutputFormat = Literal["json_schema", "json_object", "text"]
FORMAT_ORDER: tuple[OutputFormat, ...] = ("json_schema", "json_object", "text")
_REFUSAL_HINTS = (
    "response_format",
    "response format",
    "json_schema",
    "json schema",
    "json_object",
    "json mode",
    "structured output",
)
_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)


class FormatMemory:
    """The best output format known to work per (base URL, model); it only ever moves down."""

    def __init__(self) -> None:
        self._formats: dict[tuple[str, str], OutputFormat] = {}

    def get(self, spec: ModelSpec) -> OutputFormat:
        """The format to try first for ``spec``."""
        return self._formats.get(_endpoint(spec), FORMAT_ORDER[0])

    def remember(self, spec: ModelSpec, output_format: OutputFormat) -> None:
        """Record that ``spec``'s endpoint needs ``output_format`` (or a later one)."""
        key = _endpoint(spec)
        current = self._formats.get(key, FORMAT_ORDER[0])
        if FORMAT_ORDER.index(output_format) > FORMAT_ORDER.index(current):
            self._formats[key] = output_format

    def clear(self) -> None:
        """Forget everything learnt."""
        self._formats.clear()


FORMATS = FormatMemory()
"""The process-wide memory used unless a caller passes its own."""


def _endpoint(spec: ModelSpec) -> tuple[str, str]:
    return (spec.base_url or DEFAULT_BASE_URL, spec.model)


@dataclass(frozen=True, slots=True)
class StructuredTask(Generic[T]):
    """What to ask and how to read the answer."""

    name: str
    """The json_schema name (letters, digits, ``_`` and ``-``)."""
    schema: Mapping[str, Any]
    messages: Callable[[OutputFormat], list[Message]]
    """Builds the prompt for a format (JSON mode and text need the schema spelled out)."""
    parse: Callable[[str], T]
    """Reads the answer's content; raises :class:`~llmcalls.errors.LLMOutputError` if it is unusable."""
    parse_attempts: int = 3


@dataclass(frozen=True, slots=True)
class Structured(Generic[T]):
    """A parsed answer and the calls that produced it (all counted, unusable answers too)."""

    value: T
    output_format: OutputFormat
    calls: tuple[ChatResult, ...]

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens over all calls."""
        return sum(call.prompt_tokens for call in self.calls)

    @property
    def completion_tokens(self) -> int:
        """Completion tokens over all calls."""
        return sum(call.completion_tokens for call in self.calls)

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning tokens over all calls."""
        return sum(call.reasoning_tokens for call in self.calls)

    @property
    def input_cost(self) -> float:
        """Input cost over all calls."""
        return sum(call.input_cost for call in self.calls)

    @property
    def output_cost(self) -> float:
        """Output cost over all calls."""
        return sum(call.output_cost for call in self.calls)


async def call_structured(
    spec: ModelSpec,
    task: StructuredTask[T],
    *,
    limiter: Limiter | None = None,
    deadline: float | None = None,
    memory: FormatMemory | None = None,
) -> Structured[T]:
    """Ask until an answer parses, falling back through the output formats the endpoint refuses.

    Raises :class:`~llmcalls.errors.LLMCallError` if a call fails, or the task's
    :class:`~llmcalls.errors.LLMOutputError` after ``task.parse_attempts`` unusable answers.
    """
    memory = FORMATS if memory is None else memory
    calls: list[ChatResult] = []
    while True:
        output_format = memory.get(spec)
        result = await _ask(spec, task, output_format, limiter, deadline, memory)
        if result is None:
            continue
        calls.append(result)
        try:
            return Structured(task.parse(result.content), output_format, tuple(calls))
        except LLMOutputError as exc:
            if len(calls) >= task.parse_attempts:
                raise _final(exc, tuple(calls)) from exc
            log.info("unusable %s answer from %s, asking again: %s", task.name, spec.model, exc)


async def _ask(
    spec: ModelSpec,
    task: StructuredTask[T],
    output_format: OutputFormat,
    limiter: Limiter | None,
    deadline: float | None,
    memory: FormatMemory,
) -> ChatResult | None:
    """One call in ``output_format``; ``None`` if the endpoint refused the format (now remembered)."""
    response_format = response_format_for(output_format, task.name, task.schema)
    try:
        return await chat(
            spec,
            task.messages(output_format),
            response_format=response_format,
            limiter=limiter,
            deadline=deadline,
        )
    except LLMCallError as exc:
        if not is_format_refusal(exc, output_format):
            raise
        fallback = FORMAT_ORDER[FORMAT_ORDER.index(output_format) + 1]
        log.warning("%s refused %s (%s); using %s from now on", spec.model, output_format, exc, fallback)
        memory.remember(spec, fallback)
        return None


def _final(exc: LLMOutputError, calls: tuple[ChatResult, ...]) -> LLMOutputError:
    plural = "answer" if len(calls) == 1 else "answers"
    return type(exc)(f"{exc} (gave up after {len(calls)} unusable {plural})", calls=calls)


def response_format_for(output_format: OutputFormat, name: str, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` request parameter for ``output_format``."""
    if output_format == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": dict(schema)}}
    if output_format == "json_object":
        return {"type": "json_object"}
    return None


def is_format_refusal(error: LLMCallError, output_format: OutputFormat) -> bool:
    """Whether ``error`` is the endpoint saying it cannot do ``output_format``."""
    if output_format == FORMAT_ORDER[-1] or error.status not in (400, 422):
        return False
    message = (error.provider_message or "").lower()
    return any(hint in message for hint in _REFUSAL_HINTS)


def schema_instructions(schema: Mapping[str, Any]) -> str:
    """Prompt text asking for JSON matching ``schema``, for formats that cannot enforce it."""
    return "Reply with only a JSON object (no other text) that matches this JSON schema:\n" + json.dumps(
        schema, indent=2
    )


def extract_json(text: str) -> Any | None:
    """The JSON value in ``text``: the whole text, a fenced code block, or the outermost ``{...}``."""
    candidates = [text, *_FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate.strip())
        except ValueError:
            continue
    return None
