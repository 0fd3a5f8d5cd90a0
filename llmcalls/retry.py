"""Retrying transient model-call failures: exponential backoff, full jitter, ``Retry-After``.

Connect errors, timeouts, 429, 408, 5xx and unreadable 200 bodies are retried; any other 4xx fails
at once. Every failure is turned into :class:`~llmcalls.errors.LLMCallError`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TypeVar

import aiohttp
import openai

from .errors import TRANSIENT_KINDS, ErrorKind, LimiterUnavailable, LLMCallError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

_STATUS_KINDS: Mapping[int, ErrorKind] = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.AUTH,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    422: ErrorKind.BAD_REQUEST,
    429: ErrorKind.RATE_LIMITED,
}


class UnreadableResponse(Exception):
    """A 200 answer without the parts a chat completion must have (retried like a 5xx)."""


class AttemptFailed(Exception):
    """An attempt that failed in a way already classified (the aiohttp transport raises these)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry. ``sleep``/``random`` are injectable for unit tests."""

    max_retries: int = 3
    """Retries after the first attempt, so at most ``max_retries + 1`` attempts."""
    total_timeout: float = 120.0
    """Upper bound on the whole call, attempts and waits included."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    """A provider's ``Retry-After`` is honoured up to this many seconds (guards against absurd values)."""
    sleep: Sleep = asyncio.sleep
    random: Callable[[], float] = field(default=random.random)

    def backoff(self, retry: int) -> float:
        """Full-jitter exponential backoff before retry number ``retry`` (1-based)."""
        return self.random() * min(self.max_delay, self.base_delay * 2 ** (retry - 1))

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Wait before retry ``retry``: never less than the provider's (clamped) ``Retry-After``."""
        if retry_after is None:
            return self.backoff(retry)
        # A little jitter on top keeps workers told the same Retry-After from returning in lockstep.
        return min(retry_after, self.max_retry_after) + self.random() * self.base_delay


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failed attempt."""

    kind: ErrorKind
    status: int | None
    message: str
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed."""
        return self.kind in TRANSIENT_KINDS


async def call_with_retries(
    attempt: Callable[[float], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    deadline: float | None = None,
) -> tuple[T, int]:
    """Run ``attempt(seconds_left)`` until it succeeds; return its result and the attempts made.

    ``what`` names the call in error messages; ``deadline`` (``time.monotonic()``) tightens the
    policy's total bound. Each attempt is cut off when the time left runs out; it also gets that
    time, to bound its own waits without relying on cancellation alone.
    """
    start = time.monotonic()
    deadline = min(float("inf") if deadline is None else deadline, start + policy.total_timeout)
    attempts = 0
    while True:
        attempts += 1
        left = max(0.0, deadline - time.monotonic())
        try:
            async with asyncio.timeout(left):
                return await attempt(left), attempts
        except Exception as exc:  # classify() re-raises what it does not know
            failure = classify(exc)
        wait = _next_wait(failure, attempts, policy, deadline)
        if wait is None:
            raise _give_up(failure, what, attempts)
        await policy.sleep(wait)


def _next_wait(failure: Failure, attempts: int, policy: RetryPolicy, deadline: float) -> float | None:
    if not failure.retryable or attempts > policy.max_retries:
        return None
    wait = policy.delay(attempts, failure.retry_after)
    return None if time.monotonic() + wait >= deadline else wait


def _give_up(failure: Failure, what: str, attempts: int) -> LLMCallError:
    return LLMCallError(
        what, kind=failure.kind, status=failure.status, provider_message=failure.message, attempts=attempts
    )


def classify(exc: BaseException) -> Failure:
    """Map an exception from one attempt to a :class:`Failure`; re-raise anything unknown."""
    if isinstance(exc, AttemptFailed):
        return exc.failure
    if isinstance(exc, openai.APIStatusError):
        return status_failure(exc.status_code, exc.response.headers, exc.body, exc.message)
    if isinstance(exc, openai.APIConnectionError) and (refused := _connection_cause(exc)):
        return Failure(ErrorKind.CONNECTION, None, f"cannot connect ({refused})")
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        # A limiter's TimeoutError says which slot it waited for; asyncio's own is blank.
        detail = str(exc) if isinstance(exc, TimeoutError) and str(exc) else "the request timed out"
        return Failure(ErrorKind.TIMEOUT, None, detail)
    if isinstance(exc, openai.APIConnectionError):
        return Failure(ErrorKind.CONNECTION, None, _cause_message(exc))
    if isinstance(exc, LimiterUnavailable):
        return Failure(ErrorKind.CONNECTION, None, str(exc))
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | UnreadableResponse):
        return Failure(ErrorKind.BAD_RESPONSE, None, f"unreadable response body ({exc})")
    raise exc


def is_rate_limit(exc: BaseException) -> bool:
    """Whether an attempt failed with HTTP 429, whichever transport made it."""
    if isinstance(exc, AttemptFailed):
        return exc.failure.kind is ErrorKind.RATE_LIMITED
    return isinstance(exc, openai.RateLimitError)


def status_failure(status: int, headers: Mapping[str, str], body: object, fallback: str) -> Failure:
    """An HTTP error answer as a :class:`Failure`: its kind, the provider's message, its ``Retry-After``."""
    kind = _STATUS_KINDS.get(status)
    if kind is None:
        kind = ErrorKind.SERVER_ERROR if status >= 500 else ErrorKind.CLIENT_ERROR
    return Failure(kind, status, provider_message(body, fallback), parse_retry_after(headers))


def provider_message(body: object, fallback: str) -> str:
    """The provider's own error message (``error.message`` in OpenAI's body shape), else ``fallback``."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, Mapping) else inner
        if message:
            return str(message)
    return fallback


def _connection_cause(exc: BaseException) -> BaseException | None:
    # The aiohttp transport reports a refused connection as a connect *timeout*; the cause tells.
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, ConnectionError | aiohttp.ClientConnectorError):
            return cause
        cause = cause.__cause__
    return None


def _cause_message(exc: BaseException) -> str:
    cause = exc.__cause__
    return f"{exc} ({cause})" if cause and str(cause) else str(exc)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = _float(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _float(value)
    if seconds is not None:
        return max(0.0, seconds)
    return _seconds_until(value, time.time() if now is None else now)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
