"""`/ratings`: the verdicts of one response, and rating batches."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.resources.responses import batch_routes, start_batch
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.responses import BatchCreateRatings, RatingOut, RatingsQuery
from services import responses, runs
from services.states import JobKind

bp = Blueprint("ratings", __name__, url_prefix="/ratings")


@endpoint(bp, "", query=RatingsQuery, response=Page[RatingOut])
def list_ratings(query: RatingsQuery) -> object:
    """The YES/NO ratings of one response (failed ratings are counted in results, never listed)."""
    return responses.ratings_of(
        db_session(), current_project_id(), query.prompt_response_id or 0, query.page, settings().page_size
    )


@endpoint(bp, "/batches", "POST", body=BatchCreateRatings, response=str, status=201)
def create_rating_batch(body: BatchCreateRatings) -> object:
    """Re-rate responses against their experiments' criteria as one job; answers the task id as a JSON string."""
    return start_batch(runs.start_rating_batch(db_session(), settings(), current_project_id(), body))


batch_routes(bp, JobKind.RATINGS_BATCH)
