"""Version check, projects, organization tokens, error bodies and the OpenAPI document."""

from __future__ import annotations

from flask import Flask

from models.db import Database
from services import auth as auth_service
from tests.conftest import ProjectHandle


def _token(app: Flask) -> str:
    database: Database = app.extensions["assay_db"]
    with database.session() as session:
        return auth_service.create_org_token(session, auth_service.default_organization(session).id)


def test_version_check_needs_no_credentials(project: ProjectHandle) -> None:
    res = project.client.post("/api/v0/version/compatible", json={"current_sdk_version": "1.5.2"})
    assert res.status_code == 200 and res.get_json()["is_compatible"] is True


def test_bearer_token_sees_every_project_of_its_organization(
    app: Flask, project: ProjectHandle, other_project: ProjectHandle
) -> None:
    headers = {"Authorization": f"Bearer {_token(app)}"}
    listed = project.client.get("/api/v0/projects", headers=headers).get_json()
    assert [p["id"] for p in listed["items"]] == [project.id, other_project.id]
    res = project.client.get(f"/api/v0/projects/{other_project.id}/collections", headers=headers)
    assert res.status_code == 200
    created = project.client.post("/api/v0/projects", json={"name": "New"}, headers=headers)
    assert created.status_code == 201 and created.get_json()["name"] == "New"
    assert project.client.post("/api/v0/projects", json={"name": "New"}, headers=headers).status_code == 409


def test_a_project_key_cannot_create_projects(project: ProjectHandle) -> None:
    res = project.client.post("/api/v0/projects", json={"name": "X"}, headers=project.headers)
    assert res.status_code == 403 and "organization token" in res.get_json()["detail"]


def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(project: ProjectHandle) -> None:
    cases = [
        ("collections", {"name": "C", "collection_type": "WEIRD"}, "body.collection_type"),
        ("experiments", {"name": "E", "collection_id": "one"}, "body.collection_id"),
        ("llm_configs", {"name": "L", "llm_model_name": "m", "temperature": 5}, "body.temperature"),
        ("criterion_sets", {"criteria": []}, "body.name"),
    ]
    for path, body, field in cases:
        res = project.post(path, json=body)
        assert res.status_code == 422, (path, res.get_json())
        assert field in res.get_json()["detail"]
    for path in ("collections", "experiments", "llm_configs", "criterion_sets"):
        assert project.get(path).get_json()["count"] == 0
    assert project.post("collections", json=["not", "an", "object"]).status_code == 422
    assert project.get("experiments/424242").status_code == 404
    assert project.get("collections", query_string={"page": 0}).status_code == 422


def test_oversize_bodies_are_413(app: Flask, project: ProjectHandle) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1000
    res = project.post("prompt_templates", json={"name": "x" * 2000, "messages": []})
    assert res.status_code == 413 and "ASSAY_MAX_REQUEST_BYTES" in res.get_json()["detail"]


def test_openapi_documents_every_route_with_its_schemas(app: Flask, project: ProjectHandle) -> None:
    spec = project.client.get("/api/v0/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v0/") or rule.endpoint.startswith(("openapi.", "docs.")):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    schemas = spec["components"]["schemas"]
    assert {"PromptTemplateCreate", "ExperimentOut", "ErrorBody"} <= set(schemas)
    create = spec["paths"]["/api/v0/projects/{project_id}/prompt_templates"]["post"]
    assert create["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    stream = spec["paths"]["/api/v0/projects/{project_id}/experiments/{experiment_id}/generation/{task_id}/stream"]
    assert "text/event-stream" in stream["get"]["responses"]["200"]["content"]
    docs = project.client.get("/api/v0/docs", follow_redirects=True)
    assert docs.status_code == 200 and "openapi.json" in docs.get_data(as_text=True)
