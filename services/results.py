"""`Experiment.results`, computed in the database: never NaN, never null averages. The Studio shows
the same totals (`response_totals`, `rating_stats`) for the experiments it lists and summarises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from models.orm import Criterion, Experiment, PromptResponse, Rating
from services.statistics import Interval, wilson


@dataclass
class _RatingStats:
    by_criterion: dict[int, tuple[int, int]] = field(default_factory=dict)  # (yes, verdicts)
    failed: int = 0
    input_cost: float = 0.0
    output_cost: float = 0.0


def _yes_no(yes: int, total: int) -> dict[str, float]:
    return {"yes": yes / total, "no": (total - yes) / total} if total else {"yes": 0.0, "no": 0.0}


def _interval(yes: int, total: int) -> Interval | None:
    return wilson(yes, total).interval


def criteria_of(session: Session, experiment: Experiment) -> list[Criterion]:
    """The set's current criteria, plus older ones this experiment's ratings still refer to."""
    rated = (
        select(Rating.criterion_id)
        .join(PromptResponse, PromptResponse.id == Rating.response_id)
        .where(PromptResponse.experiment_id == experiment.id)
        .distinct()
    )
    current = and_(Criterion.criterion_set_id == experiment.criterion_set_id, Criterion.superseded.is_(False))
    stmt = select(Criterion).where(or_(current, Criterion.id.in_(rated))).order_by(Criterion.position, Criterion.id)
    return list(session.scalars(stmt))


def rating_stats(session: Session, experiment_id: int) -> _RatingStats:
    """Per criterion (yes, verdicts), failed ratings and the judge's cost: one grouped query."""
    rows = session.execute(
        select(
            Rating.criterion_id,
            func.sum(case((Rating.rating == "YES", 1), else_=0)),
            func.count(Rating.rating),
            func.sum(case((Rating.rating.is_(None), 1), else_=0)),
            func.sum(Rating.input_cost_usd),
            func.sum(Rating.output_cost_usd),
        )
        .join(PromptResponse, PromptResponse.id == Rating.response_id)
        .where(PromptResponse.experiment_id == experiment_id)
        .group_by(Rating.criterion_id)
    ).all()
    stats = _RatingStats()
    for cid, yes, verdicts, failed, in_cost, out_cost in rows:
        stats.by_criterion[cid] = (int(yes or 0), int(verdicts or 0))
        stats.failed += int(failed or 0)
        stats.input_cost += float(in_cost or 0.0)
        stats.output_cost += float(out_cost or 0.0)
    return stats


@dataclass(frozen=True)
class ResponseTotals:
    """An experiment's responses summed in SQL: what the REST results and the Studio both report.

    Tokens and durations count generated responses only (a missing value counts as 0); costs count
    every response; the span runs from the first response to the last, None with fewer than two."""

    responses: int
    failed: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    duration_seconds: float
    input_cost_usd: float
    output_cost_usd: float
    completed_epochs: int
    span_seconds: float | None

    @property
    def generated(self) -> int:
        return self.responses - self.failed

    def mean(self, total: float) -> float:
        """`total` per generated response; 0.0 when none was generated (the SDK wants no nulls)."""
        return total / self.generated if self.generated else 0.0


def response_totals(session: Session, experiment_id: int) -> ResponseTotals:
    ok = PromptResponse.error.is_(None)

    def generated(column: Any) -> Any:
        return func.coalesce(func.sum(case((ok, func.coalesce(column, 0)), else_=0)), 0)

    row = session.execute(
        select(
            func.count(PromptResponse.id),
            func.count(PromptResponse.error),
            generated(PromptResponse.input_tokens),
            generated(PromptResponse.output_tokens),
            generated(PromptResponse.reasoning_tokens),
            generated(PromptResponse.duration_seconds),
            func.coalesce(func.sum(PromptResponse.input_cost_usd), 0),
            func.coalesce(func.sum(PromptResponse.output_cost_usd), 0),
            func.coalesce(func.max(PromptResponse.epoch), 0),
            func.count(PromptResponse.created_at),
            func.min(PromptResponse.created_at),
            func.max(PromptResponse.created_at),
        ).where(PromptResponse.experiment_id == experiment_id)
    ).one()
    count, failed, tokens_in, tokens_out, reasoning, duration, cost_in, cost_out, epochs, stamps, first, last = row
    return ResponseTotals(
        responses=int(count),
        failed=int(failed),
        input_tokens=int(tokens_in),
        output_tokens=int(tokens_out),
        reasoning_tokens=int(reasoning),
        duration_seconds=float(duration),
        input_cost_usd=float(cost_in),
        output_cost_usd=float(cost_out),
        completed_epochs=int(epochs),
        span_seconds=(last - first).total_seconds() if stamps > 1 else None,
    )


