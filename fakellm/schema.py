"""Deterministic generation of a JSON instance that validates against a JSON Schema.

Supported: object (properties, required, additionalProperties), string (enum, const, minLength,
maxLength, a few formats), integer/number (minimum, maximum, exclusive bounds, multipleOf),
boolean, null, array (items, prefixItems, minItems, maxItems), enum, const, anyOf/oneOf (first
branch), allOf (shallow merge), $ref into the same document ($defs, definitions, any JSON
pointer) and nullable types (``["string", "null"]`` or ``"nullable": true``). ``pattern`` is not
supported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

Schema = Mapping[str, Any]
Override = Callable[[Schema], Any]
"""Given a property's resolved schema, return the value to put there."""

DEFAULT_ARRAY_ITEMS = 3
_MAX_DEPTH = 12  # deeper than this, recursive schemas get their smallest valid instance

_FORMATS: dict[str, str] = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "fake{n}@example.com",
    "uri": "https://example.com/fake/{n}",
    "url": "https://example.com/fake/{n}",
    "uuid": "00000000-0000-4000-8000-{n:012d}",
    "ipv4": "192.0.2.{n}",
    "hostname": "fake{n}.example.com",
}


class SchemaError(ValueError):
    """Raised when a schema uses a construct the generator cannot satisfy (e.g. a bad $ref)."""


def generate_instance(
    schema: Schema,
    text: str,
    overrides: Mapping[str, Override] | None = None,
) -> Any:
    """Return a deterministic instance of ``schema``.

    Args:
        schema: the JSON Schema (its own ``$defs``/``definitions`` are used for ``$ref``).
        text: base value for free-form strings; array items get a `` #<n>`` suffix so they differ.
        overrides: property name -> function computing that property's value from its schema
            (used to place the judge's verdict and reasoning).
    """
    return _Generator(schema, text, overrides or {}).value(schema, depth=0, index=None)


def resolve_ref(root: Schema, ref: str) -> Schema:
    """Resolve a local ``$ref`` (``#/...`` JSON pointer) against ``root``."""
    if not ref.startswith("#"):
        raise SchemaError(f"only local $ref are supported, got {ref!r}")
    node: Any = root
    for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise SchemaError(f"cannot resolve $ref {ref!r}") from None
    if not isinstance(node, Mapping):
        raise SchemaError(f"$ref {ref!r} does not point to a schema")
    return node


def fit_string(value: str, schema: Schema) -> str:
    """Pad (by repetition) or truncate ``value`` to satisfy ``minLength``/``maxLength``."""
    min_len = int(schema.get("minLength", 0))
    if len(value) < min_len:
        value = (value + " ") * (min_len // (len(value) + 1) + 1) if value else "x" * min_len
    if "maxLength" in schema:
        value = value[: int(schema["maxLength"])]
    return value


class _Generator:
    def __init__(self, root: Schema, text: str, overrides: Mapping[str, Override]) -> None:
        self.root = root
        self.text = text
        self.overrides = overrides

    def value(self, schema: Any, depth: int, index: int | None) -> Any:
        if schema is True or schema is None:
            return self._string({}, index)
        if not isinstance(schema, Mapping):
            raise SchemaError(f"not a schema: {schema!r}")
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][index % len(schema["enum"]) if _wants_unique(index) else 0]
        kind = _pick_type(schema, prefer_null=depth > _MAX_DEPTH)
        maker = _MAKERS.get(kind)
        if maker is None:
            raise SchemaError(f"unsupported type {kind!r}")
        return maker(self, schema, depth, index)

    def _resolve(self, schema: Schema) -> Schema:
        for _ in range(64):  # bounded: a $ref cycle without content would loop forever
            if "$ref" in schema:
                target = resolve_ref(self.root, schema["$ref"])
                siblings = {k: v for k, v in schema.items() if k != "$ref"}
                schema = {**target, **siblings}
            elif "anyOf" in schema or "oneOf" in schema:
                key = "anyOf" if "anyOf" in schema else "oneOf"
                branches = schema[key]
                rest = {k: v for k, v in schema.items() if k != key}
                schema = {**rest, **self._resolve(_first_branch(branches))}
            elif "allOf" in schema:
                rest = {k: v for k, v in schema.items() if k != "allOf"}
                for part in schema["allOf"]:
                    rest = _merge_schemas(rest, self._resolve(part))
                schema = rest
            else:
                return schema
        raise SchemaError("$ref/anyOf nesting too deep (cycle?)")

    def _object(self, schema: Schema, depth: int, index: int | None) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        names = list(properties) if depth <= _MAX_DEPTH else [n for n in properties if n in required]
        names += [n for n in required if n not in properties]
        extra = schema.get("additionalProperties")
        result: dict[str, Any] = {}
        for name in names:
            prop_schema = properties.get(name, extra if isinstance(extra, Mapping) else {})
            override = self.overrides.get(name)
            if override is not None:
                result[name] = override(self._resolve(prop_schema) if isinstance(prop_schema, Mapping) else {})
            else:
                result[name] = self.value(prop_schema, depth + 1, index)
        return result

    def _array(self, schema: Schema, depth: int, index: int | None) -> list[Any]:
        prefix = list(schema.get("prefixItems") or [])
        items = schema.get("items", {})
        low = int(schema.get("minItems", 0))
        count = low if depth > _MAX_DEPTH else max(low, DEFAULT_ARRAY_ITEMS)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        if items is False:
            count = min(count, len(prefix))
        result: list[Any] = []
        for i in range(count):
            item_schema = prefix[i] if i < len(prefix) else items
            result.append(self.value(item_schema, depth + 1, _item_index(index, i)))
        if schema.get("uniqueItems"):
            result = _dedupe(result, keep_at_least=low)
        return result

    def _string(self, schema: Schema, index: int | None) -> str:
        fmt = _FORMATS.get(str(schema.get("format", "")))
        if fmt is not None:
            value = fmt.format(n=(index or 0) + 1)
        else:
            value = self.text if index is None else f"{self.text} #{index + 1}"
        return fit_string(value, schema)

    def _integer(self, schema: Schema, depth: int, index: int | None) -> int:
        low, high = _integer_range(schema)
        value = low if low is not None else (min(0, high) if high is not None else 0)
        step = schema.get("multipleOf")
        if step:
            value = _multiple_at_least(value, step)
        offset = (index or 0) * (step or 1)
        if high is None or value + offset <= high:
            value += offset
        return int(value)

    def _number(self, schema: Schema, depth: int, index: int | None) -> float | int:
        step = schema.get("multipleOf")
        if step:
            low, low_excl = _bound(schema, "minimum")
            value = _multiple_at_least(low if low is not None else 0, step)
            return value + step if low_excl and value == low else value
        (low, low_excl), (high, high_excl) = _bound(schema, "minimum"), _bound(schema, "maximum")
        if low is not None and high is not None:
            value = (low + high) / 2 if low_excl or high_excl else low
        elif low is not None:
            value = low + 1 if low_excl else low
        elif high is not None:
            value = min(0, high - 1 if high_excl else high)
        else:
            value = 0
        offset = index or 0
        if offset and (high is None or value + offset < high or (not high_excl and value + offset == high)):
            value += offset
        return value


