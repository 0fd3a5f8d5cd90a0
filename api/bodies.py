"""JSON request bodies, read and checked before any model sees them.

Python's parser accepts what the rest of the stack cannot hold: numbers past the float range become
infinity (PostgreSQL's JSON refuses it, `json.dumps` writes `Infinity`, some paths store null), and
deep nesting overflows the recursion of the parser, pydantic or the database driver (a 500). Both
are refused here with a 422 naming the field; what is not JSON at all is a 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from services.errors import Invalid, ServiceError

# Deeper than any prompt, variable set or JSON Schema a person writes, far below the recursion limit.
MAX_JSON_DEPTH = 64


class BadRequest(ServiceError):
    status = 400


class _NonFinite(float):
    """A number that parsed to infinity; kept as a marker so the walk can name where it was."""


def _parse_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(value)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_body() -> bytes:
    """The raw body; a chunked body (no Content-Length) that reaches the limit is a 413, not cut short."""
    raw = request.get_data(cache=True)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and request.content_length is None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


def load_json(raw: bytes) -> Any:
    """Parse a body: 400 when it is not JSON, 422 naming the field when it is too deep or not finite."""
    try:
        data = json.loads(raw, parse_constant=_no_constants, parse_float=_parse_float) if raw else {}
    except RecursionError:
        raise Invalid(f"body: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON body: {exc}") from None
    check_tree(data, "body")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be stored: refuse them here
    except UnicodeEncodeError as exc:
        raise BadRequest(f"Malformed JSON body: {exc}") from None
    return data


def check_tree(data: Any, where: str) -> None:
    """Refuse nesting past `MAX_JSON_DEPTH` and non-finite numbers, naming the first offending field."""
    level: list[tuple[Any, str]] = [(data, where)]
    for _depth in range(MAX_JSON_DEPTH):
        level = [child for value, loc in level for child in _children(value, loc)]
        if not level:
            return
    where_deep = level[0][1]
    shown = where_deep if len(where_deep) <= 200 else where_deep[:200] + "..."
    raise Invalid(f"{shown}: nested deeper than {MAX_JSON_DEPTH} levels")


def _children(value: Any, loc: str) -> list[tuple[Any, str]]:
    """The containers inside `value` with their locations; a non-finite number among them is a 422."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    children = []
    for key, child in items:
        if isinstance(child, dict | list):
            children.append((child, f"{loc}.{key}"))
        elif type(child) is _NonFinite:
            raise Invalid(f"{loc}.{key}: number out of range (JSON numbers must be finite)")
    return children
