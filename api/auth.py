"""Credentials: `X-API-Key` (one project) or `Authorization: Bearer <org token>` (an organization)."""

from __future__ import annotations

from flask import Flask, g, request

from api import throttle
from api.extensions import db_session
from services import auth as auth_service
from services.auth import Principal
from services.errors import ServiceError

PUBLIC_ENDPOINTS = {"meta.version_compatible", "openapi.spec", "openapi.docs", "docs.show", "static"}


class Unauthorized(ServiceError):
    status = 401


def _authenticate() -> Principal:
    throttle.check_auth_failures()
    principal = _principal()
    if principal is None:
        throttle.record_auth_failure()
        raise Unauthorized("Invalid API key or token")
    return principal


def _principal() -> Principal | None:
    key = request.headers.get("X-API-Key")
    session = db_session()
    if key:
        principal = auth_service.principal_for_key(session, key)
    else:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        principal = auth_service.principal_for_token(session, token.strip()) if scheme.lower() == "bearer" else None
        if not scheme:
            raise Unauthorized("Missing credentials: send X-API-Key or Authorization: Bearer <token>")
    return principal


def _before_request() -> None:
    # A project-scoped route has authenticated already (`bind_project` runs first): once per request.
    if request.endpoint in PUBLIC_ENDPOINTS or not request.path.startswith("/api/") or "principal" in g:
        return
    g.principal = _authenticate()


def current_principal() -> Principal:
    return g.principal


def current_project_id() -> int:
    """The project of a project-scoped route, already checked against the caller's credentials."""
    return g.project_id


def bind_project(_endpoint: str | None, values: dict | None) -> None:
    """URL preprocessor for `/api/v0/projects/<project_id>/...`: a foreign project is a 404."""
    if values is None or "project_id" not in values:
        return
    project_id = values.pop("project_id")
    if "principal" not in g:
        g.principal = _authenticate()
    auth_service.get_visible_project(db_session(), g.principal, project_id)
    g.project_id = project_id


def init_app(app: Flask) -> None:
    app.before_request(_before_request)
