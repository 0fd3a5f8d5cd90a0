"""Assay extension: people confirm or override ratings (`/ratings/{id}/review`), each experiment's
judge-human agreement (`/experiments/{id}/reviews`) and the judge's agreement with itself over repeated
trials (`/experiments/{id}/consistency`). See services/reviews.py and services/consistency.py."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session
from api.routing import endpoint
from models.schemas.reviews import ConsistencyOut, ExperimentReviewsOut, ReviewIn, ReviewOut
from services import consistency, reviews

bp = Blueprint("reviews", __name__)


@endpoint(bp, "/ratings/<int:rating_id>/review", "PUT", body=ReviewIn, response=ReviewOut)
def put_review(rating_id: int, body: ReviewIn) -> object:
    """Assay extension: record or replace a person's verdict on a rating; the judge's verdict is kept."""
    return reviews.review(db_session(), current_project_id(), rating_id, body.verdict, body.note, body.reviewer)


@endpoint(bp, "/ratings/<int:rating_id>/review", "DELETE")
def delete_review(rating_id: int) -> None:
    """Assay extension: withdraw the person's verdict on a rating."""
    reviews.withdraw(db_session(), current_project_id(), rating_id)


@endpoint(bp, "/experiments/<int:experiment_id>/reviews", response=ExperimentReviewsOut)
def experiment_reviews(experiment_id: int) -> object:
    """Assay extension: every review of the experiment and judge-human agreement per criterion (Cohen's kappa)."""
    return reviews.experiment_reviews(db_session(), current_project_id(), experiment_id)


@endpoint(bp, "/experiments/<int:experiment_id>/consistency", response=ConsistencyOut)
def experiment_consistency(experiment_id: int) -> object:
    """Assay extension: with judge_trials > 1, how often the judge's trials agree per criterion, and which are flaky."""
    return consistency.consistency(db_session(), current_project_id(), experiment_id)
