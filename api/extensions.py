"""Per-app objects (the database) and the per-request session."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from models.db import Database
from services.settings import Settings


def init_db(app: Flask, settings: Settings) -> None:
    database = Database(settings.database_url, settings.sqlite_busy_timeout_ms)
    if settings.auto_migrate:
        database.migrate()
    app.extensions["assay_db"] = database
    app.teardown_appcontext(_close_session)


def database() -> Database:
    return current_app.extensions["assay_db"]


def settings() -> Settings:
    return current_app.config["ASSAY_SETTINGS"]


def db_session() -> Session:
    """The request's one session; the view wrapper commits it once, teardown closes it."""
    if "db_session" not in g:
        g.db_session = database().sessionmaker()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
