"""Query strings and forms of the Studio pages, validated with pydantic like the REST API's."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from models.schemas.common import Id, PageNumber, RequestModel
from services.studio import (
    ExperimentFilters,
    ExperimentSort,
    ExperimentStatusFilter,
    ResponseFilter,
    ResponseFilters,
)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


class PageForm(RequestModel):
    page: PageNumber = 1


class ExperimentListForm(PageForm):
    status: ExperimentStatusFilter = "all"
    q: str = Field(default="", max_length=200)
    sort: ExperimentSort = "newest"

    def filters(self) -> ExperimentFilters:
        return ExperimentFilters(status=self.status, q=self.q.strip(), sort=self.sort, page=self.page)


class ResponsesForm(PageForm):
    status: ResponseFilter = "all"
    criterion: Id | None = None
    q: str = Field(default="", max_length=200)

    _blank = field_validator("criterion", mode="before")(_blank_is_none)

    def filters(self) -> ResponseFilters:
        return ResponseFilters(status=self.status, criterion_id=self.criterion, q=self.q.strip(), page=self.page)


class CompareForm(RequestModel):
    a: Id | None = None
    b: Id | None = None

    _blank = field_validator("a", "b", mode="before")(_blank_is_none)


class ProgressForm(RequestModel):
    ids: list[Id] = Field(default_factory=list, max_length=200)


class LoginForm(RequestModel):
    api_key: str = Field(min_length=1, max_length=500)
    next: str = ""

    def safe_next(self) -> str | None:
        """Only a Studio path: anything else would make the login page an open redirect."""
        ok = self.next.startswith("/studio/") and not self.next.startswith("//") and "\\" not in self.next
        return self.next if ok else None
