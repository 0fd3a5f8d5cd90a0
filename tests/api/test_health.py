"""Probes and metrics an operator calls without credentials: /healthz, /readyz, /metrics, and `/`."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from cli.up import free_port
from tests.conftest import ProjectHandle
from tests.metrics_text import sample_sum


def test_healthz_answers_without_credentials(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database_and_a_live_redis(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["checks"] == {"database": "ok", "redis": "ok"}
    assert set(response.json["alive"]) >= {"worker", "sweeper"}


def test_readyz_is_503_naming_redis_when_redis_does_not_answer(app: Flask) -> None:
    settings = app.config["ASSAY_SETTINGS"]
    other = create_app({"database_url": settings.database_url, "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    response = other.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("unavailable")
    other.extensions["assay_db"].dispose()


def test_readyz_is_503_until_the_schema_is_migrated(tmp_path: Path) -> None:
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'fresh.db'}", "auto_migrate": False})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"].endswith("run `assay migrate`")
    app.extensions["assay_db"].migrate()
    assert app.test_client().get("/readyz").status_code == 200
    app.extensions["assay_db"].dispose()


def test_root_redirects_to_the_studio(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/studio/")


def test_metrics_count_requests_by_route_and_status_and_show_jobs(client: FlaskClient, project: ProjectHandle) -> None:
    route = "/api/v0/projects/<int:project_id>/prompt_templates"
    before = _sample(client, "assay_http_requests_total", method="GET", route=route, status="200")
    for _ in range(3):
        assert project.get("prompt_templates").status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert sample_sum(text, "assay_http_requests_total", method="GET", route=route, status="200") == before + 3
    assert "assay_http_request_duration_seconds_bucket" in text
    assert "assay_free_chunks 0.0" in text
    assert "assay_queue_depth" in text


def _sample(client: FlaskClient, name: str, **labels: str) -> float:
    return sample_sum(client.get("/metrics").get_data(as_text=True), name, **labels)


def test_every_answer_carries_a_request_id_and_keeps_a_proxys(client: FlaskClient) -> None:
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]
    assert client.get("/nowhere", headers={"X-Request-ID": "lb-42"}).headers["X-Request-ID"] == "lb-42"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id;"}).headers["X-Request-ID"] != "bad id;"
