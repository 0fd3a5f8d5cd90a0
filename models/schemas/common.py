"""Shapes shared by every resource: pages, errors, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

T = TypeVar("T")

# Ids are 32-bit INTEGER columns: a larger number from a client must be a 404/422, never a database error.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Any page past the last is empty; the bound only keeps OFFSET within what databases accept.
PageNumber = Annotated[int, Field(ge=1, le=MAX_ID)]
# Any other number kept in an INTEGER column.
Int32 = Annotated[int, Field(ge=-MAX_ID - 1, le=MAX_ID)]


def _iso_utc(value: datetime) -> str:
    # SQLite hands back naive datetimes; everything is stored in UTC, so say so on the wire.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


UtcDatetime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str)]


class WireModel(BaseModel):
    """Base of every response shape: built from ORM rows by attribute."""

    model_config = ConfigDict(from_attributes=True)


class RequestModel(BaseModel):
    """Base of every request body and query: unknown keys are ignored, as the SDK sends extras we don't use.
    No text may hold a NUL character, which PostgreSQL cannot store or compare."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain the NUL character (\\u0000)")
        return value


class Page(BaseModel, Generic[T]):
    """A page of a list: `count` is the total over all pages of the filtered set."""

    items: list[T]
    count: int


class ErrorBody(BaseModel):
    """Every error has this body; some 409s add keys (for example `prompt_template_id`)."""

    model_config = ConfigDict(extra="allow")
    detail: str | list[Any]


class PageQuery(RequestModel):
    page: PageNumber | None = Field(default=None, description="1-based page number; omit for the first page")
