"""What an evaluator is: a class that checks one response and returns pass or fail with an explanation.

Evaluators are installed by the operator (built in, or Python packages found through the
`assay.evaluators` entry-point group); the API only ever names one and gives it parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of evaluator parameter models: unknown keys are refused, so a typo is a 422, not a default."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    """The parameters of an evaluator that takes none."""


@dataclass(frozen=True)
class Sample:
    """One response to evaluate: the rendered prompt, the answer's text and the test case's variables."""

    messages: list[dict[str, Any]]
    response: str
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalResult:
    """An evaluator's verdict: stored as a YES/NO rating, `explanation` as its reasoning, `score` kept."""

    passed: bool
    score: float | None = None
    explanation: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.passed, bool):
            raise TypeError(f"passed must be a bool, not {type(self.passed).__name__}")
        if self.score is not None and not (isinstance(self.score, int | float) and math.isfinite(self.score)):
            raise TypeError(f"score must be a finite number or None, not {self.score!r}")
        if not isinstance(self.explanation, str):
            raise TypeError(f"explanation must be a str, not {type(self.explanation).__name__}")


class Evaluator:
    """Base class of every evaluator, built-in or plugin.

    A plugin subclasses it, sets `params_model` to a `Params` subclass describing its parameters
    (checked when a criterion is created, so bad ones are refused with a 422) and implements
    `evaluate`. It is registered under a name in the `assay.evaluators` entry-point group of its
    package, for example `length = "my_package:LengthEvaluator"`, and instantiated without arguments.
    `evaluate` runs in a separate worker process with a time limit; raising marks the rating failed.
    """

    params_model: ClassVar[type[Params]] = NoParams

    def evaluate(self, sample: Sample, params: Any) -> EvalResult:
        """Check `sample` with `params` (an instance of `params_model`)."""
        raise NotImplementedError


class EvaluatorError(Exception):
    """An evaluator cannot run as configured (for example the expected-value column is missing)."""
