"""Pure-function tests: the verdict rule, schema instance generation, config validation."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

import fakellm
from fakellm.config import ConfigError, merge_config, model_config, normalize_config
from fakellm.judge import JUNK_TEXT, find_judge_input, verdict_value
from fakellm.schema import generate_instance


@pytest.mark.parametrize(
    ("response", "criterion", "expected"),
    [
        ("A fine answer.", "Is it polite?", "YES"),
        ("This will FAIL for sure", "Is it polite?", "NO"),
        ("failure is an option", "anything", "NO"),
        ("All good", "Is it polite? [no]", "NO"),
        ("All good", "[NO] uppercase marker", "NO"),
        ("All good", "no brackets no", "YES"),
        ("", "", "YES"),
    ],
)
def test_verdict_rule(response: str, criterion: str, expected: str) -> None:
    assert fakellm.verdict(response, criterion) == expected


def test_reasoning_names_the_rule_and_never_spells_a_verdict() -> None:
    sentences = {
        fakellm.reasoning("it failed", "x"),
        fakellm.reasoning("ok", "[no] x"),
        fakellm.reasoning("ok", "x"),
    }
    assert len(sentences) == 3
    assert all(s.startswith("Rule ") for s in sentences)
    for text in [*sentences, JUNK_TEXT]:
        assert "yes" not in text.lower() and "no" not in text.lower().replace("[no]", "")


def test_judge_detection_prefers_the_user_message_over_a_system_prompt() -> None:
    messages = (
        ("system", "You get <response></response> and <criterion></criterion>."),
        ("user", "<response>the answer</response> <criterion>is it right</criterion>"),
    )
    found = find_judge_input(messages)
    assert found is not None and (found.response, found.criterion) == ("the answer", "is it right")
    assert find_judge_input((("user", "<response>only one pair</response>"),)) is None


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"type": "string", "enum": ["yes", "no"]}, "NO", "no"),
        ({"enum": ["Pass", "Fail"]}, "YES", "Pass"),
        ({"type": "boolean"}, "NO", False),
        ({"type": "integer", "minimum": 1, "maximum": 5}, "YES", 5),
        ({"type": "string"}, "YES", "YES"),
    ],
)
def test_verdict_value_fits_the_property_schema(schema: dict[str, Any], value: str, expected: Any) -> None:
    assert verdict_value(value, schema) == expected  # type: ignore[arg-type]


SCHEMAS: list[dict[str, Any]] = [
    {"type": "string", "minLength": 100},
    {"type": "string", "maxLength": 5},
    {"type": "integer", "minimum": 7, "maximum": 9},
    {"type": "integer", "exclusiveMinimum": 3, "multipleOf": 5},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
    {"type": "number", "maximum": -3},
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 1},
        "minItems": 2,
        "uniqueItems": True,
    },
    {"type": "array", "items": {"enum": ["a", "b", "c", "d"]}, "minItems": 4, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
    {"type": ["string", "null"]},
    {"type": "string", "nullable": True},
    {"const": {"fixed": [1, 2]}},
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    },
    {  # recursive tree through $ref
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
                },
                "required": ["name", "children"],
                "additionalProperties": False,
            }
        },
    },
    {  # pydantic-style Optional and draft-4 definitions
        "type": "object",
        "definitions": {"Tag": {"type": "string", "enum": ["x", "y"]}},
        "properties": {
            "tag": {"$ref": "#/definitions/Tag"},
            "maybe": {"anyOf": [{"type": "integer", "minimum": 10}, {"type": "null"}]},
            "choice": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
        },
        "required": ["tag", "maybe", "choice"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_generated_instances_validate(schema: dict[str, Any]) -> None:
    instance = generate_instance(schema, "some text")
    jsonschema.validate(instance, schema)
    assert generate_instance(schema, "some text") == instance


def test_config_defaults_merging_and_validation() -> None:
    config = normalize_config({"faults": {"429": 0.25}, "models": {"m": {"latency_ms": 5, "faults": {"401": 0.5}}}})
    assert config["faults"]["429"] == 0.25 and config["faults"]["500"] == 0
    effective = model_config(config, "m")
    assert effective["latency_ms"] == 5 and effective["faults"]["401"] == 0.5 and effective["faults"]["429"] == 0.25
    assert model_config(config, "other")["latency_ms"] == 0
    assert merge_config(config, {"latency_ms": 3})["faults"]["429"] == 0.25
    for bad in (
        {"nope": 1},
        {"faults": {"418": 0.1}},
        {"faults": {"429": 0.7, "500": 0.7}},
        {"schedule": {"0": "500"}},
        {"schedule": {"2": "teapot"}},
        {"latency_ms": -1},
        {"models": {"m": {"seed": 3}}},
    ):
        with pytest.raises(ConfigError):
            normalize_config(bad)
