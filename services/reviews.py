"""Human review: a person confirms or overrides a rating's verdict with a note. The review is stored beside
the rating (table `reviews`), never in it: the judge's verdict, the SDK's ratings and every result stay
the judge's, and the two are compared as judge-human agreement per criterion (Cohen's kappa)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models.orm import Experiment, PromptResponse, Rating, Review
from services import results
from services import statistics as st
from services.errors import not_found, owned

HumanVerdict = Literal["YES", "NO"]


def _rating(session: Session, project_id: int, rating_id: int, experiment_id: int | None = None) -> Rating:
    rating = session.get(Rating, rating_id)
    if rating is None or rating.response.project_id != project_id:
        raise not_found("Rating", rating_id)
    if experiment_id is not None and rating.response.experiment_id != experiment_id:
        raise not_found("Rating", rating_id)
    return rating


def review(
    session: Session,
    project_id: int,
    rating_id: int,
    verdict: HumanVerdict,
    note: str,
    reviewer: str,
    experiment_id: int | None = None,
) -> Review:
    """Record (or replace) the person's verdict on one of the project's ratings (of `experiment_id`, when
    given: the Studio's form names both)."""
    _rating(session, project_id, rating_id, experiment_id)
    row = session.scalar(select(Review).where(Review.rating_id == rating_id))
    if row is None:
        row = Review(project_id=project_id, rating_id=rating_id)
        session.add(row)
    row.verdict, row.note, row.reviewer = verdict, note, reviewer
    session.flush()
    return row


def withdraw(session: Session, project_id: int, rating_id: int) -> None:
    """Remove the person's verdict on a rating (404 when there is none)."""
    _rating(session, project_id, rating_id)
    removed = session.execute(delete(Review).where(Review.rating_id == rating_id))
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise not_found("Review of rating", rating_id)


def of_response(session: Session, response_id: int) -> dict[int, Review]:
    """The reviews of a response's ratings, by rating id."""
    stmt = select(Review).join(Rating, Rating.id == Review.rating_id).where(Rating.response_id == response_id)
    return {r.rating_id: r for r in session.scalars(stmt)}


@dataclass
class ReviewedRating:
    rating_id: int
    response_id: int
    criterion: str
    judge: str | None
    human: str
    note: str
    reviewer: str


@dataclass
class CriterionAgreement:
    criterion: str
    agreement: st.Agreement


@dataclass
class ExperimentReviews:
    experiment_id: int
    criteria: list[CriterionAgreement]
    reviews: list[ReviewedRating]


def _reviewed(session: Session, experiment: Experiment) -> list[ReviewedRating]:
    texts = {c.id: c.label or c.criterion_str for c in results.criteria_of(session, experiment)}
    stmt = (
        select(Review, Rating.response_id, Rating.criterion_id, Rating.rating)
        .join(Rating, Rating.id == Review.rating_id)
        .join(PromptResponse, PromptResponse.id == Rating.response_id)
        .where(PromptResponse.experiment_id == experiment.id)
        .order_by(Rating.response_id, Rating.criterion_id)
    )
    return [
        ReviewedRating(r.rating_id, response_id, texts[cid], judge, r.verdict, r.note, r.reviewer)
        for r, response_id, cid, judge in session.execute(stmt)
    ]


def experiment_reviews(session: Session, project_id: int, experiment_id: int) -> ExperimentReviews:
    """Every review of the experiment and, per criterion, how often the judge agreed with the people
    (only ratings the judge gave a verdict count)."""
    experiment = owned(session, Experiment, project_id, experiment_id, "Experiment")
    reviewed = _reviewed(session, experiment)
    pairs: dict[str, list[tuple[bool, bool]]] = {}
    for r in reviewed:
        if r.judge is not None:
            pairs.setdefault(r.criterion, []).append((r.judge == "YES", r.human == "YES"))
    criteria = [CriterionAgreement(text, st.agreement(p)) for text, p in pairs.items()]
    return ExperimentReviews(experiment.id, criteria, reviewed)
