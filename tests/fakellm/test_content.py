"""Deterministic answers through the real server and the real OpenAI client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import openai
import pytest

import fakellm
from fakellm import FakeLLM

Run = Callable[..., Any]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def judge_messages(response: str, criterion: str) -> list[dict[str, Any]]:
    """A prompt shaped like Assay's judge prompt (the system prompt mentions the tags too)."""
    return [
        {
            "role": "system",
            "content": "Rate the response in <response></response> against <criterion></criterion>.",
        },
        {"role": "user", "content": f"<response>{response}</response>\n<criterion>{criterion}</criterion>"},
    ]


def json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}


def test_generation_is_deterministic_and_echoes_the_user(fake: FakeLLM, run: Run) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *user("What is the capital of France?")]

    async def scenario(client: openai.AsyncOpenAI) -> list[openai.types.chat.ChatCompletion]:
        return [await client.chat.completions.create(model="fake-model", messages=messages) for _ in range(2)]

    first, second = run(scenario)
    content = first.choices[0].message.content
    assert content == second.choices[0].message.content == "Fake answer to: What is the capital of France?"
    assert first.object == "chat.completion" and first.model == "fake-model"
    assert first.choices[0].finish_reason == "stop" and first.choices[0].message.role == "assistant"
    assert first.usage is not None
    assert first.usage.prompt_tokens == 2 + 6
    assert first.usage.completion_tokens == len(content.split())
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    assert first.usage.completion_tokens_details.reasoning_tokens == 0


SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3},
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
            "level": {"type": "string", "enum": ["low", "mid", "high"]},
            "note": {"type": ["string", "null"]},
        },
        "required": ["title", "score", "ratio", "ok", "tags", "level", "note"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                "required": ["name", "qty"],
                "additionalProperties": False,
            }
        },
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 4}},
        "required": ["items"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "kind": {"const": "answer"},
            "value": {"anyOf": [{"type": "string", "maxLength": 10}, {"type": "integer"}]},
            "alt": {"oneOf": [{"type": "number", "exclusiveMinimum": 2}, {"type": "null"}]},
        },
        "required": ["kind", "value", "alt"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "string"}},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_json_schema_output_validates(fake: FakeLLM, run: Run, schema: dict[str, Any]) -> None:
    async def scenario(client: openai.AsyncOpenAI) -> str:
        completion = await client.chat.completions.create(
            model="fake-model", messages=user("Describe a cat"), response_format=json_schema_format(schema)
        )
        return completion.choices[0].message.content or ""

    instance = json.loads(run(scenario))
    jsonschema.validate(instance, schema)


def test_arrays_default_to_three_distinct_strings_containing_the_user_text(fake: FakeLLM, run: Run) -> None:
    schema = {
        "type": "object",
        "properties": {"xs": {"type": "array", "items": {"type": "string"}}},
        "required": ["xs"],
        "additionalProperties": False,
    }

    async def scenario(client: openai.AsyncOpenAI) -> str:
        completion = await client.chat.completions.create(
            model="fake-model", messages=user("list cats"), response_format=json_schema_format(schema)
        )
        return completion.choices[0].message.content or ""

    xs = json.loads(run(scenario))["xs"]
    assert len(xs) == len(set(xs)) == 3
    assert all("list cats" in x for x in xs)


def test_json_object_with_and_without_schema(fake: FakeLLM, run: Run) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 4}}, "required": ["n"]}

    async def scenario(client: openai.AsyncOpenAI) -> tuple[str, str]:
        plain = await client.chat.completions.create(
            model="fake-model", messages=user("hi"), response_format={"type": "json_object"}
        )
        shaped = await client.chat.completions.create(
            model="fake-model", messages=user("hi"), response_format={"type": "json_object", "schema": schema}
        )
        return plain.choices[0].message.content or "", shaped.choices[0].message.content or ""

    plain, shaped = run(scenario)
    assert json.loads(plain) == {"answer": "Fake answer to: hi"}
    jsonschema.validate(json.loads(shaped), schema)


JUDGE_CASES = [
    ("Paris is the capital.", "Names the capital"),
    ("I fail to see the question.", "Names the capital"),
    ("Paris is the capital.", "Names the capital [no]"),
]
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"reasoning": {"type": "string"}, "rating": {"type": "string", "enum": ["YES", "NO"]}},
    "required": ["reasoning", "rating"],
    "additionalProperties": False,
}


