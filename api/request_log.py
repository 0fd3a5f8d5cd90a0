"""Request ids and the access log: one line per answered request, with its id, route, status and time.

The id comes from the caller's `X-Request-ID` (a proxy's) or is made here, is bound for every line
logged while the request runs, and is sent back in `X-Request-ID`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from services import logs

access = logging.getLogger("assay.access")
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _begin(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    # A URL preprocessor of the app runs before authentication, so a refused request is logged too.
    g.request_started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _ACCEPTED_ID.fullmatch(given) else uuid.uuid4().hex
    logs.bind(request_id=g.request_id, project_id=(values or {}).get("project_id"))


def _finish(response: Response) -> Response:
    if "request_id" not in g:
        return response
    response.headers["X-Request-ID"] = g.request_id
    route = request.url_rule.rule if request.url_rule is not None else None
    access.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1),
            "remote_addr": request.remote_addr,
        },
    )
    return response


def _end(_exc: BaseException | None) -> None:
    logs.clear()


def init_app(app: Flask) -> None:
    app.url_value_preprocessor(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)
