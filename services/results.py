"""`Experiment.results`, computed in the database: never NaN, never null averages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models.orm import Criterion, Experiment, PromptResponse, Rating


@dataclass
class _RatingStats:
    by_criterion: dict[int, tuple[int, int]] = field(default_factory=dict)  # (yes, verdicts)
    failed: int = 0
    input_cost: float = 0.0
    output_cost: float = 0.0


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _yes_no(yes: int, total: int) -> dict[str, float]:
    return {"yes": yes / total, "no": (total - yes) / total} if total else {"yes": 0.0, "no": 0.0}


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


def _responses(session: Session, experiment_id: int) -> list[Any]:
    return list(
        session.execute(
            select(
                PromptResponse.error,
                PromptResponse.input_tokens,
                PromptResponse.output_tokens,
                PromptResponse.reasoning_tokens,
                PromptResponse.duration_seconds,
                PromptResponse.input_cost_usd,
                PromptResponse.output_cost_usd,
                PromptResponse.epoch,
                PromptResponse.created_at,
            ).where(PromptResponse.experiment_id == experiment_id)
        ).all()
    )


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
    responses = _responses(session, experiment.id)
    ok = [r for r in responses if r.error is None]
    stats = rating_stats(session, experiment.id)
    active = session.scalars(
        select(Criterion.id).where(
            Criterion.criterion_set_id == experiment.criterion_set_id, Criterion.superseded.is_(False)
        )
    )
    for cid in active:
        stats.by_criterion.setdefault(cid, (0, 0))
    tokens_in = [r.input_tokens or 0 for r in ok]
    tokens_out = [r.output_tokens or 0 for r in ok]
    tokens_reasoning = [r.reasoning_tokens or 0 for r in ok]
    durations = [float(r.duration_seconds or 0.0) for r in ok]
    input_cost = stats.input_cost + sum(float(r.input_cost_usd or 0.0) for r in responses)
    output_cost = stats.output_cost + sum(float(r.output_cost_usd or 0.0) for r in responses)
    return {
        "mean_all_ratings": _yes_no(
            sum(y for y, _ in stats.by_criterion.values()), sum(n for _, n in stats.by_criterion.values())
        ),
        "std_all_ratings": 0.0,
        "mean_rating_by_criterion_id": {cid: _yes_no(y, n) for cid, (y, n) in sorted(stats.by_criterion.items())},
        "mean_duration_seconds": _mean(durations),
        "mean_input_tokens": _mean([float(x) for x in tokens_in]),
        "mean_output_tokens": _mean([float(x) for x in tokens_out]),
        "mean_reasoning_tokens": _mean([float(x) for x in tokens_reasoning]),
        "input_tokens_per_response": tokens_in,
        "output_tokens_per_response": tokens_out,
        "reasoning_tokens_per_response": tokens_reasoning,
        "duration_seconds_per_response": durations,
        "num_rated_responses": _rated_responses(session, experiment.id),
        "num_failed_responses": len(responses) - len(ok),
        "num_failed_ratings": stats.failed,
        "completed_epochs": max((r.epoch for r in responses), default=0),
        "experiment_duration_seconds": _span_seconds(responses),
        "estimated_input_cost_usd": input_cost,
        "estimated_output_cost_usd": output_cost,
        "estimated_total_cost_usd": input_cost + output_cost,
    }


def _span_seconds(responses: list[Any]) -> float | None:
    stamps = [r.created_at for r in responses if r.created_at is not None]
    return (max(stamps) - min(stamps)).total_seconds() if len(stamps) > 1 else None
