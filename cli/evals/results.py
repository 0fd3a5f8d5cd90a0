"""The outcome of an evaluation: one cell per prompt x model, read from the experiments' REST results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cli.evals.spec import EvalSpec


@dataclass
class CriterionResult:
    key: str
    text: str
    criterion_id: int
    pass_rate: float | None
    threshold: float | None

    @property
    def passed(self) -> bool:
        return self.threshold is None or (self.pass_rate is not None and self.pass_rate >= self.threshold)


@dataclass
class Cell:
    prompt: str
    model: str
    experiment_id: int
    experiment_name: str
    state: str
    error: str | None = None
    criteria: list[CriterionResult] = field(default_factory=list)
    pass_rate: float | None = None
    threshold: float | None = None
    responses: int = 0
    failed_responses: int = 0
    failed_ratings: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    duration_seconds: float | None = None

    @property
    def overall_passed(self) -> bool:
        return self.threshold is None or (self.pass_rate is not None and self.pass_rate >= self.threshold)

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCESS"

    @property
    def passed(self) -> bool:
        return self.succeeded and self.overall_passed and all(c.passed for c in self.criteria)

    def failures(self) -> list[str]:
        """Why this cell fails the gate, one sentence each."""
        out = [] if self.succeeded else [f"the experiment ended {self.state}: {self.error or 'no reason given'}"]
        if not self.overall_passed:
            out.append(f"overall pass rate {_pct(self.pass_rate)} is below {_pct(self.threshold)}")
        out += [
            f"{c.key!r}: pass rate {_pct(c.pass_rate)} is below {_pct(c.threshold)}"
            for c in self.criteria
            if not c.passed
        ]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "failures": self.failures()}

    def studio_url(self, base_url: str) -> str:
        return f"{base_url}/studio/experiments/{self.experiment_id}"


@dataclass
class Report:
    name: str
    base_url: str
    cells: list[Cell]

    @property
    def passed(self) -> bool:
        return all(cell.passed for cell in self.cells)

    @property
    def criteria_keys(self) -> list[str]:
        return [c.key for c in self.cells[0].criteria] if self.cells else []

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base_url": self.base_url,
            "passed": self.passed,
            "experiments": [{**c.as_dict(), "studio_url": c.studio_url(self.base_url)} for c in self.cells],
        }


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def cell_from_experiment(
    spec: EvalSpec, prompt: str, model: str, experiment: dict[str, Any], criterion_ids: list[int], state: str
) -> Cell:
    """Read one finished experiment (`GET experiments/{id}`) into a cell of the matrix."""
    results = experiment.get("results") or {}
    by_id = results.get("mean_rating_by_criterion_id") or {}
    criteria = [
        CriterionResult(c.key, c.text, cid, _yes(by_id.get(str(cid))), c.threshold)
        for c, cid in zip(spec.criteria, criterion_ids, strict=True)
    ]
    rated = results.get("num_rated_responses", 0)
    return Cell(
        prompt=prompt,
        model=model,
        experiment_id=experiment["id"],
        experiment_name=experiment["name"],
        state=state,
        criteria=criteria,
        pass_rate=_yes(results.get("mean_all_ratings")) if rated else None,
        threshold=spec.overall_threshold,
        responses=len(results.get("output_tokens_per_response") or []),
        failed_responses=results.get("num_failed_responses", 0),
        failed_ratings=results.get("num_failed_ratings", 0),
        input_tokens=sum(results.get("input_tokens_per_response") or []),
        output_tokens=sum(results.get("output_tokens_per_response") or []),
        cost_usd=results.get("estimated_total_cost_usd") or 0.0,
        duration_seconds=results.get("experiment_duration_seconds"),
    )


def _yes(mean: dict[str, float] | None) -> float | None:
    return None if mean is None else mean["yes"]
