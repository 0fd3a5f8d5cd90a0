"""The built-in evaluators: each one's pass, fail and refused parameters, and the registry."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from services.evaluators import (
    ENTRY_POINT_GROUP,
    EvalResult,
    Evaluator,
    EvaluatorError,
    InvalidEvaluator,
    NoParams,
    Sample,
    check_params,
    evaluate,
    installed,
)
from services.evaluators import registry as registry_module
from services.evaluators.builtin import lcs_length, rouge_l

VARIABLES = {"answer": "Paris", "number": "42", "reference": "the cat sat on the mat", "count": 7}


def _run(name: str, params: dict[str, Any], response: str) -> EvalResult:
    sample = Sample([{"role": "user", "content": "Q?"}], response, VARIABLES)
    return evaluate(name, check_params(name, params), sample)


PASS_FAIL = [
    # (evaluator, params, a passing response, a failing response)
    ("exact_match", {"value": "Paris"}, "  Paris\n", "Paris, France"),
    ("exact_match", {"column": "answer", "case_sensitive": False}, "PARIS", "Lyon"),
    ("contains", {"value": "paris", "case_sensitive": False}, "It is PARIS.", "It is Lyon."),
    ("contains", {"column": "answer"}, "The capital is Paris.", "The capital is paris."),
    ("regex", {"pattern": r"^\d{3}-\d{4}$"}, "555-1234", "call 555-1234"),
    ("regex", {"pattern": "fake", "case_sensitive": False}, "Fake answer", "Real answer"),
    ("valid_json", {}, '{"a": [1, 2]}', "{'a': 1}"),
    (
        "json_schema",
        {"schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
        '{"name": "Ada"}',
        '{"name": 42}',
    ),
    ("length", {"min": 3, "max": 5}, "four", "too long"),
    ("length", {"max": 2, "unit": "words"}, "two words", "three words here"),
    ("numeric", {"value": 3.14, "tolerance": 0.01}, "Pi is about 3.141.", "Pi is about 3.2."),
    ("numeric", {"column": "number"}, "The answer is 42!", "The answer is 41."),
    ("numeric", {"column": "count"}, "7 items", "no number at all"),
    ("rouge_l", {"column": "reference", "threshold": 0.8}, "the cat is on the mat", "a dog barked"),
]


@pytest.mark.parametrize(("name", "params", "passing", "failing"), PASS_FAIL)
def test_each_builtin_passes_and_fails(name: str, params: dict[str, Any], passing: str, failing: str) -> None:
    good, bad = _run(name, params, passing), _run(name, params, failing)
    assert good.passed is True, good
    assert bad.passed is False, bad
    assert good.explanation and bad.explanation


BAD_PARAMS = [
    ("exact_match", {}, "params: give exactly one of value and column"),
    ("exact_match", {"value": "a", "column": "b"}, "params: give exactly one of value and column"),
    ("exact_match", {"value": "a", "case_sensitive": "maybe"}, "params.case_sensitive:"),
    ("contains", {"value": 5}, "params.value:"),
    ("contains", {"column": ""}, "params.column:"),
    ("regex", {"pattern": "(unclosed"}, "params.pattern: not a valid regular expression"),
    ("regex", {}, "params.pattern: Field required"),
    ("regex", {"patern": "x"}, "params.patern: Extra inputs are not permitted"),
    ("valid_json", {"strict": True}, "params.strict: Extra inputs are not permitted"),
    ("json_schema", {"schema": {"type": "nonsense"}}, "params.schema: not a valid JSON Schema"),
    ("json_schema", {}, "params.schema: Field required"),
    ("length", {}, "params: give min, max or both"),
    ("length", {"min": 5, "max": 2}, "params: min must not be greater than max"),
    ("length", {"min": -1}, "params.min:"),
    ("length", {"max": 9, "unit": "tokens"}, "params.unit:"),
    ("numeric", {"value": "forty-two"}, "params.value:"),
    ("numeric", {"value": 1, "tolerance": -0.5}, "params.tolerance:"),
    ("rouge_l", {}, "params.column: Field required"),
    ("rouge_l", {"column": "reference", "threshold": 1.5}, "params.threshold:"),
]


@pytest.mark.parametrize(("name", "params", "problem"), BAD_PARAMS)
def test_bad_params_are_refused_naming_the_field(name: str, params: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidEvaluator) as caught:
        check_params(name, params)
    assert problem in str(caught.value)


def test_every_builtin_is_covered() -> None:
    builtins = {"exact_match", "contains", "regex", "valid_json", "json_schema", "length", "numeric", "rouge_l"}
    assert builtins <= set(installed())
    assert {case[0] for case in PASS_FAIL} == builtins
    assert {case[0] for case in BAD_PARAMS} == builtins


def test_unknown_evaluator_names_what_is_installed() -> None:
    with pytest.raises(InvalidEvaluator, match=r"evaluator: unknown evaluator 'nope'; installed: .*regex"):
        check_params("nope", {})


def test_stored_params_have_defaults_filled_in() -> None:
    assert check_params("regex", {"pattern": "x"}) == {"pattern": "x", "case_sensitive": True}
    assert check_params("json_schema", {"schema": {"type": "object"}}) == {"schema": {"type": "object"}}


def test_scores_are_the_measured_quantity() -> None:
    assert _run("length", {"min": 1}, "abc").score == 3.0
    assert _run("numeric", {"value": 10, "tolerance": 1}, "about 9.5 kg").score == 9.5
    assert _run("rouge_l", {"column": "reference"}, "the cat sat on the mat").score == pytest.approx(1.0)


def test_a_missing_column_is_an_error_not_a_verdict() -> None:
    with pytest.raises(EvaluatorError, match="no column 'capital'"):
        _run("exact_match", {"column": "capital"}, "Paris")
    with pytest.raises(EvaluatorError, match="not a number"):
        _run("numeric", {"column": "answer"}, "42")


def test_rouge_l_is_the_f1_of_the_longest_common_subsequence() -> None:
    assert lcs_length("a b c d".split(), "a c d b".split()) == 3
    # LCS "the cat on the mat" = 5 of 6 tokens each way.
    assert rouge_l("The cat sat on the mat.", "the cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("completely different", "nothing shared") == 0.0


def test_a_result_must_be_well_formed() -> None:
    with pytest.raises(TypeError):
        EvalResult("yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EvalResult(True, float("nan"))


class Shout(Evaluator):
    """A plugin as the tests register it: passes when the response is in capitals."""

    def evaluate(self, sample: Sample, params: NoParams) -> EvalResult:
        return EvalResult(sample.response.isupper(), explanation="capitals" if sample.response.isupper() else "no")


def test_plugins_come_from_the_entry_point_group_and_broken_ones_are_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    here = __name__
    plugins = [
        EntryPoint("shout", f"{here}:Shout", ENTRY_POINT_GROUP),
        EntryPoint("regex", f"{here}:Shout", ENTRY_POINT_GROUP),  # a built-in's name: the built-in stays
        EntryPoint("missing", "no_such_module:Thing", ENTRY_POINT_GROUP),
        EntryPoint("not_an_evaluator", f"{here}:VARIABLES", ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: plugins if group == ENTRY_POINT_GROUP else [])
    installed.cache_clear()
    try:
        found = installed()
        assert isinstance(found["shout"], Shout) and not isinstance(found["regex"], Shout)
        assert "missing" not in found and "not_an_evaluator" not in found
        assert evaluate("shout", check_params("shout", None), Sample([], "HEY", {})).passed
        for logged in ("regex", "the name is taken", "missing", "not_an_evaluator"):
            assert logged in caplog.text
    finally:
        installed.cache_clear()
