"""Collections and their entries (the SDK calls an entry "template variables").

Columns follow the rows: a key that no column names yet becomes a new column (text unless the collection
type says otherwise), so adding rows never fails on an unknown key.

Paths that may return many entries at once (batch upload, a collection with its entries) build `EntryOut`
directly around one shared `CollectionOut`: validating the nested collection once per row from the ORM
costs several seconds at 100,000 rows, the shared summary costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Select, bindparam, func, select, text
from sqlalchemy import delete as delete_rows
from sqlalchemy.orm import Session

from models.orm import Collection, CollectionColumn, Entry, Experiment, utcnow
from models.schemas.collections import (
    CollectionCreate,
    CollectionOut,
    CollectionQuery,
    CollectionUpdate,
    CollectionWithEntriesOut,
    ColumnIn,
    EntryCreate,
    EntryOut,
    EntryUpdate,
)
from services import templates
from services.errors import Conflict, Invalid, not_found, owned
from services.pagination import Paged, paginate

# `GET collections/{id}` embeds at most this many entries (the oldest first); page through
# `GET collections/{id}/entries` for the rest. `variables_count` always counts them all.
ENTRIES_EMBED_LIMIT = 10_000
MAX_COLUMN_NAME = 500
# skip_existing looks up at most this many distinct identities with IN; a larger batch reads all of them.
HASH_IN_LIMIT = 2_000
UNPAIRED_SURROGATE = "text must be valid Unicode (an escape like \\ud800 needs its pair)"


_CREATED_AT = bindparam("created_at", type_=DateTime(timezone=True))
# Two arrays zipped by ROWS FROM: taking an element apart with `->` would fail on a "\u0000" in a value.
_PG_BULK_INSERT = text("""
    INSERT INTO entries (collection_id, input_values, identity_hash, created_at)
    SELECT :collection_id, r.input_values, r.identity_hash, :created_at
    FROM ROWS FROM (
        json_array_elements(CAST(:input_values AS json)), json_array_elements_text(CAST(:identity_hashes AS json))
    ) WITH ORDINALITY AS r(input_values, identity_hash, n)
    ORDER BY r.n
    RETURNING id
""").bindparams(_CREATED_AT)
_SQLITE_BULK_INSERT = text("""
    INSERT INTO entries (collection_id, input_values, identity_hash, created_at)
    SELECT :collection_id, json_extract(r.value, '$[0]'), json_extract(r.value, '$[1]'), :created_at
    FROM json_each(:rows) AS r
    ORDER BY r.key
    RETURNING id
""").bindparams(_CREATED_AT)


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ---- helpers other services use


def identity_hash(input_values: dict[str, Any], environment_config: dict[str, Any] | None) -> str:
    """SHA-256 of the entry's identity in canonical JSON (sorted keys); skip_existing compares these."""
    canonical = _CANONICAL_JSON.encode([input_values, environment_config])
    return hashlib.sha256(canonical.encode()).hexdigest()


def column_names(collection: Collection) -> list[str]:
    """The collection's column names in column order."""
    return [column.name for column in collection.columns]


def get(session: Session, project_id: int, collection_id: int) -> Collection:
    """The project's collection, or 404 (another project's id is simply missing)."""
    return owned(session, Collection, project_id, collection_id, "Collection")


# ---- collections


def create(session: Session, project_id: int, body: CollectionCreate) -> CollectionWithEntriesOut:
    """A new collection with its columns and inline rows; a name already in the project is a 409."""
    _ensure_name_free(session, project_id, body.name)
    collection = Collection(
        project_id=project_id,
        name=body.name,
        description=body.description,
        read_only=body.read_only,
        collection_type=body.collection_type,
        environment_config=body.environment_config,
    )
    collection.columns = _sync_columns(collection, body.columns or [], "body.columns")
    session.add(collection)
    session.flush()
    if body.variables:
        _insert_rows(session, collection, body.variables, "body.variables")
    return _with_entries(session, collection)


def list_(session: Session, project_id: int, query: CollectionQuery, page_size: int) -> Paged[Collection]:
    """One page ordered by id; `name` is exact. `filters` and `sort_options` are accepted and ignored."""
    stmt: Select[Any] = select(Collection).where(Collection.project_id == project_id)
    if query.name is not None:
        stmt = stmt.where(Collection.name == query.name)
    if query.compatible_prompt_template_id is not None:
        template = templates.get(session, project_id, query.compatible_prompt_template_id)
        stmt = _covering(stmt, template.placeholders)
    return paginate(session, stmt.order_by(Collection.id), query.page, page_size)


