"""Judge consistency: with `judge_trials` k > 1 the judge answers every criterion k times; how often its
answers agree with their own majority, per criterion, tells a stable criterion from a flaky one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.orm import Experiment, PromptResponse, Rating
from services import results
from services.errors import owned

# Below this share of trials agreeing with their majority a criterion is flagged: at k=3 it means more
# than about one rating in four had a dissenting answer, too often to trust one call's verdict.
FLAKY_BELOW = 0.9


@dataclass
class CriterionConsistency:
    criterion: str
    ratings: int  # ratings with several trials
    unanimous: int  # of them, every trial gave the same answer
    agreement: float | None  # mean share of trials that agree with their rating's majority

    @property
    def flaky(self) -> bool:
        return self.agreement is not None and self.agreement < FLAKY_BELOW


@dataclass
class Consistency:
    experiment_id: int
    judge_trials: int
    flaky_below: float
    criteria: list[CriterionConsistency]


def _agreeing(trials: list[Any], majority: str) -> float:
    return sum(t.get("rating") == majority for t in trials) / len(trials)


def consistency(session: Session, project_id: int, experiment_id: int) -> Consistency:
    """Per criterion of the experiment: its multi-trial ratings, the unanimous ones, the mean agreement."""
    experiment = owned(session, Experiment, project_id, experiment_id, "Experiment")
    texts = {c.id: c.label or c.criterion_str for c in results.criteria_of(session, experiment)}
    shares: dict[str, list[float]] = {text: [] for text in texts.values()}
    stmt = (
        select(Rating.criterion_id, Rating.rating, Rating.trials)
        .join(PromptResponse, PromptResponse.id == Rating.response_id)
        .where(PromptResponse.experiment_id == experiment.id, Rating.trials.is_not(None))
    )
    for criterion_id, verdict, trials in session.execute(stmt):
        if isinstance(trials, list) and len(trials) > 1 and verdict is not None:
            shares[texts[criterion_id]].append(_agreeing(trials, verdict))
    criteria = [
        CriterionConsistency(text, len(s), sum(v == 1.0 for v in s), sum(s) / len(s) if s else None)
        for text, s in shares.items()
    ]
    return Consistency(experiment.id, experiment.judge_trials, FLAKY_BELOW, criteria)
