"""Studio sessions: log in with a project API key; a server-side session row, found by a random token
kept in Flask's signed HttpOnly cookie.

The raw key is never stored. Every request checks the row is there and unexpired, so logging out
(which deletes it) ends the session even for a copy of the cookie, and deleting the key ends its
sessions (the rows cascade). A session lasts SESSION_LIFETIME from login and is never extended.
Every unsafe request carries the session's CSRF token (a form field or the `X-CSRF-Token` header);
the login form has one too, issued before anyone is logged in."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from flask import Flask, abort, g, request, session
from flask.sessions import NullSession

from api.extensions import db_session
from services import auth as auth_service
from services.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_LIFETIME = timedelta(hours=12)
# Values that are public (examples, old defaults): signing with them would let anyone forge a session.
PLACEHOLDER_SECRETS = frozenset({"change-me", "dev-only-change-me", "changeme", "secret"})
MIN_SECRET_LENGTH = 16


def secret_problem(settings: Settings) -> str | None:
    """Why the Studio cannot sign sessions, or None when it can."""
    key = settings.secret_key or ""
    if key and key not in PLACEHOLDER_SECRETS and len(key) >= MIN_SECRET_LENGTH:
        return None
    return (
        "The Studio needs ASSAY_SECRET_KEY: a long random value, the same on every API process "
        "(for example the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'). "
        "Set it and restart the API."
    )


def configure_cookie(app: Flask, settings: Settings) -> None:
    """Only the Studio uses the session, so its cookie is scoped to /studio and never sent to /api."""
    app.config.update(
        SESSION_COOKIE_NAME="assay_studio",
        SESSION_COOKIE_PATH="/studio",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.studio_secure_cookie,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,  # the server row's expiry is absolute; so is the cookie's
    )


def csrf_token() -> str:
    """The session's CSRF token, created on first use (also before login, for the login form)."""
    if isinstance(session, NullSession):  # no signing key: the pages that say so carry no form
        return ""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """403 for an unsafe request whose token is missing or is not this session's."""
    if request.method in SAFE_METHODS:
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not (sent and expected and hmac.compare_digest(sent, expected)):
        abort(403, "The form expired or did not come from the Studio (CSRF check failed); reload the page.")


def log_in(key: str) -> bool:
    """Start a session for the project of `key`; a fresh session and token so none can be planted."""
    api_key = auth_service.api_key_for(db_session(), key.strip())
    if api_key is None:
        return False
    session.clear()
    session.permanent = True
    token = auth_service.start_studio_session(db_session(), api_key, SESSION_LIFETIME)
    session.update(sid=token, csrf=secrets.token_urlsafe(32))
    return True


def log_out() -> None:
    """End the session on the server too, so a copy of the cookie is worth nothing."""
    if isinstance(token := session.get("sid"), str):
        auth_service.end_studio_session(db_session(), token)
    session.clear()


def load_project() -> int | None:
    """The logged-in project, after checking the session is live on the server; None when logged out."""
    token = session.get("sid")
    project_id = auth_service.studio_session_project(db_session(), token) if isinstance(token, str) else None
    if project_id is None:
        session.clear()
        return None
    g.studio_project_id = project_id
    return project_id


def project_id() -> int:
    """The logged-in project of this request (set by the blueprint's guard)."""
    return g.studio_project_id