def _pick_type(schema: Schema, prefer_null: bool) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [str(t) for t in kind] or ["string"]
        if prefer_null and "null" in types:
            return "null"
        non_null = [t for t in types if t != "null"]
        return non_null[0] if non_null else "null"
    if kind is None:
        if prefer_null and schema.get("nullable"):
            return "null"
        if "properties" in schema or "required" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"
    if prefer_null and schema.get("nullable"):
        return "null"
    return str(kind)


def _first_branch(branches: Any) -> Schema:
    if not branches:
        raise SchemaError("anyOf/oneOf needs at least one branch")
    return branches[0]


def _merge_schemas(base: Schema, extra: Schema) -> dict[str, Any]:
    merged = {**base, **extra}
    if "properties" in base and "properties" in extra:
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged


def _bound(schema: Schema, side: str) -> tuple[float | None, bool]:
    """Tightest ``minimum``/``maximum`` and whether it is exclusive (draft 4 flag or draft 6+ value)."""
    exclusive_key = "exclusiveM" + side[1:]
    found: list[tuple[float, bool]] = []
    if side in schema:
        found.append((schema[side], schema.get(exclusive_key) is True))
    raw = schema.get(exclusive_key)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        found.append((raw, True))
    if not found:
        return None, False
    # At equal values the exclusive bound is the tighter one.
    if side == "minimum":
        return max(found, key=lambda b: (b[0], b[1]))
    return min(found, key=lambda b: (b[0], not b[1]))


def _integer_range(schema: Schema) -> tuple[int | None, int | None]:
    (low, low_excl), (high, high_excl) = _bound(schema, "minimum"), _bound(schema, "maximum")
    low_i = None if low is None else (math.floor(low) + 1 if low_excl else math.ceil(low))
    high_i = None if high is None else (math.ceil(high) - 1 if high_excl else math.floor(high))
    return low_i, high_i


def _multiple_at_least(value: float, step: float) -> float | int:
    return math.ceil(value / step) * step


def _dedupe(items: list[Any], keep_at_least: int) -> list[Any]:
    unique = list({json.dumps(item, sort_keys=True): item for item in items}.values())
    return unique if len(unique) >= keep_at_least else items


def _item_index(parent: int | None, i: int) -> int:
    # Nested arrays: keep items distinct across the whole instance, not just within one array.
    return i if parent is None else (parent + 1) * 100 + i


def _wants_unique(index: int | None) -> bool:
    return index is not None


_MAKERS: dict[str, Callable[[_Generator, Schema, int, int | None], Any]] = {
    "object": _Generator._object,
    "array": _Generator._array,
    "string": lambda gen, schema, depth, index: gen._string(schema, index),
    "integer": _Generator._integer,
    "number": _Generator._number,
    "boolean": lambda gen, schema, depth, index: True,
    "null": lambda gen, schema, depth, index: None,
}