def _per_response(session: Session, experiment_id: int | None) -> dict[str, list[Any]]:
    """Each generated response's tokens and duration: the SDK's `*_per_response` lists (empty for None)."""
    rows = (
        []
        if experiment_id is None
        else session.execute(
            select(
                PromptResponse.input_tokens,
                PromptResponse.output_tokens,
                PromptResponse.reasoning_tokens,
                PromptResponse.duration_seconds,
            ).where(PromptResponse.experiment_id == experiment_id, PromptResponse.error.is_(None))
        ).all()
    )
    return {
        "input_tokens_per_response": [r.input_tokens or 0 for r in rows],
        "output_tokens_per_response": [r.output_tokens or 0 for r in rows],
        "reasoning_tokens_per_response": [r.reasoning_tokens or 0 for r in rows],
        "duration_seconds_per_response": [float(r.duration_seconds or 0.0) for r in rows],
    }


def _rated_responses(session: Session, experiment_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Rating.response_id)))
            .join(PromptResponse, PromptResponse.id == Rating.response_id)
            .where(PromptResponse.experiment_id == experiment_id, Rating.rating.is_not(None))
        )
        or 0
    )


def compute(session: Session, experiment: Experiment) -> dict[str, Any]:
    """The SDK's ExperimentResults for one experiment, from whatever responses and ratings exist now."""
    totals = response_totals(session, experiment.id)
    # Without responses there are no ratings: a new experiment's view needs no more aggregates.
    has_responses = totals.responses > 0
    stats = rating_stats(session, experiment.id) if has_responses else _RatingStats()
    active = session.scalars(
        select(Criterion.id).where(
            Criterion.criterion_set_id == experiment.criterion_set_id, Criterion.superseded.is_(False)
        )
    )
    for cid in active:
        stats.by_criterion.setdefault(cid, (0, 0))
    input_cost = stats.input_cost + totals.input_cost_usd
    output_cost = stats.output_cost + totals.output_cost_usd
    all_yes, all_verdicts = (
        sum(y for y, _ in stats.by_criterion.values()),
        sum(n for _, n in stats.by_criterion.values()),
    )
    return {
        "mean_all_ratings": _yes_no(all_yes, all_verdicts),
        "pass_rate_interval": _interval(all_yes, all_verdicts),
        "pass_rate_interval_by_criterion_id": {
            cid: _interval(y, n) for cid, (y, n) in sorted(stats.by_criterion.items())
        },
        "std_all_ratings": 0.0,
        "mean_rating_by_criterion_id": {cid: _yes_no(y, n) for cid, (y, n) in sorted(stats.by_criterion.items())},
        "mean_duration_seconds": totals.mean(totals.duration_seconds),
        "mean_input_tokens": totals.mean(totals.input_tokens),
        "mean_output_tokens": totals.mean(totals.output_tokens),
        "mean_reasoning_tokens": totals.mean(totals.reasoning_tokens),
        **_per_response(session, experiment.id if has_responses else None),
        "num_rated_responses": _rated_responses(session, experiment.id) if has_responses else 0,
        "num_failed_responses": totals.failed,
        "num_failed_ratings": stats.failed,
        "completed_epochs": totals.completed_epochs,
        "experiment_duration_seconds": totals.span_seconds,
        "estimated_input_cost_usd": input_cost,
        "estimated_output_cost_usd": output_cost,
        "estimated_total_cost_usd": input_cost + output_cost,
    }
