"""Studio login: a project key in, a signed HttpOnly cookie out holding a server-side session's token;
logout and the key's deletion end it everywhere; CSRF on every unsafe request; the REST API never
accepts that cookie."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from sqlalchemy import update

from api import create_app
from api.extensions import database
from cli.up import studio_secret
from models.orm import ApiKey, StudioSession, utcnow
from tests.conftest import ProjectHandle
from tests.studio.conftest import SECRET, Browser


def test_pages_need_a_login(studio_app: Flask) -> None:
    res = studio_app.test_client().get("/studio/experiments?status=running")
    assert res.status_code == 302
    assert res.headers["Location"].startswith("/studio/login?next=/studio/experiments")


def test_login_sets_a_secure_httponly_cookie_and_logout_ends_it(studio_app: Flask, project: ProjectHandle) -> None:
    b = Browser(studio_app.test_client())
    res = b.login(project.key)
    assert res.status_code == 303 and res.headers["Location"] == "/studio/experiments"
    cookie = next(h for h in res.headers.getlist("Set-Cookie") if h.startswith("assay_studio="))
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/studio"} <= {p.strip() for p in cookie.split(";")}
    assert project.key not in cookie
    page = b.get("/studio/experiments")
    assert page.status_code == 200 and "Log out" in page.get_data(as_text=True)
    assert b.post("/studio/logout").status_code == 303
    assert b.get("/studio/experiments").status_code == 302


def _copy_of_cookie(studio_app: Flask, browser: Browser) -> FlaskClient:
    cookie = browser.client.get_cookie("assay_studio", path="/studio")
    assert cookie is not None
    thief = studio_app.test_client()
    thief.set_cookie("assay_studio", cookie.value, path="/studio")
    return thief


def test_logout_ends_the_session_for_a_copied_cookie_too(studio_app: Flask, browser: Browser) -> None:
    copy = _copy_of_cookie(studio_app, browser)
    assert copy.get("/studio/experiments").status_code == 200
    assert browser.post("/studio/logout").status_code == 303
    res = copy.get("/studio/experiments")
    assert res.status_code == 302 and res.headers["Location"].startswith("/studio/login")


def test_a_session_ends_at_its_expiry_however_active(studio_app: Flask, browser: Browser) -> None:
    assert browser.get("/studio/experiments").status_code == 200
    assert not any(
        h.startswith("assay_studio=") for h in browser.get("/studio/templates").headers.getlist("Set-Cookie")
    )
    with studio_app.app_context(), database().session() as session:
        session.execute(update(StudioSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert browser.get("/studio/experiments").status_code == 302


def test_the_cookie_holds_only_a_random_token_and_the_csrf_token(studio_app: Flask, browser: Browser) -> None:
    cookie = browser.client.get_cookie("assay_studio", path="/studio")
    assert cookie is not None
    serializer = SecureCookieSessionInterface().get_signing_serializer(studio_app)
    assert serializer is not None
    assert set(serializer.loads(cookie.value)) - {"_permanent"} == {"sid", "csrf"}


def test_wrong_key_is_refused(studio_app: Flask, project: ProjectHandle) -> None:
    b = Browser(studio_app.test_client())
    res = b.login(project.key + "x")
    assert res.status_code == 401 and "not valid" in res.get_data(as_text=True)
    assert b.get("/studio/experiments").status_code == 302


def test_login_and_actions_without_the_csrf_token_are_forbidden(studio_app: Flask, project: ProjectHandle) -> None:
    client = studio_app.test_client()
    client.get("/studio/login")
    assert client.post("/studio/login", data={"api_key": project.key}).status_code == 403
    assert client.post("/studio/login", data={"api_key": project.key, "csrf_token": "forged"}).status_code == 403
    b = Browser(client)
    b.login(project.key)
    b.get("/studio/experiments")
    assert client.post("/studio/logout").status_code == 403
    assert client.post("/studio/logout", headers={"X-CSRF-Token": b.csrf}).status_code == 303


def test_the_csrf_token_changes_at_login(studio_app: Flask, project: ProjectHandle) -> None:
    b = Browser(studio_app.test_client())
    b.get("/studio/login")
    before = b.csrf
    b.post("/studio/login", {"api_key": project.key})
    b.get("/studio/experiments")
    assert b.csrf and b.csrf != before


def test_rest_api_ignores_the_studio_cookie(browser: Browser, project: ProjectHandle) -> None:
    cookie = browser.client.get_cookie("assay_studio", path="/studio")
    assert cookie is not None
    headers = {"Cookie": f"assay_studio={cookie.value}"}
    res = browser.client.get(f"/api/v0/projects/{project.id}/experiments", headers=headers)
    assert res.status_code == 401
    assert browser.client.get("/api/v0/projects", headers=headers).status_code == 401


def test_deleting_the_key_ends_its_sessions(studio_app: Flask, browser: Browser) -> None:
    assert browser.get("/studio/experiments").status_code == 200
    with studio_app.app_context():
        with database().session() as session:
            session.query(ApiKey).delete()
    assert browser.get("/studio/experiments").status_code == 302


def test_next_only_redirects_inside_the_studio(studio_app: Flask, project: ProjectHandle) -> None:
    b = Browser(studio_app.test_client())
    b.get("/studio/login")
    res = b.post("/studio/login", {"api_key": project.key, "next": "https://evil.example/"})
    assert res.headers["Location"] == "/studio/experiments"
    b.get("/studio/login")
    res = b.post("/studio/login", {"api_key": project.key, "next": "/studio/templates"})
    assert res.headers["Location"] == "/studio/templates"


def test_without_a_secret_key_login_is_refused_with_the_reason(app: Flask, project: ProjectHandle) -> None:
    client = app.test_client()
    res = client.get("/studio/login")
    assert res.status_code == 503 and "ASSAY_SECRET_KEY" in res.get_data(as_text=True)
    assert client.post("/studio/login", data={"api_key": project.key}).status_code == 503


def test_pages_forbid_foreign_resources_and_framing(browser: Browser) -> None:
    res = browser.get("/studio/experiments")
    csp = res.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    html = res.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html


def test_assay_up_keeps_one_private_signing_key(tmp_path: Path) -> None:
    first = studio_secret(tmp_path)
    assert len(first) >= 32 and studio_secret(tmp_path) == first
    assert (tmp_path / "studio_secret_key").stat().st_mode & 0o077 == 0


def test_secure_flag_can_be_turned_off_for_plain_http_deployments(
    database_url: str, fake_llm: object, project: ProjectHandle
) -> None:
    app = create_app(
        {"database_url": database_url, "auto_migrate": False, "secret_key": SECRET, "studio_secure_cookie": False}
    )
    try:
        res = Browser(app.test_client()).login(project.key)
        cookie = next(h for h in res.headers.getlist("Set-Cookie") if h.startswith("assay_studio="))
        assert "HttpOnly" in cookie and "Secure" not in cookie
    finally:
        app.extensions["assay_db"].dispose()
