from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from models.schemas.common import Id, Int32, PageQuery, RequestModel, UtcDatetime, WireModel

ColumnType = Literal["text", "json", "conversation", "raw_input", "category", "persona_goal"]
CollectionType = Literal["STANDARD", "AGENTIC", "PERSONA"]


class ColumnIn(RequestModel):
    name: str = Field(min_length=1, max_length=500)
    column_type: ColumnType | None = None
    default_value: str | None = ""
    column_position: Int32 | None = None
    categorical_values: list[str] | None = None


class CollectionCreate(RequestModel):
    name: str = Field(min_length=1, max_length=500)
    description: str = ""
    read_only: bool = False
    collection_type: CollectionType = "STANDARD"
    variables: list[dict[str, Any]] | None = None
    columns: list[ColumnIn] | None = None
    environment_config: dict[str, Any] | None = None


class CollectionUpdate(RequestModel):
    name: str = Field(min_length=1, max_length=500)
    description: str | None = None
    read_only: bool | None = None
    columns: list[ColumnIn] | None = None
    environment_config: dict[str, Any] | None = None


class CollectionQuery(PageQuery):
    name: str | None = None
    compatible_prompt_template_id: Id | None = None
    filters: str | None = None
    sort_options: str | None = None


class EntryCreate(RequestModel):
    input_values: dict[str, Any] | None = None
    prompt_template_id: Id | None = None
    environment_config: dict[str, Any] | None = None


class EntryUpdate(RequestModel):
    input_values: dict[str, Any]
    environment_config: dict[str, Any] | None = None


class BatchUploadQuery(RequestModel):
    skip_existing: bool = False


class ColumnOut(WireModel):
    id: int
    name: str
    column_type: str
    default_value: str | None = ""
    column_position: int = 0
    categorical_values: list[str] | None = None


class CollectionOut(WireModel):
    id: int
    name: str
    description: str
    columns: list[ColumnOut] = []
    variables_count: int = 0
    read_only: bool = False
    version: str | None = None
    collection_type: str = "STANDARD"
    environment_config: dict[str, Any] | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class EntryOut(WireModel):
    id: int
    input_values: dict[str, Any]
    environment_config: dict[str, Any] | None = None
    collection: CollectionOut
    created_at: UtcDatetime


class CollectionWithEntriesOut(CollectionOut):
    variables: list[EntryOut] = []
