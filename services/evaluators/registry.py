"""One registry of evaluators: the built-ins, then the plugins of the `assay.evaluators` entry-point group.

It is read once per process (the API to check criteria, each worker's evaluator processes to run them),
so a newly installed plugin is seen after a restart. Only installed code is ever loaded: an API
request names an evaluator and gives it data, never code.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from services.evaluators.base import EvalResult, Evaluator, Sample
from services.evaluators.builtin import BUILTINS

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "assay.evaluators"


class InvalidEvaluator(ValueError):
    """A criterion names an unknown evaluator or gives it bad parameters; `problems` are (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems))
        self.problems = problems


@functools.cache
def installed() -> dict[str, Evaluator]:
    """Every evaluator by name; a plugin that fails to load, or reuses a taken name, is logged and left out."""
    found: dict[str, Evaluator] = {name: cls() for name, cls in BUILTINS.items()}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            log.warning("evaluator plugin %s (%s) ignored: the name is taken", entry.name, entry.value)
            continue
        try:
            found[entry.name] = _instantiate(entry.load())
        except Exception:
            log.exception("evaluator plugin %s (%s) failed to load", entry.name, entry.value)
    return found


def _instantiate(cls: Any) -> Evaluator:
    if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
        raise TypeError(f"{cls!r} is not a subclass of services.evaluators.Evaluator")
    return cls()


def get(name: str) -> Evaluator:
    """The evaluator registered as `name`; `InvalidEvaluator` when there is none."""
    evaluator = installed().get(name)
    if evaluator is None:
        known = ", ".join(sorted(installed()))
        raise InvalidEvaluator([("evaluator", f"unknown evaluator {name!r}; installed: {known}")])
    return evaluator


def check_params(name: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters as stored (validated, defaults filled in); `InvalidEvaluator` names each problem."""
    model = get(name).params_model
    try:
        return model.model_validate(params or {}).model_dump(mode="json", by_alias=True)
    except ValidationError as exc:
        raise InvalidEvaluator([(_path("params", err["loc"]), err["msg"]) for err in exc.errors()]) from None


def _path(root: str, loc: tuple[int | str, ...]) -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def evaluate(name: str, params: dict[str, Any], sample: Sample) -> EvalResult:
    """Run one evaluation in this process (the workers call it inside a killable child process)."""
    evaluator = get(name)
    result = evaluator.evaluate(sample, evaluator.params_model.model_validate(params))
    if not isinstance(result, EvalResult):
        raise TypeError(f"evaluate() returned {type(result).__name__}, not EvalResult")
    return result
