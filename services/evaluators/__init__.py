"""Evaluators: criteria computed by code instead of the LLM judge (built-ins and installed plugins).

A plugin imports its base class and result types from here::

    from services.evaluators import EvalResult, Evaluator, Params, Sample
"""

from services.evaluators.base import EvalResult, Evaluator, EvaluatorError, NoParams, Params, Sample
from services.evaluators.registry import ENTRY_POINT_GROUP, InvalidEvaluator, check_params, evaluate, get, installed

__all__ = [
    "ENTRY_POINT_GROUP",
    "EvalResult",
    "Evaluator",
    "EvaluatorError",
    "InvalidEvaluator",
    "NoParams",
    "Params",
    "Sample",
    "check_params",
    "evaluate",
    "get",
    "installed",
]
