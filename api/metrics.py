"""`/metrics` for Prometheus (no credentials: expose it only inside the cluster) and the HTTP metrics."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST

from api.extensions import database
from services import cluster, metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    """Every process's metrics and the cluster's state (jobs, queue depth, free chunks)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return Response(metrics.render(metrics.ClusterCollector(lambda: _cluster_state(app))), mimetype=CONTENT_TYPE_LATEST)


def _cluster_state(app: Flask) -> dict[str, Any]:
    with app.app_context(), database().session() as session:
        return cluster.state(session, app.extensions["assay_health_redis"])


def _observe(response: Response) -> Response:
    started = g.get("request_started")  # set by api.request_log, also for requests refused early
    if started is not None and request.endpoint != "metrics.scrape":
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    app.after_request(_observe)
    app.register_blueprint(bp)
