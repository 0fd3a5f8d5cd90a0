"""Agentic experiments: the frozen upload definition, match previews and uploads of agent trials."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from models.schemas.common import MAX_ID, Id, RequestModel, WireModel

TokenCount = Field(default=None, ge=0, le=MAX_ID)


class TaskRef(RequestModel):
    task_id: Id | None = Field(default=None, description="A task id from the definition (wins over task_name)")
    task_name: str | None = Field(default=None, max_length=10_000)


class CriterionRatingIn(RequestModel):
    criterion_id: Id | None = None
    label: str | None = None
    rating: Literal["YES", "NO"]
    reasoning: str = ""


class AgentTrialIn(TaskRef):
    messages: list[dict[str, Any]] = Field(default=[], max_length=100_000)
    reward: float | None = Field(default=None, ge=0, le=1)
    steps: int | None = Field(default=None, ge=0, le=MAX_ID)
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    duration_seconds: float | None = Field(default=None, ge=0, le=10**9, allow_inf_nan=False)
    input_tokens: int | None = TokenCount
    output_tokens: int | None = TokenCount
    cached_tokens: int | None = TokenCount
    error: str | None = None
    metadata: dict[str, Any] | None = None
    trajectory: dict[str, Any] | None = None
    criterion_ratings: list[CriterionRatingIn] = []


class AgentResultsUpload(RequestModel):
    results: list[AgentTrialIn] = Field(min_length=1, max_length=100_000)
    epoch: int = Field(default=1, ge=1, le=MAX_ID)
    evaluate: bool = True


class MatchPreviewRequest(RequestModel):
    results: list[TaskRef] = Field(max_length=100_000)


class CriterionDefinitionOut(WireModel):
    criterion_id: int
    label: str
    scope: Literal["system", "shared", "task"] = "shared"
    rendered_criterion_str: str


class TaskDefinitionOut(WireModel):
    task_id: int
    task_name: str
    criteria: list[CriterionDefinitionOut]
    row_exists: bool = True
    current_task_name: str | None = None


class AgentResultsDefinitionOut(WireModel):
    version: int = 1
    task_name_column: str
    tasks: list[TaskDefinitionOut]


class ResultMatchOut(WireModel):
    index: int
    task_id: int | None = None
    task_name: str | None = None
    reason: str | None = None


class MatchPreviewOut(WireModel):
    task_name_column: str | None
    matched: int
    unmatched: int
    results: list[ResultMatchOut]


class AgentResultsUploadOut(WireModel):
    created_responses: int
    created_ratings: int
    errors: list[str] = []
    pending_evaluations: int = 0
    evaluation_task_id: str | None = None