def _covering(stmt: Select[Any], placeholders: list[str]) -> Select[Any]:
    """Collections with a column for every placeholder (column names are unique per collection)."""
    if not placeholders:
        return stmt
    covering = (
        select(CollectionColumn.collection_id)
        .where(CollectionColumn.name.in_(placeholders))
        .group_by(CollectionColumn.collection_id)
        .having(func.count() == len(set(placeholders)))
    )
    return stmt.where(Collection.id.in_(covering))


def get_with_entries(session: Session, project_id: int, collection_id: int) -> CollectionWithEntriesOut:
    """The collection with its first `ENTRIES_EMBED_LIMIT` entries, oldest first."""
    return _with_entries(session, get(session, project_id, collection_id))


def update(session: Session, project_id: int, collection_id: int, body: CollectionUpdate) -> Collection:
    """Rename and edit; `columns` is the full new list in order (missing ones are dropped, new ones added)."""
    collection = get(session, project_id, collection_id)
    if body.name != collection.name:
        _ensure_name_free(session, project_id, body.name)
        collection.name = body.name
    if body.description is not None:
        collection.description = body.description
    if body.read_only is not None:
        collection.read_only = body.read_only
    if body.columns is not None:
        collection.columns = _sync_columns(collection, body.columns, "body.columns")
    if "environment_config" in body.model_fields_set:
        collection.environment_config = body.environment_config
    collection.updated_at = utcnow()
    session.flush()
    return collection


def delete(session: Session, project_id: int, collection_id: int) -> None:
    """Delete the collection and its entries; 409 while experiments use it."""
    collection = get(session, project_id, collection_id)
    users = session.scalars(
        select(Experiment.name).where(Experiment.collection_id == collection_id).order_by(Experiment.id)
    ).all()
    if users:
        names = ", ".join(repr(name) for name in users)
        raise Conflict(f"Collection '{collection.name}' is used by experiment(s) {names}; delete them first")
    session.execute(delete_rows(Entry).where(Entry.collection_id == collection_id))
    session.delete(collection)
    session.flush()


def _ensure_name_free(session: Session, project_id: int, name: str) -> None:
    taken = session.scalar(select(Collection.id).where(Collection.project_id == project_id, Collection.name == name))
    if taken is not None:
        raise Conflict(f"Collection '{name}' already exists")


# ---- columns


def _sync_columns(collection: Collection, wanted: list[ColumnIn], where: str) -> list[CollectionColumn]:
    """The new column list: existing columns (matched by name) keep their id, positions follow the order."""
    existing = {column.name: column for column in collection.columns}
    result: list[CollectionColumn] = []
    for position, (index, spec) in enumerate(_in_order(wanted)):
        if any(column.name == spec.name for column in result):
            raise Invalid(f"{where}[{index}].name: duplicate column name {spec.name!r}")
        column = existing.get(spec.name)
        if column is None:
            column = CollectionColumn(name=spec.name, column_type=_default_type(collection, spec.name))
        _apply(column, spec, position)
        result.append(column)
    return result


def _in_order(wanted: list[ColumnIn]) -> list[tuple[int, ColumnIn]]:
    # The SDK sends column_position 0 for every bare column name, so list order breaks ties.
    indexed = list(enumerate(wanted))
    return sorted(indexed, key=lambda pair: pair[0] if pair[1].column_position is None else pair[1].column_position)


def _apply(column: CollectionColumn, spec: ColumnIn, position: int) -> None:
    column.column_position = position
    if spec.column_type is not None:
        column.column_type = spec.column_type
    if column.id is None or "default_value" in spec.model_fields_set:
        column.default_value = spec.default_value
    if column.id is None or "categorical_values" in spec.model_fields_set:
        column.categorical_values = spec.categorical_values


def _default_type(collection: Collection, name: str) -> str:
    # An AGENTIC collection's `instruction` column is raw input, as the SDK documents.
    return "raw_input" if collection.collection_type == "AGENTIC" and name == "instruction" else "text"


def _add_missing_columns(collection: Collection, rows: Iterable[dict[str, Any]], where: str) -> None:
    """Append a column for every key the collection has no column for yet, in first-seen order."""
    known = set(column_names(collection))
    position = max((column.column_position for column in collection.columns), default=-1) + 1
    for row in rows:
        for key in row:
            if key in known:
                continue
            if not 0 < len(key) <= MAX_COLUMN_NAME or "\x00" in key:
                raise Invalid(f"{where}: key {key[:40]!r} must be 1 to {MAX_COLUMN_NAME} characters, without NUL")
            known.add(key)
            column = CollectionColumn(name=key, column_type=_default_type(collection, key), column_position=position)
            collection.columns.append(column)
            position += 1


