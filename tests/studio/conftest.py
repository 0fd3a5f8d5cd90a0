"""Studio fixtures: the app with a signing key, a logged-in browser-like client, seeded experiments."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from api.extensions import database
from models.db import Database
from models.orm import PromptResponse, Rating
from services.synthetic import Seeded, seed_experiment
from tests.conftest import ProjectHandle

SECRET = "studio-test-secret-0123456789abcdef"


@pytest.fixture
def studio_app(app: Flask) -> Flask:
    settings = app.config["ASSAY_SETTINGS"].merged({"secret_key": SECRET})
    app.config.update(ASSAY_SETTINGS=settings, SECRET_KEY=SECRET)
    return app


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@dataclass
class Browser:
    """A test client that keeps the Studio cookie and knows the page's CSRF token."""

    client: FlaskClient
    csrf: str = ""

    def get(self, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        res = self.client.get(path, **kwargs)
        if 'name="csrf_token"' in res.get_data(as_text=True):
            self.csrf = csrf_of(res.get_data(as_text=True))
        return res

    def post(self, path: str, data: dict | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)

    def login(self, key: str):  # type: ignore[no-untyped-def]
        self.get("/studio/login")
        return self.post("/studio/login", {"api_key": key})


@pytest.fixture
def browser(studio_app: Flask, project: ProjectHandle) -> Browser:
    b = Browser(studio_app.test_client())
    assert b.login(project.key).status_code == 303
    b.get("/studio/experiments")  # the token issued at login
    return b


def seed(
    app: Flask, project_id: int, name: str, n: int, n_criteria: int = 3, entries: list[int] | None = None
) -> Seeded:
    database: Database = app.extensions["assay_db"]
    with database.session() as session:
        return seed_experiment(session, project_id, name, n, n_criteria, entries=entries)


Pattern = Callable[[int, int], bool]  # (case index, criterion index) -> passes


def set_verdicts(app: Flask, experiment_id: int, passes: Pattern) -> None:
    """Every response of the experiment rated by `passes`, no failed ratings."""
    with app.app_context(), database().session() as session:
        responses = session.scalars(
            select(PromptResponse.id).where(PromptResponse.experiment_id == experiment_id).order_by(PromptResponse.id)
        ).all()
        for i, response_id in enumerate(responses):
            ratings = session.scalars(select(Rating).where(Rating.response_id == response_id).order_by(Rating.id))
            for k, rating in enumerate(ratings):
                rating.rating, rating.error = ("YES" if passes(i, k) else "NO"), None


def baseline(i: int, k: int) -> bool:
    return i >= 4 if k == 0 else i >= 24  # criterion 1: 40/44 (91%), criterion 2: 20/44


def candidate(i: int, k: int) -> bool:
    return i >= 2 if k == 0 else i >= 4  # criterion 1: 42/44 (95%), criterion 2: 40/44


def two_experiments(app: Flask, project: ProjectHandle) -> tuple[int, int]:
    """44 matched cases, two criteria: on the first B goes 91% -> 95% (noise), on the second 45% -> 91%."""
    a = seed(app, project.id, "Baseline", 44, n_criteria=2)
    b = seed(app, project.id, "Candidate", 44, n_criteria=2, entries=a.entry_ids)
    set_verdicts(app, a.experiment_id, baseline)
    set_verdicts(app, b.experiment_id, candidate)
    return a.experiment_id, b.experiment_id
