"""`create_app(config=None)`: settings, database, error handlers and blueprints, nothing at import time."""

from __future__ import annotations

from typing import Any

from flask import Flask

from api import auth, errors, health, metrics, openapi, request_log, studio, throttle
from api.extensions import init_db, init_queue
from api.resources import register_resources
from api.routing import IdConverter
from services import crypto
from services.settings import load_settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the API. `config` overrides settings (defaults -> environment -> config)."""
    settings = load_settings(config)
    app = Flask(__name__)
    app.config["ASSAY_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["SECRET_KEY"] = settings.secret_key
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["int"] = IdConverter  # before any blueprint adds a rule with it
    crypto.configure(settings)  # provider keys are encrypted with this app's keys (migrations too)
    init_db(app, settings)
    init_queue(app, settings)
    errors.init_app(app)
    request_log.init_app(app)
    metrics.init_app(app)
    health.init_app(app)
    auth.init_app(app)
    throttle.init_app(app, settings)
    register_resources(app)
    openapi.init_app(app)
    studio.init_app(app, settings)
    return app
