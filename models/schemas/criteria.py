from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, model_validator

from models.schemas.common import Id, PageQuery, RequestModel, UtcDatetime, WireModel
from models.schemas.templates import PromptTemplateOut

EVALUATOR_DOC = (
    "Assay extension: the name of an installed evaluator that computes this criterion instead of the LLM judge "
    "(built-in: exact_match, contains, regex, valid_json, json_schema, length, numeric, rouge_l; others are "
    "plugins in the `assay.evaluators` entry-point group). Null or absent: the LLM judge answers criterion_str. "
    "An unknown name is refused with a 422."
)
PARAMS_DOC = (
    'Assay extension: the parameters of the evaluator, for example {"pattern": "^\\\\d+$"} for regex; checked '
    "against the evaluator's own model when the criterion is created (a 422 names each bad field). "
    "Only with evaluator."
)


class CriterionIn(RequestModel):
    criterion_str: str = Field(min_length=1, max_length=10_000)
    label: str | None = Field(default=None, max_length=500)
    evaluator: str | None = Field(default=None, min_length=1, max_length=200, description=EVALUATOR_DOC)
    params: dict[str, Any] | None = Field(default=None, description=PARAMS_DOC)


class CriterionSetCreate(RequestModel):
    name: str = Field(min_length=1, max_length=500)
    criteria: list[CriterionIn] | None = None


class CreateCriteria(RequestModel):
    """`POST criteria`: add to a set, clear a set, add to a template's set, or generate (criteria=null)."""

    prompt_template_id: Id | None = None
    criterion_set_id: Id | None = None
    template_variables_id: Id | None = None
    criteria: list[CriterionIn] | None = None
    delete_existing: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> CreateCriteria:
        if (self.prompt_template_id is None) == (self.criterion_set_id is None):
            raise ValueError("exactly one of prompt_template_id and criterion_set_id must be set")
        if self.criterion_set_id is not None and self.criteria is None:
            raise ValueError("criteria: generating criteria needs prompt_template_id, not criterion_set_id")
        return self


class CriterionUpdate(RequestModel):
    criterion_str: str | None = Field(default=None, min_length=1, max_length=10_000)
    label: str | None = Field(default=None, max_length=500)


class CriteriaQuery(PageQuery):
    prompt_template_id: Id | None = None
    criterion_set_id: Id | None = None

    @model_validator(mode="after")
    def _some_target(self) -> CriteriaQuery:
        if self.prompt_template_id is None and self.criterion_set_id is None:
            raise ValueError("give prompt_template_id or criterion_set_id (or both)")
        return self


class NameQuery(PageQuery):
    name: str | None = None


class CriterionOut(WireModel):
    id: int
    criterion_str: str
    label: str | None = None
    prompt_template: PromptTemplateOut | None = None
    template_variables: None = None
    evaluator: str | None = Field(
        default=None, description="Assay extension: the evaluator computing this criterion; null for the LLM judge"
    )
    params: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("evaluator_params", "params"),
        description="Assay extension: the evaluator's parameters, defaults filled in; null for the LLM judge",
    )
    created_at: UtcDatetime


class CriterionSetOut(WireModel):
    id: int
    name: str
    criteria: list[CriterionOut] = []
    linked_prompt_templates: list[PromptTemplateOut] = []
    # SDK 0.7.x reads this key instead of linked_prompt_templates.
    prompt_templates: list[PromptTemplateOut] = []
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: object) -> object:
        if isinstance(data, dict):
            return data
        templates = [PromptTemplateOut.model_validate(t) for t in getattr(data, "prompt_templates", [])]
        return {
            "id": data.id,  # type: ignore[attr-defined]
            "name": data.name,  # type: ignore[attr-defined]
            "criteria": list(data.criteria),  # type: ignore[attr-defined]
            "linked_prompt_templates": templates,
            "prompt_templates": templates,
            "created_at": getattr(data, "created_at", None),
            "updated_at": getattr(data, "updated_at", None),
        }
