"""Throttling: failed authentications per client address end in 429 with Retry-After (API keys, bearer
tokens, Studio logins), and a configurable request rate per API key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from api import create_app
from tests.conftest import make_project
from tests.studio.conftest import Browser

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(database_url: str) -> Iterator[AppFactory]:
    apps: list[Flask] = []

    def make(**config: Any) -> Flask:
        settings = {"database_url": database_url, "auto_migrate": False, "secret_key": "s" * 40, **config}
        apps.append(create_app({"studio_secure_cookie": False, **settings}))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["assay_db"].dispose()


def _retry_after(res: Any) -> int:
    assert res.status_code == 429, res.get_data(as_text=True)
    assert "Too many failed authentications" in res.get_data(as_text=True)
    return int(res.headers["Retry-After"])


@pytest.mark.parametrize(
    "bad", [{"X-API-Key": "ak_wrong"}, {"Authorization": "Bearer ot_wrong"}], ids=["api-key", "bearer"]
)
def test_failed_authentications_end_in_429_even_for_a_valid_key(make_app: AppFactory, bad: dict) -> None:
    app = make_app(auth_failure_limit="5/minute")
    project = make_project(app, "P")
    client = app.test_client()
    statuses = [client.get("/api/v0/projects", headers=bad).status_code for _ in range(5)]
    assert statuses == [401] * 5
    assert 1 <= _retry_after(client.get("/api/v0/projects", headers=bad)) <= 60
    # The address is locked out, whatever it sends, until the window ends.
    assert 1 <= _retry_after(client.get(project.url("collections"), headers=project.headers)) <= 60


def test_another_address_is_not_affected(make_app: AppFactory) -> None:
    app = make_app(auth_failure_limit="2/minute")
    project = make_project(app, "P")
    client = app.test_client()
    for _ in range(3):
        client.get("/api/v0/projects", headers={"X-API-Key": "nope"})
    other = {"REMOTE_ADDR": "127.0.0.9"}
    assert client.get("/api/v0/projects", headers=project.headers, environ_overrides=other).status_code == 200


def test_studio_logins_are_throttled(make_app: AppFactory) -> None:
    app = make_app(auth_failure_limit="3/minute")
    browser = Browser(app.test_client())
    assert [browser.login(f"wrong-{i}").status_code for i in range(3)] == [401, 401, 401]
    _retry_after(browser.login(make_project(app, "P").key))


def test_valid_requests_do_not_count_as_failures(make_app: AppFactory) -> None:
    app = make_app(auth_failure_limit="2/minute")
    project = make_project(app, "P")
    assert all(project.get("collections").status_code == 200 for _ in range(6))


def test_the_request_rate_per_key_is_limited(make_app: AppFactory) -> None:
    app = make_app(rate_limit="4/minute")
    project, other = make_project(app, "P"), make_project(app, "Q")
    assert [project.get("collections").status_code for _ in range(4)] == [200] * 4
    res = project.get("collections")
    assert res.status_code == 429 and "Rate limit exceeded" in res.get_json()["detail"]
    assert int(res.headers["Retry-After"]) >= 1
    assert other.get("collections").status_code == 200  # counted per key
    assert app.test_client().get("/api/v0/openapi.json").status_code == 200  # the spec is not limited


def test_no_rate_limit_when_it_is_off(make_app: AppFactory) -> None:
    project = make_project(make_app(rate_limit=""), "P")
    assert all(project.get("collections").status_code == 200 for _ in range(30))
