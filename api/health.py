"""`/healthz` (the process answers) and `/readyz` (database, Redis and schema usable), without credentials.

Both are cheap enough for a probe every few seconds: one `SELECT` of the schema version, one Redis
`PING` and a scan of the heartbeat keys. Readiness is 503 when any check fails, so a load balancer
or Kubernetes stops sending requests to an API that would only answer 503 itself.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, jsonify, redirect
from sqlalchemy.exc import SQLAlchemyError

from api.extensions import database
from services import heartbeat

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive (no dependency is checked)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database answers at the newest migration and Redis answers."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "unavailable", "checks": checks}
    if checks["redis"] == "ok":
        body["alive"] = heartbeat.alive(_redis())
    return jsonify(body), 200 if ready else 503


@bp.get("/")
def home() -> Response:
    """The Studio is what a person opening the server's address wants."""
    return redirect("/studio/", code=302)  # type: ignore[return-value]


def _check_database() -> str:
    try:
        problem = database().schema_problem()
    except SQLAlchemyError as exc:
        return f"unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return problem or "ok"


def _check_redis() -> str:
    try:
        _redis().ping()
    except redis.RedisError as exc:
        return f"unavailable: {exc}"
    return "ok"


def _redis() -> redis.Redis:
    return current_app.extensions["assay_health_redis"]


def init_app(app: Flask) -> None:
    # The Redis the job queue uses (Celery's default when REDIS_URL is unset).
    url = app.config["ASSAY_SETTINGS"].redis_url or "redis://127.0.0.1:6379/0"
    app.extensions["assay_health_redis"] = heartbeat.client(url)
    app.register_blueprint(bp)
