"""The built-in evaluators: deterministic checks that need no model.

Each one's parameters are a `Params` model, checked when a criterion is created; what depends on the
test case (an expected-value column that is missing, say) fails the rating when it runs instead.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import jsonschema
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.evaluators.base import EvalResult, Evaluator, EvaluatorError, NoParams, Params, Sample

NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
WORD = re.compile(r"\w+")


def _quote(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _column_value(sample: Sample, column: str) -> Any:
    if column not in sample.variables:
        raise EvaluatorError(f"the test case has no column {column!r}")
    return sample.variables[column]


class Expected(Params):
    """An expected value: a literal `value` or the test case's `column` holding it (exactly one)."""

    value: Any = None
    column: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> Expected:
        if (self.value is None) == (self.column is None):
            raise PydanticCustomError("expected_value", "give exactly one of value and column")
        return self

    def expected(self, sample: Sample) -> Any:
        return self.value if self.column is None else _column_value(sample, self.column)


class TextParams(Expected):
    value: str | None = None
    case_sensitive: bool = True

    def fold(self, text: str) -> str:
        return text.strip() if self.case_sensitive else text.strip().casefold()


class ExactMatch(Evaluator):
    """Passes when the response equals the expected text (surrounding whitespace ignored)."""

    params_model = TextParams

    def evaluate(self, sample: Sample, params: TextParams) -> EvalResult:
        expected = str(params.expected(sample))
        passed = params.fold(sample.response) == params.fold(expected)
        verb = "equals" if passed else "differs from"
        return EvalResult(passed, explanation=f"The response {verb} {_quote(expected)}")


class Contains(Evaluator):
    """Passes when the response contains the expected text."""

    params_model = TextParams

    def evaluate(self, sample: Sample, params: TextParams) -> EvalResult:
        expected = str(params.expected(sample))
        passed = params.fold(expected) in params.fold(sample.response)
        verb = "contains" if passed else "does not contain"
        return EvalResult(passed, explanation=f"The response {verb} {_quote(expected)}")


class RegexParams(Params):
    pattern: str = Field(min_length=1, max_length=10_000)
    case_sensitive: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise PydanticCustomError(
                "regex", "not a valid regular expression: {reason}", {"reason": str(exc)}
            ) from None
        return pattern


class Regex(Evaluator):
    """Passes when the pattern matches anywhere in the response (`re.search`)."""

    params_model = RegexParams

    def evaluate(self, sample: Sample, params: RegexParams) -> EvalResult:
        flags = 0 if params.case_sensitive else re.IGNORECASE
        match = re.search(params.pattern, sample.response, flags)
        if match is None:
            return EvalResult(False, explanation=f"No match for /{params.pattern}/")
        return EvalResult(True, explanation=f"/{params.pattern}/ matched {_quote(match.group(0))} at {match.start()}")


def _parse_json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"Not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


class ValidJson(Evaluator):
    """Passes when the whole response is one JSON document."""

    params_model = NoParams

    def evaluate(self, sample: Sample, params: NoParams) -> EvalResult:
        _, problem = _parse_json(sample.response)
        return EvalResult(problem is None, explanation=problem or "The response is valid JSON")


class SchemaParams(Params):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    json_schema: dict[str, Any] = Field(alias="schema")

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise PydanticCustomError(
                "json_schema", "not a valid JSON Schema: {reason}", {"reason": exc.message}
            ) from None
        return schema


class JsonSchema(Evaluator):
    """Passes when the response is JSON that validates against `schema`."""

    params_model = SchemaParams

    def evaluate(self, sample: Sample, params: SchemaParams) -> EvalResult:
        document, problem = _parse_json(sample.response)
        if problem is not None:
            return EvalResult(False, explanation=problem)
        validator = jsonschema.validators.validator_for(params.json_schema)(params.json_schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is None:
            return EvalResult(True, explanation="The response is JSON valid against the schema")
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        return EvalResult(False, explanation=f"Against the schema, at {where}: {error.message}")


class LengthParams(Params):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    unit: Literal["chars", "words"] = "chars"

    @model_validator(mode="after")
    def _bounds(self) -> LengthParams:
        if self.min is None and self.max is None:
            raise PydanticCustomError("length_bounds", "give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("length_bounds", "min must not be greater than max")
        return self


class Length(Evaluator):
    """Passes when the response's length in characters or words is within [min, max]; the score is the length."""

    params_model = LengthParams

    def evaluate(self, sample: Sample, params: LengthParams) -> EvalResult:
        text = sample.response
        length = len(text.split()) if params.unit == "words" else len(text)
        too_short = params.min is not None and length < params.min
        too_long = params.max is not None and length > params.max
        unit = "words" if params.unit == "words" else "characters"
        bounds = f"[{params.min if params.min is not None else 0}, {params.max if params.max is not None else '∞'}]"
        verdict = "below" if too_short else "above" if too_long else "within"
        return EvalResult(not (too_short or too_long), float(length), f"{length} {unit}, {verdict} {bounds}")


class NumericParams(Expected):
    value: float | None = None
    tolerance: float = Field(default=0.0, ge=0)


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = NUMBER.fullmatch(str(value).strip())
    if match is None:
        raise EvaluatorError(f"the expected value {_quote(str(value))} is not a number")
    return float(match.group(0))


class Numeric(Evaluator):
    """Passes when the first number in the response is within `tolerance` of the expected one; the score is
    that number."""

    params_model = NumericParams

    def evaluate(self, sample: Sample, params: NumericParams) -> EvalResult:
        expected = _number(params.expected(sample))
        match = NUMBER.search(sample.response)
        if match is None:
            return EvalResult(False, explanation=f"No number in the response (expected {expected:g})")
        found = float(match.group(0))
        passed = abs(found - expected) <= params.tolerance
        relation = "within" if passed else "not within"
        return EvalResult(passed, found, f"{found:g} is {relation} {params.tolerance:g} of {expected:g}")


class RougeParams(Params):
    column: str = Field(min_length=1)
    threshold: float = Field(default=0.5, ge=0, le=1)


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists (one DP row at a time)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for token in a:
        diagonal = 0
        for j, other in enumerate(b, start=1):
            diagonal, row[j] = row[j], diagonal + 1 if token == other else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of two texts over lower-cased word tokens (0.0 when either has none)."""
    cand, ref = WORD.findall(candidate.lower()), WORD.findall(reference.lower())
    common = lcs_length(cand, ref) if cand and ref else 0
    if common == 0:
        return 0.0
    precision, recall = common / len(cand), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class RougeL(Evaluator):
    """Passes when the ROUGE-L F1 of the response against the reference column reaches `threshold`; the
    score is the F1."""

    params_model = RougeParams

    def evaluate(self, sample: Sample, params: RougeParams) -> EvalResult:
        score = rouge_l(sample.response, str(_column_value(sample, params.column)))
        passed = score >= params.threshold
        relation = ">=" if passed else "<"
        return EvalResult(passed, score, f"ROUGE-L F1 {score:.3f} {relation} threshold {params.threshold:g}")


BUILTINS: dict[str, type[Evaluator]] = {
    "exact_match": ExactMatch,
    "contains": Contains,
    "regex": Regex,
    "valid_json": ValidJson,
    "json_schema": JsonSchema,
    "length": Length,
    "numeric": Numeric,
    "rouge_l": RougeL,
}
