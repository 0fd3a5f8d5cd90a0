"""The OpenAPI 3.1 document, generated from the pydantic models registered by `api.routing.endpoint`
(request bodies and query parameters in validation mode, responses in serialization mode), and
Swagger UI at /api/v0/docs from flask-swagger-ui's own files (nothing is loaded from another host)."""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any

from flask import Blueprint, Flask, Response, redirect
from flask_swagger_ui import get_swaggerui_blueprint
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from api.routing import ENDPOINTS, EndpointSpec
from models.schemas.common import MAX_ID, ErrorBody

bp = Blueprint("openapi", __name__, url_prefix="/api/v0")
DOCS_URL = "/api/v0/docs"
SPEC_URL = "/api/v0/openapi.json"
PUBLIC_OPERATIONS = {("meta", "/version/compatible")}

ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}  # api.routing.IdConverter: 404 outside
# Task ids that are not UUIDs are a 404 as well.
TASK_ID_SCHEMA = {"type": "string", "maxLength": 100}
ERROR_TEXTS = {
    400: "Malformed JSON",
    401: "Missing or invalid credentials",
    403: "Not allowed with these credentials",
    404: "Not found (also another project's ids)",
    409: "Conflict",
    413: "Request body too large (ASSAY_MAX_REQUEST_BYTES)",
    422: "Validation error naming the field",
    429: "Throttled: too many failed authentications or requests (see Retry-After)",
    502: "The model could not produce a usable answer; nothing was written",
    503: "Database unavailable; nothing was written",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


def _path_of(spec: EndpointSpec) -> str:
    prefix = spec.blueprint.url_prefix or ""
    if spec.blueprint.name != "meta":
        prefix = "/api/v0/projects/<int:project_id>" + prefix
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + spec.rule)


def _schema_ref(tp: Any, defs: dict[str, Any], mode: str) -> dict[str, Any]:
    """The type's schema; a model becomes a named component and is referenced (`NameInput` should a model
    be both a request and a response whose two schemas differ)."""
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    defs.update(schema.pop("$defs", {}))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        name = tp.__name__
        if mode == "validation" and defs.get(name, schema) != schema:
            name += "Input"
        defs[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}
    return schema


def _path_params(spec: EndpointSpec) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "path", "required": True, "schema": TASK_ID_SCHEMA if n == "task_id" else ID_SCHEMA}
        for n in re.findall(r"{(\w+)}", _path_of(spec))
    ]


def _query_params(spec: EndpointSpec, defs: dict[str, Any]) -> list[dict[str, Any]]:
    if spec.query is None:
        return []
    schema = spec.query.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("description"):
            param["description"] = prop["description"]
        params.append(param)
    return params


def _error_statuses(spec: EndpointSpec) -> list[int]:
    """What the operation can answer besides success: the shared checks, then what its kind adds."""
    statuses = {404, 422, 429, 503}
    if (spec.blueprint.name, spec.rule) not in PUBLIC_OPERATIONS:
        statuses.add(401)
    if spec.method != "GET":
        statuses |= {400, 409, 413}
    return sorted(statuses | set(spec.errors))


def _responses(spec: EndpointSpec, defs: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "Success"}
    if spec.response is not None:
        schema = _schema_ref(spec.response, defs, "serialization")
        ok["content"] = {media: {"schema": schema} for media in (spec.content_type, *spec.other_content_types)}
    responses = {str(spec.status if spec.response is not None else 204): ok}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for code in _error_statuses(spec):
        responses[str(code)] = {"description": ERROR_TEXTS[code], **error}
    responses["429"]["headers"] = RETRY_AFTER
    return responses


def _operation(spec: EndpointSpec, defs: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [spec.blueprint.name],
        "summary": spec.summary.split("\n", 1)[0],
        "description": spec.summary,
        "operationId": f"{spec.blueprint.name}_{spec.view_name}",
        "parameters": _path_params(spec) + _query_params(spec, defs),
        "responses": _responses(spec, defs),
    }
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(spec.body, defs, "validation")}},
        }
    if (spec.blueprint.name, spec.rule) in PUBLIC_OPERATIONS:
        op["security"] = []
    return op


def _component_name(name: str) -> str:
    """OpenAPI allows only [a-zA-Z0-9._-] in component names: `Page[EntryOut]` becomes `Page_EntryOut`."""
    return re.sub(r"[^a-zA-Z0-9._-]+", "_", name).strip("_")


def _renamed_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (REF_PREFIX + _component_name(v[len(REF_PREFIX) :]) if k == "$ref" else _renamed_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_renamed_refs(v) for v in node]
    return node


REF_PREFIX = "#/components/schemas/"


@functools.cache
def build_spec() -> dict[str, Any]:
    """The document (built once per process: the registered endpoints do not change)."""
    defs: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for spec in ENDPOINTS:
        paths.setdefault(_path_of(spec), {})[spec.method.lower()] = _operation(spec, defs)
    _, error_defs = models_json_schema([(ErrorBody, "serialization")], ref_template="#/components/schemas/{model}")
    defs.update(error_defs.get("$defs", {}))
    defs = {_component_name(name): schema for name, schema in defs.items()}
    return _renamed_refs(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "Assay",
                "version": "0.1.0",
                "description": "Self-hosted LLM evaluation backend speaking the elluminate REST API. Errors are "
                '`{"detail": "..."}`.',
            },
            "tags": sorted(({"name": tag} for tag in {s.blueprint.name for s in ENDPOINTS}), key=lambda t: t["name"]),
            "paths": paths,
            "components": {
                "schemas": defs,
                "securitySchemes": {
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                    "bearer": {"type": "http", "scheme": "bearer"},
                },
            },
            "security": [{"apiKey": []}, {"bearer": []}],
        }
    )


@functools.cache
def _spec_json() -> bytes:
    return json.dumps(build_spec()).encode()


_building = threading.Lock()


@bp.get("/openapi.json")
def spec() -> Response:
    with _building:  # requests that arrive during the first build wait for it rather than each building one
        body = _spec_json()
    return Response(body, mimetype="application/json")


@bp.get("/docs")
def docs() -> Response:
    return redirect(f"{DOCS_URL}/", 308)  # type: ignore[return-value]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    swagger = get_swaggerui_blueprint(DOCS_URL, SPEC_URL, config={"app_name": "Assay API"}, blueprint_name="docs")
    app.register_blueprint(swagger)