# ---- entries


def add_entry(session: Session, project_id: int, collection_id: int, body: EntryCreate) -> Entry:
    """Add one row from `input_values`; an identical existing row is returned instead of a duplicate."""
    collection = get(session, project_id, collection_id)
    values = _manual_values(body)
    digest = _identity(values, body.environment_config, "body")
    existing = session.scalar(
        select(Entry).where(Entry.collection_id == collection.id, Entry.identity_hash == digest).limit(1)
    )
    if existing is not None:
        return existing
    _ensure_writable(collection)
    _add_missing_columns(collection, [values], "body.input_values")
    entry = Entry(
        collection=collection,
        input_values=values,
        environment_config=body.environment_config,
        identity_hash=digest,
    )
    session.add(entry)
    _touch(session, collection)
    return entry


def _manual_values(body: EntryCreate) -> dict[str, Any]:
    if body.input_values is None or body.prompt_template_id is not None:
        raise Invalid("body: exactly one of input_values and prompt_template_id must be set")
    return body.input_values


def add_batch(
    session: Session, project_id: int, collection_id: int, data: bytes, skip_existing: bool
) -> list[EntryOut]:
    """Add every JSONL row of an upload; returns only the rows created (skip_existing drops duplicates)."""
    collection = get(session, project_id, collection_id)
    rows = parse_jsonl(data)
    _ensure_writable(collection)
    return _insert_rows(session, collection, rows, "file", skip_existing=skip_existing)


def parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    """One JSON object per line; blank lines, a trailing newline and a UTF-8 BOM are fine."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"file: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    # Only "\n" separates lines: with ensure_ascii=False a value may hold U+2028 and friends.
    lines = enumerate(content.split("\n"), start=1)
    return [_parse_line(number, line) for number, line in lines if line.strip()]


def _parse_line(number: int, line: str) -> dict[str, Any]:
    try:
        value = _STRICT_JSON.decode(line)
    except json.JSONDecodeError as exc:
        raise Invalid(f"file line {number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"file line {number}: invalid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Invalid(f"file line {number}: expected a JSON object, got {type(value).__name__}")
    if "\\u" in line and not _encodable(value):
        raise Invalid(f"file line {number}: {UNPAIRED_SURROGATE}")
    return value


def _encodable(value: dict[str, Any]) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} is out of range for a number")
    return value


# NaN and Infinity cannot be stored as JSON (PostgreSQL rejects them), so the upload must not contain them.
_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _identity(values: dict[str, Any], environment_config: dict[str, Any] | None, where: str) -> str:
    try:
        return identity_hash(values, environment_config)
    except UnicodeEncodeError:
        raise Invalid(f"{where}: {UNPAIRED_SURROGATE}") from None
    except ValueError:
        raise Invalid(f"{where}: numbers must be finite (NaN and Infinity are not JSON)") from None


def list_entries(
    session: Session, project_id: int, collection_id: int, page: int | None, page_size: int
) -> Paged[Entry]:
    """One page of the collection's entries, oldest first."""
    get(session, project_id, collection_id)
    stmt = select(Entry).where(Entry.collection_id == collection_id).order_by(Entry.id)
    return paginate(session, stmt, page, page_size)


def get_entry(session: Session, project_id: int, collection_id: int, entry_id: int) -> Entry:
    """One entry of the project's collection; an entry of another collection is a 404."""
    collection = get(session, project_id, collection_id)
    entry = session.scalar(select(Entry).where(Entry.id == entry_id, Entry.collection_id == collection.id))
    if entry is None:
        raise not_found("Entry", entry_id)
    return entry


def update_entry(session: Session, project_id: int, collection_id: int, entry_id: int, body: EntryUpdate) -> Entry:
    """Replace the entry's values; `environment_config` only changes when it is sent."""
    entry = get_entry(session, project_id, collection_id, entry_id)
    _ensure_writable(entry.collection)
    _add_missing_columns(entry.collection, [body.input_values], "body.input_values")
    entry.input_values = body.input_values
    if "environment_config" in body.model_fields_set:
        entry.environment_config = body.environment_config
    entry.identity_hash = _identity(entry.input_values, entry.environment_config, "body")
    _touch(session, entry.collection)
    return entry


