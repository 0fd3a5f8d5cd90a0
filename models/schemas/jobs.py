from __future__ import annotations

from pydantic import Field

from models.schemas.common import MAX_ID, RequestModel, WireModel


class TaskStatusOut(WireModel):
    """A batch job's state (`status`, `error_msg`) plus progress extras that REST clients may read."""

    status: str
    error_msg: str | None = None
    state: str | None = None
    processed: int | None = None
    total: int | None = None
    failed: int | None = None


class ExperimentStatusOut(WireModel):
    status: str
    error_msg: str | None = None
    state: str | None = None
    completed_responses: int | None = None
    completed_ratings: int | None = None
    total_responses: int | None = None
    logs_delta: str | None = None
    log_cursor: int | None = None
    generation_task_id: str | None = None
    has_internal_error: bool = False


class StatusQuery(RequestModel):
    log_cursor: int | None = Field(default=None, ge=0, le=MAX_ID, description="Return log lines after this cursor")
    connection_uuid: str | None = None


class StreamQuery(RequestModel):
    polling_interval: float = Field(default=0.5, ge=0.05, le=30)


class CancelOut(WireModel):
    task_id: str
    status: str
