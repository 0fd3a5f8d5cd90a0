"""Two evaluators that misbehave: one raises, one never returns (tests/e2e/test_evaluators.py)."""

from __future__ import annotations

import time

from services.evaluators import EvalResult, Evaluator, NoParams, Sample


class Raises(Evaluator):
    """Fails every evaluation with an exception."""

    def evaluate(self, sample: Sample, params: NoParams) -> EvalResult:
        raise RuntimeError(f"boom on {sample.response[:20]!r}")


class Hangs(Evaluator):
    """Never returns, and prints first (which must not corrupt the worker's replies)."""

    def evaluate(self, sample: Sample, params: NoParams) -> EvalResult:
        print("hanging now", flush=True)
        time.sleep(3600)
        return EvalResult(True)
