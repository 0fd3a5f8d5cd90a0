"""Generating criteria and placeholder values, and clear errors on unusable answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fakellm import FakeLLM
from llmcalls import FORMATS, ErrorKind, LLMCallError, LLMOutputError, ModelSpec, generate_criteria, generate_entry
from llmcalls.generate import parse_criteria, parse_entry

from .conftest import settled_statuses

Run = Callable[..., Any]
Spec = Callable[..., ModelSpec]
# Every wait here is bounded well below this; a hang should fail fast with a stack dump.
pytestmark = pytest.mark.timeout(120)
TEMPLATE = [
    {"role": "system", "content": "You are a travel guide."},
    {"role": "user", "content": "Describe {{ city }} for a visitor who likes {{ interest }}."},
]


def test_generate_criteria(fake: FakeLLM, spec: Spec, run: Run) -> None:
    criteria = run(generate_criteria(spec(), TEMPLATE))

    assert 3 <= len(criteria) <= 7
    assert all(isinstance(item, str) and item and item == item.strip() for item in criteria)
    assert len(set(criteria)) == len(criteria)
    assert "{{ city }}" in criteria[0]  # the fake echoes the prompt: the template reached the model
    assert fake.stats()["calls"] == 1


def test_generate_entry(fake: FakeLLM, spec: Spec, run: Run) -> None:
    entry = run(generate_entry(spec(), TEMPLATE, ["city", "interest", "city"]))

    assert list(entry) == ["city", "interest"]
    assert all(isinstance(value, str) and value for value in entry.values())


def test_generate_entry_without_placeholders_asks_nothing(fake: FakeLLM, spec: Spec, run: Run) -> None:
    assert run(generate_entry(spec(), TEMPLATE, [])) == {}
    assert fake.stats()["calls"] == 0


def test_junk_criteria_answer_is_a_clear_error(fake: FakeLLM, spec: Spec, run: Run) -> None:
    FORMATS.remember(spec(), "text")  # the fake answers prose when no JSON is enforced

    with pytest.raises(LLMOutputError) as caught:
        run(generate_criteria(spec(), TEMPLATE))

    assert 'expected a JSON object {"criteria": [...]}' in str(caught.value)
    assert "Fake answer to:" in str(caught.value)
    assert fake.stats()["calls"] == 2


def test_missing_placeholder_values_are_a_clear_error(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(refuse_json_schema=True)  # JSON mode: the fake answers {"answer": ...}

    with pytest.raises(LLMOutputError) as caught:
        run(generate_entry(spec(), TEMPLATE, ["city", "interest"]))

    assert "no value for placeholder(s) city, interest" in str(caught.value)


def test_generation_respects_its_time_bound(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(faults={"hang": 1.0}, hang_seconds=30)

    with pytest.raises(LLMCallError) as caught:
        run(generate_criteria(spec(timeout=60), TEMPLATE, timeout=0.5))

    assert caught.value.kind == ErrorKind.TIMEOUT
    assert settled_statuses(fake) == [499]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"criteria": [" Is it short? ", "is it short?", "", "Is it polite?"]}', ["Is it short?", "Is it polite?"]),
        ('```json\n["A?", "B?", "C?"]\n```', ["A?", "B?", "C?"]),
        ('{"criteria": ["1", "2", "3", "4", "5", "6", "7", "8", "9"]}', ["1", "2", "3", "4", "5", "6", "7"]),
    ],
)
def test_parse_criteria(content: str, expected: list[str]) -> None:
    assert parse_criteria(content) == expected


@pytest.mark.parametrize("content", ["Here are some ideas.", '{"criteria": []}', '{"criteria": [1, null]}'])
def test_parse_criteria_rejects_junk(content: str) -> None:
    with pytest.raises(LLMOutputError):
        parse_criteria(content)


def test_parse_entry() -> None:
    assert parse_entry('{"city": "Oslo", "count": 3, "extra": "x"}', ["city", "count"]) == {
        "city": "Oslo",
        "count": "3",
    }
    with pytest.raises(LLMOutputError, match="placeholder"):
        parse_entry('{"city": "Oslo", "count": null}', ["city", "count"])
