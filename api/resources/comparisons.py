"""Assay extension `/experiments/compare`: is B really better than A? (see services/comparisons.py)"""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session
from api.routing import endpoint
from models.schemas.comparisons import CompareQuery, ComparisonOut
from services import comparisons

bp = Blueprint("comparisons", __name__, url_prefix="/experiments")


@endpoint(bp, "/compare", query=CompareQuery, response=ComparisonOut)
def compare_experiments(query: CompareQuery) -> object:
    """Assay extension: 2 to 8 experiments matched by test case: Wilson intervals for every pass rate;
    each experiment against the first with exact McNemar per criterion (Holm-adjusted), a paired
    bootstrap of the mean score, and a verdict."""
    return comparisons.compare(db_session(), current_project_id(), query.ids)
