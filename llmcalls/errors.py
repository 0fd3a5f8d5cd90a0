"""Exceptions raised by the model-call layer."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """Why a model call failed; callers group failures by it (e.g. every call ``AUTH`` -> bad key)."""

    CONNECTION = "connection"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    BAD_RESPONSE = "bad_response"
    AUTH = "auth"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    CLIENT_ERROR = "client_error"
    REFUSED = "refused"
    """The outbound policy forbids the URL; no request was sent."""


TRANSIENT_KINDS = frozenset(
    {
        ErrorKind.CONNECTION,
        ErrorKind.TIMEOUT,
        ErrorKind.RATE_LIMITED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.BAD_RESPONSE,
    }
)
"""Kinds worth retrying later; the rest fail the same way every time until someone fixes something."""


PROVIDER_EXCERPT_CHARS = 300


def excerpt(text: str, limit: int = PROVIDER_EXCERPT_CHARS) -> str:
    """What a provider said, made safe to show: printable characters only, whitespace collapsed, at most
    `limit` characters. Whatever answered at a model URL reaches users only this way."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text[: limit * 4])
    collapsed = " ".join(printable.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 3] + "..."


class LLMError(Exception):
    """Base class of every error raised by :mod:`llmcalls`."""


class LLMCallError(LLMError):
    """A model call failed for good (after retries, or at once for a non-transient error)."""

    def __init__(
        self,
        summary: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        provider_message: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.summary = summary
        self.kind = kind
        self.status = status
        self.provider_message = excerpt(provider_message) if provider_message else provider_message
        self.attempts = attempts
        super().__init__(self._render())

    @property
    def retryable(self) -> bool:
        """Whether the failure was transient (retrying later may succeed)."""
        return self.kind in TRANSIENT_KINDS

    def _render(self) -> str:
        status = f"HTTP {self.status} " if self.status is not None else ""
        detail = f": {self.provider_message}" if self.provider_message else ""
        plural = "attempt" if self.attempts == 1 else "attempts"
        return f"{self.summary} failed ({status}{self.kind}){detail} [gave up after {self.attempts} {plural}]"


class LLMOutputError(LLMError):
    """The model answered, but its output is unusable (not the requested JSON, missing fields...).

    ``calls`` holds the :class:`~llmcalls.calls.ChatResult` of every answer given, so their tokens and
    cost can still be accounted for.
    """

    def __init__(self, message: str, *, calls: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.calls = calls


class JudgeParseError(LLMOutputError):
    """The judge's answer held no verdict we could read; the rating failed (it is never guessed)."""


class LimiterUnavailable(LLMError):
    """The cluster-wide limit's Redis did not answer, so no slot could be taken and no call was made
    (retried like a connection failure)."""
