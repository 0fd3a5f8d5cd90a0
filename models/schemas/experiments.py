from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from models.schemas.collections import CollectionOut
from models.schemas.common import MAX_ID, Id, PageQuery, RequestModel, UtcDatetime, WireModel
from models.schemas.criteria import CriterionSetOut
from models.schemas.llm_configs import LLMConfigOut, ReasoningEffort, Verbosity
from models.schemas.responses import RatingMode
from models.schemas.templates import PromptTemplateOut


def odd_trials(value: int) -> int:
    """`judge_trials` must be odd, so that a majority always exists."""
    if value % 2 == 0:
        raise ValueError("must be odd, so that a majority always exists")
    return value


EvaluationMode = Literal["STANDARD", "AGENTIC", "MULTI_TURN"]


class GenerationParams(RequestModel):
    temperature: float | None = Field(default=None, ge=0, le=2)
    reasoning_effort: ReasoningEffort | None = None
    verbosity: Verbosity | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_ID)
    max_connections: int = Field(default=10, ge=1, le=10_000)

    @model_validator(mode="after")
    def _exclusive(self) -> GenerationParams:
        if self.temperature is not None and self.reasoning_effort is not None:
            raise ValueError("temperature and reasoning_effort are mutually exclusive")
        return self


class ExperimentCreate(RequestModel):
    name: str = Field(min_length=1, max_length=500)
    description: str | None = ""
    prompt_template_id: Id | None = None
    collection_id: Id | None = None
    criterion_set_id: Id | None = None
    llm_config_id: Id | None = None
    generate: bool = False
    rating_mode: RatingMode = "detailed"
    n_epochs: int = Field(default=1, ge=1, le=100)
    generation_params: GenerationParams | None = None
    rating_version: str | None = None
    response_column_id: Id | None = None
    evaluation_mode: EvaluationMode = "STANDARD"
    agent_config: dict[str, Any] | None = None
    evaluation_agent_config: dict[str, Any] | None = None
    persona_group_id: Id | None = Field(default=None, description="Not supported: MULTI_TURN experiments")
    scenario_set_id: Id | None = Field(default=None, description="Not supported: MULTI_TURN experiments")
    use_cache: bool = Field(default=False, description="Assay extension: reuse identical model calls")
    time_limit_seconds: int | None = Field(
        default=None, ge=1, le=30 * 24 * 3600, description="Assay extension: a run's time limit (TIMEOUT after it)"
    )
    judge_trials: int = Field(
        default=1,
        ge=1,
        le=15,
        description="Assay extension: the judge answers each criterion this many times (odd); the majority is "
        "the rating and every answer is kept (see GET experiments/{id}/consistency)",
    )

    _odd = field_validator("judge_trials")(odd_trials)


class RunExperiment(RequestModel):
    rating_mode: RatingMode = "detailed"
    n_epochs: int = Field(default=1, ge=1, le=100)
    generation_params: GenerationParams | None = None
    time_limit_seconds: int | None = Field(default=None, ge=1, le=30 * 24 * 3600)


class RetryFailed(RequestModel):
    rating_mode: RatingMode = "detailed"
    discard_annotations: bool = False


class ExperimentQuery(PageQuery):
    experiment_name: str | None = None
    experiment_name_search: str | None = None
    prompt_template_id: Id | None = None
    collection_id: Id | None = None
    llm_config_id: Id | None = None


class MeanRating(WireModel):
    yes: float
    no: float


class RateInterval(WireModel):
    low: float
    high: float


class ExperimentResults(WireModel):
    mean_all_ratings: MeanRating
    pass_rate_interval: RateInterval | None = Field(
        default=None, description="Assay extension: 95% Wilson interval of mean_all_ratings.yes; null without verdicts"
    )
    pass_rate_interval_by_criterion_id: dict[int, RateInterval | None] = Field(
        default_factory=dict, description="Assay extension: 95% Wilson interval of each criterion's YES rate"
    )
    std_all_ratings: float = 0.0
    mean_rating_by_criterion_id: dict[int, MeanRating]
    mean_duration_seconds: float = 0.0
    mean_input_tokens: float = 0.0
    mean_output_tokens: float = 0.0
    mean_reasoning_tokens: float = 0.0
    input_tokens_per_response: list[int]
    output_tokens_per_response: list[int]
    reasoning_tokens_per_response: list[int] = []
    duration_seconds_per_response: list[float]
    num_rated_responses: int
    num_failed_responses: int
    num_failed_ratings: int = 0
    completed_epochs: int = 1
    experiment_duration_seconds: float | None = None
    estimated_input_cost_usd: float = 0.0
    estimated_output_cost_usd: float = 0.0
    estimated_total_cost_usd: float = 0.0


class ExperimentOut(WireModel):
    id: int
    name: str
    description: str | None = ""
    prompt_template: PromptTemplateOut | None = None
    collection: CollectionOut
    criterion_set: CriterionSetOut
    llm_config: LLMConfigOut | None
    rating_mode: str | None = None
    rating_version: str | None = None
    rated_responses: list[Any] = []
    generation_task_id: str | None = None
    has_internal_error: bool = False
    generation_params: dict[str, Any] | None = None
    n_epochs: int | None = None
    response_column_id: int | None = None
    evaluation_mode: str = "STANDARD"
    agent_config: dict[str, Any] | None = None
    evaluation_agent_config: dict[str, Any] | None = None
    dropped_trajectories: int = 0
    use_cache: bool = False
    time_limit_seconds: int | None = None
    judge_trials: int = 1
    results: ExperimentResults | None = None
    logs: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ExportQuery(RequestModel):
    format: Literal["csv", "jsonl"] = Field(default="csv", description="csv (one column pair per criterion) or jsonl")
