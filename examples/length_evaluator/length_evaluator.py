"""PromptLab's `LengthEvaluator` (its async example's custom evaluator) as an Assay evaluator plugin.

PromptLab's version returns the response's length as its metric; here the length is the rating's score,
and the criterion passes when `min <= length <= max` (characters).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from services.evaluators import EvalResult, Evaluator, Params, Sample


class LengthParams(Params):
    """Inclusive bounds on the response's length in characters."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LengthParams:
        if self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class LengthEvaluator(Evaluator):
    """Scores a response by its length in characters; passes when it is within [min, max]."""

    params_model = LengthParams

    def evaluate(self, sample: Sample, params: LengthParams) -> EvalResult:
        length = len(sample.response)
        passed = params.min <= length <= params.max
        relation = "within" if passed else "outside"
        return EvalResult(passed, float(length), f"{length} characters, {relation} [{params.min}, {params.max}]")
