"""Throttling with Flask-Limiter (counters in Redis, shared by every API process).

- Failed authentications per client address (API keys, bearer tokens, Studio logins): past
  `ASSAY_AUTH_FAILURE_LIMIT` the address gets 429 with Retry-After until the window ends, whatever
  credentials it sends, so keys cannot be guessed at speed.
- Requests per credential (`ASSAY_RATE_LIMIT`, per API key or token): 429 with Retry-After past it.

Without Redis (tests, a single process) the counters are in memory. Should Redis fail, requests are
let through (logged) rather than refused.
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse

from api.errors import error_response
from services.errors import ServiceError
from services.settings import Settings

log = logging.getLogger(__name__)
FAILURES = "auth-failures"


class Throttled(ServiceError):
    status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def _limiter() -> Limiter:
    return current_app.extensions["assay_limiter"]


def _failure_limit() -> RateLimitItem | None:
    text = current_app.config["ASSAY_SETTINGS"].auth_failure_limit
    return parse(text) if text else None


def credential_key() -> str:
    """What the request rate is counted by: a hash of the credential sent, else the client address."""
    sent = request.headers.get("X-API-Key") or request.headers.get("Authorization") or ""
    return "cred:" + hashlib.sha256(sent.encode()).hexdigest()[:32] if sent else f"addr:{request.remote_addr}"


def check_auth_failures() -> None:
    """429 while this client address is over its limit of failed authentications."""
    item = _failure_limit()
    if item is None:
        return
    counter, address = _limiter().limiter, request.remote_addr or ""
    try:
        allowed = counter.test(item, FAILURES, address)
        reset_at = None if allowed else counter.get_window_stats(item, FAILURES, address)[0]
    except Exception:  # noqa: BLE001 - the counter store is down: let the request through
        log.warning("rate-limit storage unavailable; failed authentications are not counted", exc_info=True)
        return
    if reset_at is not None:
        retry = max(1, int(reset_at - time.time()) + 1)
        raise Throttled(f"Too many failed authentications from this address; retry in {retry} s", retry)


def record_auth_failure() -> None:
    """Count one failed authentication against this client address."""
    item = _failure_limit()
    if item is None:
        return
    try:
        _limiter().limiter.hit(item, FAILURES, request.remote_addr or "")
    except Exception:  # noqa: BLE001
        log.warning("rate-limit storage unavailable; a failed authentication was not counted", exc_info=True)


def _throttled(exc: Throttled) -> Response:
    response = error_response(429, exc.detail)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _rate_limited(exc: RateLimitExceeded) -> Response:
    # Flask-Limiter's after_request hook adds Retry-After and the X-RateLimit-* headers.
    return error_response(429, f"Rate limit exceeded ({exc.description} per API key; ASSAY_RATE_LIMIT)")


def _exempt() -> bool:
    return not request.path.startswith("/api/") or request.endpoint in {"openapi.spec", "openapi.docs", "docs.show"}


def init_app(app: Flask, settings: Settings) -> None:
    limiter = Limiter(
        credential_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        default_limits=[settings.rate_limit] if settings.rate_limit else [],
        default_limits_exempt_when=_exempt,
        headers_enabled=True,
        swallow_errors=True,
        key_prefix="assay-limits",
    )
    app.extensions["assay_limiter"] = limiter
    app.register_error_handler(Throttled, _throttled)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
