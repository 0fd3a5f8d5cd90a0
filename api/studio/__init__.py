"""Studio: the web dashboard at /studio, server-rendered, with its own session login and CSRF checks.

Nothing is loaded from another host: templates, one stylesheet and one script are served from here,
and the Content-Security-Policy tells the browser to refuse anything else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, flash, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from api import errors
from api.studio import session as studio_session
from api.studio.views import bp, wants_page
from services import jobs
from services.errors import ServiceError
from services.settings import Settings
from services.states import TERMINAL_STATES

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "–"


def _headers(response: BaseResponse) -> BaseResponse:
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# Forms posted to the URL of their own page go back there when refused.
FORM_PAGES = {"studio.launch": "studio.launch_form", "studio.upload_collection": "studio.collections_list"}


def _service_error(exc: ServiceError) -> BaseResponse | tuple[str, int]:
    """A refused action goes back to its page with the reason; a page that cannot be shown says why."""
    experiment_id = (request.view_args or {}).get("experiment_id")
    if request.method == "POST" and wants_page():
        flash(exc.detail, "error")
        if request.endpoint in FORM_PAGES:
            return redirect(url_for(FORM_PAGES[request.endpoint]), 303)
        if experiment_id is not None and exc.status != 404:
            return redirect(url_for("studio.experiment_detail", experiment_id=experiment_id), 303)
        return redirect(url_for("studio.experiments_list"), 303)
    return render_template("studio/error.html", status=exc.status, message=exc.detail), exc.status


def _http_error(exc: HTTPException) -> tuple[str, int]:
    return render_template("studio/error.html", status=exc.code, message=exc.description), exc.code or 500


def _unrouted_error(exc: HTTPException) -> BaseResponse | tuple[str, int]:
    """A /studio URL that matched no route (or carries an id out of range) fails before its blueprint is
    known, so the app's handler sees it: a page there, the API's JSON body everywhere else."""
    if request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/"):
        return _headers(make_response(_http_error(exc)))
    return errors.http_error(exc)


def _context() -> dict[str, Any]:
    return {
        "csrf_token": studio_session.csrf_token,
        "active_states": jobs.ACTIVE_STATES,
        "terminal_states": [state.value for state in TERMINAL_STATES],
    }


bp.add_app_template_filter(percent, "percent")
bp.add_app_template_filter(when, "when")
bp.context_processor(_context)
bp.after_request(_headers)
bp.register_error_handler(ServiceError, _service_error)
bp.register_error_handler(HTTPException, _http_error)


def init_app(app: Flask, settings: Settings) -> None:
    """Mount the Studio at /studio with its session cookie settings."""
    studio_session.configure_cookie(app, settings)
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _unrouted_error)
