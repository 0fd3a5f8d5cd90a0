"""The `endpoint` decorator: parse with pydantic, call one service, serialize with pydantic, commit once.

Every decorated view is recorded so the OpenAPI document is generated from the very models the views use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from api.bodies import load_json, read_body
from api.errors import describe_validation_error
from api.extensions import commit
from models.schemas.common import MAX_ID
from services.errors import Invalid


@dataclass
class EndpointSpec:
    blueprint: Blueprint
    rule: str
    method: str
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    content_type: str = "application/json"
    other_content_types: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    """Error statuses beyond those every operation of its kind can answer (the spec documents them)."""
    view_name: str = ""


ENDPOINTS: list[EndpointSpec] = []


class IdConverter(IntegerConverter):
    """`<int:...>` in every route is a database id: outside 1..MAX_ID it is a 404, where the query
    would fail with PostgreSQL's "integer out of range" (a 500)."""

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            # Not werkzeug's ValidationError: that makes a path with other methods answer 405.
            raise NotFound(f"No such id: {value} (ids run from 1 to {MAX_ID})")
        return number


def parse_json_body(model: type[BaseModel]) -> BaseModel:
    data = load_json(read_body())
    if not isinstance(data, dict):
        raise Invalid("body: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe_validation_error(exc, "body")) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        field = model.model_fields.get(key)
        is_list = field is not None and "list" in str(field.annotation)
        data[key] = values if is_list else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe_validation_error(exc, "query")) from None


@functools.cache
def _adapter(response: Any) -> TypeAdapter[Any]:
    return TypeAdapter(response)


def to_json(response: Any, result: Any) -> bytes:
    adapter = _adapter(response)
    value = adapter.validate_python(result, from_attributes=True)
    return adapter.dump_json(value)


def endpoint(
    bp: Blueprint,
    rule: str,
    method: str = "GET",
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Register a thin view: `fn(**url_args, body=..., query=...)` returns what `response` describes.

    `errors` lists statuses the view itself raises beyond the shared ones (e.g. 403, 502)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Response]:
        summary = (fn.__doc__ or "").strip()
        ENDPOINTS.append(
            EndpointSpec(bp, rule, method, summary, body, query, response, status, errors=errors, view_name=fn.__name__)
        )

        @functools.wraps(fn)
        def view(**kwargs: Any) -> Response:
            if body is not None:
                kwargs["body"] = parse_json_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            result = fn(**kwargs)
            payload = to_json(response, result) if response is not None else b""
            commit()
            if response is None:
                return Response(status=204 if status == 200 else status)
            return Response(payload, status=status, mimetype="application/json")

        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view

    return decorate


def stream_endpoint(
    bp: Blueprint, rule: str, *, query: type[BaseModel], event: Any
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a server-sent-events view (it builds its own Response) so the spec lists it too."""

    def decorate(fn: Callable[..., Response]) -> Callable[..., Response]:
        summary = (fn.__doc__ or "").strip()
        ENDPOINTS.append(
            EndpointSpec(bp, rule, "GET", summary, None, query, event, 200, "text/event-stream", view_name=fn.__name__)
        )
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=fn, methods=["GET"])
        return fn

    return decorate


def download_endpoint(
    bp: Blueprint, rule: str, *, query: type[BaseModel], media_types: tuple[str, ...]
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a view that streams a file (it builds its own Response) so the spec lists it too."""

    def decorate(fn: Callable[..., Response]) -> Callable[..., Response]:
        summary = (fn.__doc__ or "").strip()
        first, *others = media_types
        ENDPOINTS.append(
            EndpointSpec(bp, rule, "GET", summary, None, query, str, 200, first, tuple(others), view_name=fn.__name__)
        )
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=fn, methods=["GET"])
        return fn

    return decorate
