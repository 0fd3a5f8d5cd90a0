"""Comparison samples of two experiments (the SDK's `list_comparison_samples`): the test cases both
answered, as a pair of samples each, optionally only those whose score B raised or lowered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from models.db import in_batches
from models.orm import Entry, Experiment, PromptResponse, Rating
from models.schemas.responses import ComparisonSamplesQuery
from services.errors import Invalid, owned

# "Representative samples": at most this many test cases (two samples each), the largest changes first.
SAMPLE_LIMIT = 100


def samples(session: Session, project_id: int, query: ComparisonSamplesQuery) -> list[dict[str, Any]]:
    """One sample per experiment for each test case both answered, A's before B's; a test case's score is
    its share of YES verdicts over every epoch (a failed or unrated response passes nothing)."""
    a = owned(session, Experiment, project_id, query.experiment_a_id, "Experiment", "query.experiment_a_id")
    b = owned(session, Experiment, project_id, query.experiment_b_id, "Experiment", "query.experiment_b_id")
    if a.id == b.id:
        raise Invalid("query.experiment_b_id: choose an experiment other than experiment_a_id")
    scores_a, scores_b = (_scores(session, e.id, query.criterion_ids) for e in (a, b))
    matched = sorted((entry, scores_b[entry] - scores_a[entry]) for entry in scores_a if entry in scores_b)
    if query.filter_samples_by is not None:
        improved = query.filter_samples_by == "improved"
        matched = [(entry, delta) for entry, delta in matched if (delta > 0 if improved else delta < 0)]
        matched.sort(key=lambda pair: (-abs(pair[1]), pair[0]))
    entries = _with_values(session, [entry for entry, _ in matched], query.categorical_filters)[:SAMPLE_LIMIT]
    ids = {e.id: _response_ids(session, e.id, entries) for e in (a, b)}
    return [
        {"experiment_id": e.id, "template_variables_id": entry, "prompt_response_ids": ids[e.id][entry]}
        for entry in entries
        for e in (a, b)
    ]


def _scores(session: Session, experiment_id: int, criterion_ids: list[int] | None) -> dict[int, float]:
    counted = Rating.rating.is_not(None)
    if criterion_ids:
        counted = and_(counted, Rating.criterion_id.in_(criterion_ids))
    yes = func.sum(case((and_(counted, Rating.rating == "YES"), 1), else_=0))
    verdicts = func.sum(case((counted, 1), else_=0))
    stmt = (
        select(PromptResponse.entry_id, func.coalesce(cast(yes, Float) / func.nullif(verdicts, 0), 0.0))
        .outerjoin(Rating, Rating.response_id == PromptResponse.id)
        .where(PromptResponse.experiment_id == experiment_id)
        .group_by(PromptResponse.entry_id)
    )
    return {entry: float(score) for entry, score in session.execute(stmt)}


def _with_values(session: Session, entry_ids: list[int], filters: dict[str, list[str]] | None) -> list[int]:
    """The entries (in the given order) whose values pass every categorical filter."""
    if not filters:
        return entry_ids
    values: dict[int, dict[str, Any]] = {}
    for batch in in_batches(entry_ids):
        rows = session.execute(select(Entry.id, Entry.input_values).where(Entry.id.in_(batch)))
        values.update((entry, input_values) for entry, input_values in rows)
    return [
        entry
        for entry in entry_ids
        if all(column in values[entry] and str(values[entry][column]) in allowed for column, allowed in filters.items())
    ]


def _response_ids(session: Session, experiment_id: int, entry_ids: list[int]) -> dict[int, list[int]]:
    stmt = (
        select(PromptResponse.entry_id, PromptResponse.id)
        .where(PromptResponse.experiment_id == experiment_id, PromptResponse.entry_id.in_(entry_ids))
        .order_by(PromptResponse.entry_id, PromptResponse.epoch, PromptResponse.id)
    )
    ids: dict[int, list[int]] = {entry: [] for entry in entry_ids}
    for entry, response_id in session.execute(stmt):
        ids[entry].append(response_id)
    return ids
