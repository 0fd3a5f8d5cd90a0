"""The OpenAPI document, generated from the pydantic models registered by `api.routing.endpoint`."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response, jsonify
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from api.routing import ENDPOINTS, EndpointSpec
from models.schemas.common import MAX_ID, ErrorBody

bp = Blueprint("openapi", __name__, url_prefix="/api/v0")

DOCS_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Assay API</title>
<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em}
code{background:#f3f3f3;padding:1px 4px}h2{margin-top:2em}.op{border-top:1px solid #ddd;padding:.5em 0}
.m{display:inline-block;min-width:4em;font-weight:bold}</style></head><body>
<h1>Assay REST API</h1><p>Machine-readable spec: <a href="openapi.json">openapi.json</a>.
Authenticate with <code>X-API-Key</code> or <code>Authorization: Bearer &lt;token&gt;</code>.
Errors are <code>{"detail": "..."}</code>.</p><div id="ops">Loading...</div>
<script>
fetch('openapi.json').then(r=>r.json()).then(spec=>{const out=[];
for(const [path,ops] of Object.entries(spec.paths)){for(const [m,op] of Object.entries(ops)){
const e=s=>s.replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
out.push('<div class="op"><span class="m">'+m.toUpperCase()+'</span><code>'+e(path)+'</code>'
  +'<div>'+e(op.summary||'')+'</div></div>');}}
document.getElementById('ops').innerHTML=out.join('');});
</script></body></html>"""

ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}  # api.routing.IdConverter: 404 outside
ERROR_STATUSES = {
    "400": "Malformed JSON",
    "401": "Missing or invalid credentials",
    "404": "Not found",
    "409": "Conflict",
    "422": "Validation error naming the field",
    "503": "Database unavailable",
}


def _path_of(spec: EndpointSpec) -> str:
    prefix = spec.blueprint.url_prefix or ""
    if spec.blueprint.name != "meta":
        prefix = "/api/v0/projects/<int:project_id>" + prefix
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + spec.rule)


def _schema_ref(tp: Any, defs: dict[str, Any], mode: str = "serialization") -> dict[str, Any]:
    """The type's schema; a model becomes a named component and is referenced."""
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    defs.update(schema.pop("$defs", {}))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        defs[tp.__name__] = schema
        return {"$ref": f"#/components/schemas/{tp.__name__}"}
    return schema


def _operation(spec: EndpointSpec, defs: dict[str, Any]) -> dict[str, Any]:
    params = [
        {"name": n, "in": "path", "required": True, "schema": ID_SCHEMA if n != "task_id" else {"type": "string"}}
        for n in re.findall(r"{(\w+)}", _path_of(spec))
    ]
    if spec.query is not None:
        for name, field in spec.query.model_fields.items():
            params.append(
                {"name": name, "in": "query", "required": field.is_required(), "description": field.description or ""}
            )
    op: dict[str, Any] = {
        "summary": spec.summary,
        "operationId": f"{spec.blueprint.name}_{spec.rule}_{spec.method}",
        "parameters": params,
        "responses": {},
    }
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(spec.body, defs)}},
        }
    ok: dict[str, Any] = {"description": "Success"}
    if spec.response is not None:
        schema = _schema_ref(spec.response, defs)
        ok["content"] = {media: {"schema": schema} for media in (spec.content_type, *spec.other_content_types)}
    op["responses"][str(spec.status if spec.response is not None else 204)] = ok
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for code, text in ERROR_STATUSES.items():
        op["responses"][code] = {"description": text, **error}
    return op


def build_spec() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for spec in ENDPOINTS:
        paths.setdefault(_path_of(spec), {})[spec.method.lower()] = _operation(spec, defs)
    _, error_defs = models_json_schema([(ErrorBody, "serialization")], ref_template="#/components/schemas/{model}")
    defs.update(error_defs.get("$defs", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Assay",
            "version": "0.1.0",
            "description": "Self-hosted LLM evaluation backend speaking the elluminate REST API",
        },
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


@bp.get("/openapi.json")
def spec() -> Response:
    return jsonify(build_spec())


@bp.get("/docs")
def docs() -> Response:
    return Response(DOCS_HTML, mimetype="text/html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
