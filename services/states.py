"""Task states, defined once and shared by the API and the workers."""

from enum import StrEnum


class TaskState(StrEnum):
    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"


TERMINAL_STATES = frozenset(
    {TaskState.SUCCESS, TaskState.FAILURE, TaskState.REVOKED, TaskState.REJECTED, TaskState.TIMEOUT}
)


class JobKind(StrEnum):
    EXPERIMENT = "experiment"
    RESPONSES_BATCH = "responses_batch"
    RATINGS_BATCH = "ratings_batch"
