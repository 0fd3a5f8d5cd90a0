"""`/ratings`: the verdicts of one response."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.responses import RatingOut, RatingsQuery
from services import responses

bp = Blueprint("ratings", __name__, url_prefix="/ratings")


@endpoint(bp, "", query=RatingsQuery, response=Page[RatingOut])
def list_ratings(query: RatingsQuery) -> object:
    """The YES/NO ratings of one response (failed ratings are counted in results, never listed)."""
    assert query.prompt_response_id is not None
    return responses.ratings_of(
        db_session(), current_project_id(), query.prompt_response_id, query.page, settings().page_size
    )