def delete_entry(session: Session, project_id: int, collection_id: int, entry_id: int) -> None:
    """Delete one entry (its responses go with it)."""
    entry = get_entry(session, project_id, collection_id, entry_id)
    _ensure_writable(entry.collection)
    session.delete(entry)
    _touch(session, entry.collection)


def clear(session: Session, project_id: int, collection_id: int) -> None:
    """Delete every entry of the collection; its columns stay."""
    collection = get(session, project_id, collection_id)
    _ensure_writable(collection)
    session.execute(delete_rows(Entry).where(Entry.collection_id == collection_id))
    _touch(session, collection)


def _ensure_writable(collection: Collection) -> None:
    if collection.read_only:
        raise Conflict(f"Collection '{collection.name}' is read-only")


def _touch(session: Session, collection: Collection) -> None:
    """Record a change of the collection's rows; its entry count is read again on next use."""
    collection.updated_at = utcnow()
    session.flush()
    session.expire(collection, ["variables_count"])


def _insert_rows(
    session: Session,
    collection: Collection,
    rows: Sequence[dict[str, Any]],
    where: str,
    *,
    skip_existing: bool = False,
) -> list[EntryOut]:
    """Insert the rows in bulk and describe the new entries, oldest first."""
    _add_missing_columns(collection, rows, where)
    now = utcnow()
    params = [
        {"collection_id": collection.id, "input_values": row, "identity_hash": _identity(row, None, where)}
        for row in rows
    ]
    if skip_existing:
        params = _only_new(session, collection.id, params)
    ids = _bulk_insert(session, params, now)
    _touch(session, collection)
    summary = CollectionOut.model_validate(collection)
    return [
        _entry_out(entry_id, p["input_values"], None, now, summary) for entry_id, p in zip(ids, params, strict=True)
    ]


def _bulk_insert(session: Session, params: list[dict[str, Any]], now: datetime) -> list[int]:
    """Insert every row with one `INSERT ... SELECT` over a JSON array; returns their ids in row order.

    Rows go in ordered by their position and each takes the next id, so the sorted ids line up with the
    rows (the same assumption SQLAlchemy's ordered bulk insert makes on PostgreSQL). Executemany, with or
    without RETURNING, is three to five times slower at 100,000 rows on both databases.
    """
    if not params:
        return []
    values = [p["input_values"] for p in params]
    hashes = [p["identity_hash"] for p in params]
    if session.get_bind().dialect.name == "postgresql":
        stmt, bound = _PG_BULK_INSERT, {"input_values": _json(values), "identity_hashes": _json(hashes)}
    else:
        stmt, bound = _SQLITE_BULK_INSERT, {"rows": _json(list(zip(values, hashes, strict=True)))}
    ids = session.scalars(stmt, {"collection_id": params[0]["collection_id"], "created_at": now, **bound})
    return sorted(ids)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _only_new(session: Session, collection_id: int, params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop rows whose identity is already stored, or that repeat an earlier row of the batch."""
    stored = select(Entry.identity_hash).where(Entry.collection_id == collection_id)
    hashes = {p["identity_hash"] for p in params}
    if len(hashes) <= HASH_IN_LIMIT:
        stored = stored.where(Entry.identity_hash.in_(hashes))
    return unseen(params, set(session.scalars(stored)))


def unseen(rows: list[dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    """The rows whose `identity_hash` is neither in `seen` nor on an earlier row (`seen` grows)."""
    fresh = []
    for row in rows:
        if row["identity_hash"] not in seen:
            seen.add(row["identity_hash"])
            fresh.append(row)
    return fresh


def _with_entries(session: Session, collection: Collection) -> CollectionWithEntriesOut:
    rows = session.execute(
        select(Entry.id, Entry.input_values, Entry.environment_config, Entry.created_at)
        .where(Entry.collection_id == collection.id)
        .order_by(Entry.id)
        .limit(ENTRIES_EMBED_LIMIT)
    ).all()
    summary = CollectionOut.model_validate(collection)
    variables = [_entry_out(*row, summary) for row in rows]
    return CollectionWithEntriesOut(**dict(summary), variables=variables)


def _entry_out(
    entry_id: int,
    input_values: dict[str, Any],
    environment_config: dict[str, Any] | None,
    created_at: datetime,
    summary: CollectionOut,
) -> EntryOut:
    return EntryOut(
        id=entry_id,
        input_values=input_values,
        environment_config=environment_config,
        collection=summary,
        created_at=created_at,
    )
