"""One error body everywhere: `{"detail": "<a human sentence>"}` (plus keys some 409s need)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from services.errors import ServiceError

log = logging.getLogger(__name__)


def error_response(status: int, detail: Any, **extra: Any) -> Response:
    body = {"detail": detail, **extra}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def describe_validation_error(exc: ValidationError, where: str = "body") -> str:
    """One sentence per problem, each naming the field, e.g. `body.name: Field required`."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in (where, *err["loc"]))
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _service_error(exc: ServiceError) -> Response:
    return error_response(exc.status, exc.detail, **exc.extra)


def _validation_error(exc: ValidationError) -> Response:
    return error_response(422, describe_validation_error(exc))


def http_error(exc: HTTPException) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        return error_response(413, "Request body is larger than the limit of this server (ASSAY_MAX_REQUEST_BYTES)")
    return error_response(exc.code or 500, exc.description or exc.name)


def _integrity_error(exc: IntegrityError) -> Response:
    # Two requests raced past a uniqueness check; the loser gets the same 409 the check would give.
    log.info("integrity error: %s", exc.orig)
    return error_response(409, "A conflicting row was written at the same time; repeat the request")


def _database_down(exc: Exception) -> Response:
    log.warning("database unavailable: %s", exc)
    return error_response(503, "The database is unavailable; nothing was written. Try again.")


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "Internal server error")


def init_app(app: Flask) -> None:
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(OperationalError, _database_down)
    app.register_error_handler(PoolTimeout, _database_down)
    app.register_error_handler(Exception, _unexpected)
