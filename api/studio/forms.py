"""Query strings and forms of the Studio pages, validated with pydantic like the REST API's."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from flask import request
from pydantic import Field, ValidationError, field_validator

from api.errors import describe_validation_error
from models.schemas.common import Id, PageNumber, RequestModel
from models.schemas.experiments import odd_trials
from services.errors import Conflict, Invalid
from services.studio import (
    CompareChoice,
    ExperimentFilters,
    ExperimentSort,
    ExperimentStatusFilter,
    Launch,
    ResponseFilter,
    ResponseFilters,
)

T = TypeVar("T", bound=RequestModel)


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
    """A (the baseline) and B as two menus, or up to eight experiments ticked as `ids` after A."""

    a: Id | None = None
    b: Id | None = None
    ids: list[Id] = Field(default_factory=list, max_length=8)
    criterion: str = Field(default="", max_length=2000)
    show: Literal["disagreements", "all"] = "disagreements"

    _blank = field_validator("a", "b", mode="before")(_blank_is_none)

    def choice(self) -> CompareChoice:
        if self.a is not None and self.a == self.b:
            raise Conflict("Choose two different experiments to compare")
        picked = [i for i in (self.a, self.b, *self.ids) if i is not None]
        return CompareChoice(list(dict.fromkeys(picked)), self.criterion or None, self.show == "all")

    def selected(self, experiment_id: int) -> bool:
        return experiment_id in self.choice().ids[1:]


class ProgressForm(RequestModel):
    ids: list[Id] = Field(default_factory=list, max_length=200)


class ReviewForm(RequestModel):
    verdict: Literal["YES", "NO"]
    note: str = Field(default="", max_length=10_000)
    reviewer: str = Field(default="", max_length=200)


def parse_form(model: type[T]) -> T:
    """A posted form, validated like a query: a 422 naming the field."""
    try:
        return model.model_validate(request.form.to_dict())
    except ValidationError as exc:
        raise Invalid(describe_validation_error(exc, "form")) from None


class LaunchForm(RequestModel):
    name: str = Field(min_length=1, max_length=500)
    prompt_template: Id
    collection: Id
    criterion_set: Id | None = None
    criteria: str = Field(default="", max_length=100_000, description="new criteria, one a line")
    llm_config: Id | None = None
    n_epochs: int = Field(default=1, ge=1, le=100)
    judge_trials: int = Field(default=1, ge=1, le=15)

    _odd = field_validator("judge_trials")(odd_trials)

    _blank = field_validator("criterion_set", "llm_config", mode="before")(_blank_is_none)

    def launch(self) -> Launch:
        lines = [line.strip() for line in self.criteria.splitlines() if line.strip()]
        return Launch(
            self.name.strip() or self.name,
            self.prompt_template,
            self.collection,
            self.criterion_set,
            lines,
            self.llm_config,
            self.n_epochs,
            self.judge_trials,
        )


class UploadForm(RequestModel):
    name: str = Field(min_length=1, max_length=500)


class LoginForm(RequestModel):
    api_key: str = Field(min_length=1, max_length=500)
    next: str = ""

    def safe_next(self) -> str | None:
        """Only a Studio path: anything else would make the login page an open redirect."""
        ok = self.next.startswith("/studio/") and not self.next.startswith("//") and "\\" not in self.next
        return self.next if ok else None
