from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from models.schemas.collections import EntryOut
from models.schemas.common import MAX_ID, Id, PageQuery, RequestModel, UtcDatetime, WireModel
from models.schemas.criteria import CriterionOut
from models.schemas.llm_configs import LLMConfigOut
from models.schemas.templates import PromptTemplateOut

RatingMode = Literal["fast", "detailed"]


class ModelConfigSnapshot(WireModel):
    """The model a response came from when it was not an LLM config of the project (the default)."""

    id: int | None = None
    name: str | None = None
    llm_model_name: str


class GenerationMetadataOut(WireModel):
    llm_model_config: LLMConfigOut | ModelConfigSnapshot | None = None
    duration_seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None


class PromptOut(WireModel):
    id: int
    prompt_template: PromptTemplateOut | None = None
    template_variables: EntryOut = Field(validation_alias="entry")
    messages: list[dict[str, Any]] = []
    created_at: UtcDatetime


class RatingOut(WireModel):
    id: int
    criterion: CriterionOut
    rating: Literal["YES", "NO"]
    reasoning: str | None = None
    score: float | None = None
    generation_metadata: GenerationMetadataOut | None = None
    created_at: UtcDatetime


class PromptResponseOut(WireModel):
    id: int
    prompt: PromptOut
    messages: list[dict[str, Any]]
    generation_metadata: GenerationMetadataOut | None
    error: str | None
    epoch: int
    annotation: str = ""
    termination_reason: str | None = None
    trajectory: dict[str, Any] | None = None
    experiment_id: int | None = None
    ratings: list[RatingOut] = Field(default=[], validation_alias="verdicts")
    created_at: UtcDatetime


TokenCount = Annotated[int, Field(ge=0, le=MAX_ID)]


class ModelConfigRef(RequestModel):
    """What is kept of a GenerationMetadata's `llm_model_config`: the project's config with this id
    becomes the response's LLM config, else the model name is kept."""

    id: int | None = None
    llm_model_name: str | None = Field(default=None, max_length=500)


class ResponseMetadata(RequestModel):
    """The usage a client reports for a response it produced itself (the SDK's GenerationMetadata; its
    other keys are not stored)."""

    llm_model_config: ModelConfigRef | None = None
    duration_seconds: float | None = Field(default=None, ge=0, le=10**9, allow_inf_nan=False)
    input_tokens: TokenCount | None = None
    output_tokens: TokenCount | None = None
    reasoning_tokens: TokenCount | None = None
    cached_tokens: TokenCount | None = None


class CreatePromptResponse(RequestModel):
    template_variables_id: Id
    experiment_id: Id | None = None
    epoch: int = Field(default=1, ge=1, le=MAX_ID)
    llm_config_id: Id | None = None
    messages: list[dict[str, Any]] = []
    metadata: ResponseMetadata | None = None


class BatchCreateResponses(RequestModel):
    prompt_response_ins: list[CreatePromptResponse] = Field(min_length=1, max_length=100_000)


class AnnotationUpdate(RequestModel):
    annotation: str


class BatchCreateRatings(RequestModel):
    prompt_response_ids: list[Id] = Field(min_length=1, max_length=100_000)
    rating_mode: RatingMode = "fast"


class CreateRating(RequestModel):
    prompt_response_id: Id
    rating_mode: RatingMode = "fast"


class ResponsesQuery(PageQuery):
    experiment_id: Id | None = None
    response_ids: list[Id] | None = None
    prompt_template_id: Id | None = None
    template_variables_id: Id | None = None
    collection_id: Id | None = None
    llm_model_name: str | None = None
    epoch: int | None = Field(default=None, ge=1, le=MAX_ID)
    failed: bool | None = Field(default=None, description="Only responses whose generation failed (or not)")


class RatingsQuery(PageQuery):
    prompt_response_id: Id | None = None

    @model_validator(mode="after")
    def _needs_filter(self) -> RatingsQuery:
        if self.prompt_response_id is None:
            raise ValueError("prompt_response_id is required")
        return self


class ComparisonSamplesQuery(RequestModel):
    experiment_a_id: Id = Field(description="The baseline")
    experiment_b_id: Id = Field(description="The experiment compared with the baseline")
    filter_samples_by: Literal["improved", "regressed"] | None = Field(
        default=None, description="Only test cases whose score B raised (improved) or lowered (regressed)"
    )
    criterion_ids: list[Id] | None = Field(default=None, description="Score only these criteria (repeat the key)")
    categorical_filters: dict[str, list[str]] | None = Field(
        default=None,
        description='JSON such as {"region": ["US", "EU"]}: values of one column OR-ed, columns AND-ed',
    )

    @field_validator("categorical_filters", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, list) and value:  # the query parser sees "list" in the type: the last one counts
            value = value[-1]
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not valid JSON: {exc}") from None
        return value


class ResponsesSampleOut(WireModel):
    experiment_id: int
    template_variables_id: int
    prompt_response_ids: list[int]