async def _judge(client: openai.AsyncOpenAI, response: str, criterion: str, **kwargs: Any) -> str:
    completion = await client.chat.completions.create(
        model="fake-judge", messages=judge_messages(response, criterion), **kwargs
    )
    return completion.choices[0].message.content or ""


@pytest.mark.parametrize(("response", "criterion"), JUDGE_CASES)
def test_verdict_in_all_three_formats(fake: FakeLLM, run: Run, response: str, criterion: str) -> None:
    expected, why = fakellm.verdict(response, criterion), fakellm.reasoning(response, criterion)

    async def scenario(client: openai.AsyncOpenAI) -> tuple[str, str, str]:
        return (
            await _judge(client, response, criterion),
            await _judge(client, response, criterion, response_format={"type": "json_object"}),
            await _judge(client, response, criterion, response_format=json_schema_format(JUDGE_SCHEMA)),
        )

    text, as_object, as_schema = run(scenario)
    assert text == f"Reasoning: {why}\nVerdict: {expected}"
    assert json.loads(as_object) == {"reasoning": why, "rating": expected}
    assert json.loads(as_schema) == {"reasoning": why, "rating": expected}
    assert fake.stats()["by_kind"] == {"generate": 0, "judge": 3}


def test_judge_schema_respects_the_rating_enum_and_verdict_name(fake: FakeLLM, run: Run) -> None:
    schema = {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["yes", "no"]},
            "reasoning": {"type": "string", "maxLength": 20},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["verdict", "reasoning", "confidence"],
        "additionalProperties": False,
    }

    async def scenario(client: openai.AsyncOpenAI) -> str:
        return await _judge(client, "it will fail", "c", response_format=json_schema_format(schema))

    result = json.loads(run(scenario))
    jsonschema.validate(result, schema)
    assert result["verdict"] == "no"


def test_generation_answer_steers_the_judge(fake: FakeLLM, run: Run) -> None:
    """The generation echoes the user's text, so a prompt saying 'fail' yields a NO from the judge."""

    async def scenario(client: openai.AsyncOpenAI) -> list[str]:
        verdicts = []
        for prompt in ("say hello", "please fail"):
            answer = await client.chat.completions.create(model="fake-model", messages=user(prompt))
            verdicts.append(await _judge(client, answer.choices[0].message.content or "", "polite"))
        return verdicts

    assert [v.rsplit(" ", 1)[-1] for v in run(scenario)] == ["YES", "NO"]


def test_streaming_matches_the_non_streaming_answer(fake: FakeLLM, run: Run) -> None:
    async def scenario(client: openai.AsyncOpenAI) -> tuple[str, Any]:
        stream = await client.chat.completions.create(
            model="fake-model",
            messages=user("stream me please"),
            stream=True,
            stream_options={"include_usage": True},
        )
        parts, usage = [], None
        async for chunk in stream:
            parts.extend(choice.delta.content or "" for choice in chunk.choices)
            usage = chunk.usage or usage
        return "".join(parts), usage

    content, usage = run(scenario)
    assert content == "Fake answer to: stream me please"
    assert usage is not None and usage.completion_tokens == 6


def test_models_list(fake: FakeLLM, run: Run) -> None:
    fake.configure(models={"special": {"latency_ms": 1}})

    async def scenario(client: openai.AsyncOpenAI) -> list[str]:
        return [model.id async for model in client.models.list()]

    names = run(scenario)
    assert {"fake-model", "fake-judge", "special"} <= set(names)


def test_invalid_request_is_a_400(fake: FakeLLM, run: Run) -> None:
    async def scenario(client: openai.AsyncOpenAI) -> None:
        await client.chat.completions.create(model="fake-model", messages=[])

    with pytest.raises(openai.BadRequestError) as caught:
        run(scenario)
    assert caught.value.status_code == 400
    assert fake.stats()["by_status"] == {"400": 1}


def test_unsatisfiable_schema_is_a_400(fake: FakeLLM, run: Run) -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}

    async def scenario(client: openai.AsyncOpenAI) -> None:
        await client.chat.completions.create(
            model="fake-model", messages=user("hi"), response_format=json_schema_format(schema)
        )

    with pytest.raises(openai.BadRequestError, match="missing"):
        run(scenario)
