"""The served OpenAPI document: valid, generated from the request models in validation mode, every
status an operation answers documented, tagged; Swagger UI served from the package's own files."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from openapi_spec_validator import validate

from tests.conftest import ProjectHandle


def _spec(client: FlaskClient) -> dict[str, Any]:
    return client.get("/api/v0/openapi.json").get_json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_the_spec_validates(client: FlaskClient) -> None:
    validate(_spec(client))


def test_every_parameter_has_a_schema_and_every_operation_a_tag_and_an_id(client: FlaskClient) -> None:
    spec = _spec(client)
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    for path, method, op in _operations(spec):
        assert op["tags"] and op["tags"][0] in {t["name"] for t in spec["tags"]}, (path, method)
        assert all("schema" in p for p in op["parameters"]), (path, method)
    responses = spec["paths"]["/api/v0/projects/{project_id}/responses"]["get"]["parameters"]
    ids_param = next(p for p in responses if p["name"] == "response_ids")
    assert "array" in str(ids_param["schema"])


def test_request_bodies_are_in_validation_mode(client: FlaskClient) -> None:
    spec = _spec(client)
    body = spec["paths"]["/api/v0/projects/{project_id}/collections"]["post"]["requestBody"]
    schema = spec["components"]["schemas"][body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["required"] == ["name"]  # fields with defaults are optional to send
    metadata = spec["components"]["schemas"]["ResponseMetadata"]["properties"]["duration_seconds"]
    assert "number" in str(metadata)


def test_statuses_operations_answer_are_documented(client: FlaskClient) -> None:
    spec = _spec(client)
    create_project = spec["paths"]["/api/v0/projects"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409", "413", "422", "429", "503"} <= set(create_project)
    for path, method, op in _operations(spec):
        assert {"404", "422", "429", "503"} <= set(op["responses"]), (path, method)
        assert "Retry-After" in op["responses"]["429"]["headers"]
        if method != "get":
            assert "413" in op["responses"], (path, method)
    assert "401" not in spec["paths"]["/api/v0/version/compatible"]["post"]["responses"]
    assert spec["paths"]["/api/v0/version/compatible"]["post"]["security"] == []
    assert "502" in spec["paths"]["/api/v0/projects/{project_id}/criteria"]["post"]["responses"]


def test_a_project_key_creating_a_project_is_the_documented_403(project: ProjectHandle) -> None:
    res = project.client.post("/api/v0/projects", json={"name": "X"}, headers=project.headers)
    assert res.status_code == 403 and "organization token" in res.get_json()["detail"]


def test_swagger_ui_is_served_from_the_package(client: FlaskClient) -> None:
    page = client.get("/api/v0/docs", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "/api/v0/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/api/v0/docs/") for a in assets), assets  # no other host
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert b"SwaggerUIBundle" in client.get("/api/v0/docs/swagger-ui-bundle.js").data
