"""Errors that services raise and the API turns into `{"detail": ...}` bodies."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class ServiceError(Exception):
    """A failure the client caused or must know about; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Invalid(ServiceError):
    """The request is well-formed JSON but violates a rule; `detail` names the field."""

    status = 422


class Unavailable(ServiceError):
    status = 503


def not_found(kind: str, ident: object) -> NotFound:
    return NotFound(f"{kind} {ident} not found")


def owned(session: Any, model: type[T], project_id: int, ident: Any, label: str, where: str | None = None) -> T:
    """The project's row of `model`; another project's row is reported exactly like a missing one.

    `where` names the request field that referenced it (for example `body.collection_id`).
    """
    row = session.get(model, ident)
    if row is None or row.project_id != project_id:
        prefix = f"{where}: " if where else ""
        raise NotFound(f"{prefix}{label} {ident} not found")
    return row
