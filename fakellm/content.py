"""Parsing chat requests and computing their deterministic answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .judge import JUNK_TEXT, JudgeInput, find_judge_input, reasoning, verdict, verdict_value
from .schema import Schema, fit_string, generate_instance

ANSWER_PREFIX = "Fake answer to: "


class RequestError(ValueError):
    """The request body is not a valid chat-completions request (answered with a 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat-completions request that shape the fake answer."""

    model: str
    messages: tuple[tuple[str, str], ...]
    judge: JudgeInput | None
    format_type: str
    schema: Schema | None
    stream: bool
    include_usage: bool

    @property
    def kind(self) -> str:
        """``"judge"`` or ``"generate"``."""
        return "judge" if self.judge is not None else "generate"


def parse_request(payload: Any) -> ChatRequest:
    """Validate a decoded request body and extract what the answer depends on."""
    if not isinstance(payload, Mapping):
        raise RequestError("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", "model")
    messages = _parse_messages(payload.get("messages"))
    format_type, schema = _parse_response_format(payload.get("response_format"))
    stream_options = payload.get("stream_options") or {}
    return ChatRequest(
        model=model,
        messages=messages,
        judge=find_judge_input(messages),
        format_type=format_type,
        schema=schema,
        stream=bool(payload.get("stream")),
        include_usage=bool(isinstance(stream_options, Mapping) and stream_options.get("include_usage")),
    )


def _parse_messages(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise RequestError("messages must be a non-empty array", "messages")
    parsed: list[tuple[str, str]] = []
    for i, message in enumerate(raw):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise RequestError(f"messages[{i}] must be an object with a role", f"messages[{i}]")
        parsed.append((message["role"], message_text(message.get("content"))))
    return tuple(parsed)


def message_text(content: Any) -> str:
    """Flatten a message's content (a string, or a list of parts) to its text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return str(content)


def _parse_response_format(raw: Any) -> tuple[str, Schema | None]:
    if raw is None:
        return "text", None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise RequestError("response_format must be an object with a type", "response_format")
    kind = raw["type"]
    if kind == "text":
        return "text", None
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise RequestError("response_format.json_schema.schema must be an object", "response_format")
        return kind, schema
    if kind == "json_object":
        # Like llama.cpp/vLLM: json_object may carry a schema next to the type.
        schema = raw.get("schema")
        return kind, schema if isinstance(schema, Mapping) else None
    raise RequestError(f"unsupported response_format type {kind!r}", "response_format")


def answer_text(request: ChatRequest) -> str:
    """The generation answer: ``"Fake answer to: <last user message>"``."""
    users = [text for role, text in request.messages if role == "user"]
    return ANSWER_PREFIX + (users[-1] if users else request.messages[-1][1])


def build_content(request: ChatRequest, judge_junk: bool) -> str:
    """Return the assistant message content for ``request``."""
    if request.judge is not None:
        return JUNK_TEXT if judge_junk else _judge_content(request, request.judge)
    text = answer_text(request)
    if request.schema is not None:
        return _dumps(generate_instance(request.schema, text))
    if request.format_type == "json_object":
        return _dumps({"answer": text})
    return text


def _judge_content(request: ChatRequest, judge: JudgeInput) -> str:
    result = verdict(judge.response, judge.criterion)
    why = reasoning(judge.response, judge.criterion)
    if request.schema is not None:
        overrides = {
            "rating": lambda schema: verdict_value(result, schema),
            "verdict": lambda schema: verdict_value(result, schema),
            "reasoning": lambda schema: fit_string(why, schema),
        }
        return _dumps(generate_instance(request.schema, why, overrides))
    if request.format_type == "json_object":
        return _dumps({"reasoning": why, "rating": result})
    return f"Reasoning: {why}\nVerdict: {result}"


def count_tokens(text: str) -> int:
    """Deterministic token count: whitespace-separated words."""
    return len(text.split())


def prompt_tokens(request: ChatRequest) -> int:
    """Token count of all message contents."""
    return sum(count_tokens(text) for _, text in request.messages)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
