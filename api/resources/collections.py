"""`/collections`: collections of test cases and their entries (the SDK's template variables)."""

from __future__ import annotations

from flask import Blueprint, request

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.collections import (
    BatchUploadQuery,
    CollectionCreate,
    CollectionOut,
    CollectionQuery,
    CollectionUpdate,
    CollectionWithEntriesOut,
    EntryCreate,
    EntryOut,
    EntryUpdate,
)
from models.schemas.common import Page, PageQuery
from services import collections, generation
from services.errors import Invalid

bp = Blueprint("collections", __name__, url_prefix="/collections")


@endpoint(bp, "", "POST", body=CollectionCreate, response=CollectionWithEntriesOut, status=201)
def create_collection(body: CollectionCreate) -> object:
    """Create a collection with optional columns and rows; a name already in use is a 409."""
    return collections.create(db_session(), current_project_id(), body)


@endpoint(bp, "", query=CollectionQuery, response=Page[CollectionOut])
def list_collections(query: CollectionQuery) -> object:
    """List collections by id; `name` is exact; `compatible_prompt_template_id` keeps those that fit it."""
    return collections.list_(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "/<int:collection_id>", response=CollectionWithEntriesOut)
def get_collection(collection_id: int) -> object:
    """One collection with its first 10,000 entries (page through `/entries` for all of them)."""
    return collections.get_with_entries(db_session(), current_project_id(), collection_id)


@endpoint(bp, "/<int:collection_id>", "PUT", body=CollectionUpdate, response=CollectionOut)
def update_collection(collection_id: int, body: CollectionUpdate) -> object:
    """Rename or edit a collection; `columns` is the complete new list in order."""
    return collections.update(db_session(), current_project_id(), collection_id, body)


@endpoint(bp, "/<int:collection_id>", "DELETE")
def delete_collection(collection_id: int) -> None:
    """Delete a collection and its entries (409 while an experiment uses it)."""
    collections.delete(db_session(), current_project_id(), collection_id)


@endpoint(bp, "/<int:collection_id>/entries", "POST", body=EntryCreate, response=EntryOut, status=201, errors=(502,))
def create_entry(collection_id: int, body: EntryCreate) -> object:
    """Add one entry from `input_values` (generating one from `prompt_template_id` is not available yet)."""
    return generation.add_entry(db_session(), settings(), current_project_id(), collection_id, body)


@endpoint(
    bp,
    "/<int:collection_id>/entries/batches",
    "POST",
    query=BatchUploadQuery,
    response=list[EntryOut],
    status=201,
)
def upload_entries(collection_id: int, query: BatchUploadQuery) -> object:
    """Add the rows of a JSONL upload (multipart part `file`); returns only the entries created."""
    return collections.add_batch(
        db_session(), current_project_id(), collection_id, _uploaded_file(), query.skip_existing
    )


@endpoint(bp, "/<int:collection_id>/entries", query=PageQuery, response=Page[EntryOut])
def list_entries(collection_id: int, query: PageQuery) -> object:
    """List a collection's entries, oldest first."""
    return collections.list_entries(db_session(), current_project_id(), collection_id, query.page, settings().page_size)


@endpoint(bp, "/<int:collection_id>/entries/<int:entry_id>", response=EntryOut)
def get_entry(collection_id: int, entry_id: int) -> object:
    """One entry."""
    return collections.get_entry(db_session(), current_project_id(), collection_id, entry_id)


@endpoint(bp, "/<int:collection_id>/entries/<int:entry_id>", "PUT", body=EntryUpdate, response=EntryOut)
def update_entry(collection_id: int, entry_id: int, body: EntryUpdate) -> object:
    """Replace an entry's values."""
    return collections.update_entry(db_session(), current_project_id(), collection_id, entry_id, body)


@endpoint(bp, "/<int:collection_id>/entries/<int:entry_id>", "DELETE")
def delete_entry(collection_id: int, entry_id: int) -> None:
    """Delete one entry."""
    collections.delete_entry(db_session(), current_project_id(), collection_id, entry_id)


@endpoint(bp, "/<int:collection_id>/entries", "DELETE")
def clear_entries(collection_id: int) -> None:
    """Delete every entry of a collection."""
    collections.clear(db_session(), current_project_id(), collection_id)


def _uploaded_file() -> bytes:
    upload = request.files.get("file")
    if upload is not None:
        return upload.read()
    text = request.form.get("file")
    if text is not None:
        return text.encode()
    raise Invalid("file: send the rows as JSONL in a multipart/form-data part named 'file'")
