"""Retries against the fake server: what is retried, how long we wait, and when we give up."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest

from fakellm import FakeLLM
from llmcalls import ErrorKind, LLMCallError, ModelSpec, chat
from llmcalls.clients import TRANSPORTS
from llmcalls.retry import RetryPolicy, parse_retry_after

from .conftest import RecordedSleep, settled_statuses

Run = Callable[..., Any]
Spec = Callable[..., ModelSpec]
# Every wait here is bounded well below this; a hang should fail fast with a stack dump.
pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "hello"}]
# Timestamps come from one clock on one host; this covers float rounding and scheduler noise only.
SLACK = 0.05
DEFAULTS = RetryPolicy()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every test here runs over both HTTP paths: they must answer and fail alike."""
    return request.param


def test_429_then_500_succeeds_on_third_attempt_after_retry_after(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(schedule={"1": "429", "2": "500"}, retry_after=1)

    result = run(chat(spec(), HELLO))

    assert result.content == "Fake answer to: hello"
    assert result.attempts == 3
    first, second, third = fake.requests()
    assert (first["status"], second["status"], third["status"]) == (429, 500, 200)
    assert second["started_at"] - first["ended_at"] >= 1.0 - SLACK


def test_401_fails_at_once_with_a_readable_message(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(faults={"401": 1.0})

    with pytest.raises(LLMCallError) as caught:
        run(chat(spec(max_retries=5), HELLO))

    error = caught.value
    assert (error.kind, error.status, error.attempts, error.retryable) == (ErrorKind.AUTH, 401, 1, False)
    assert "HTTP 401" in str(error)
    assert "Incorrect API key provided" in str(error)
    assert "1 attempt" in str(error)
    assert fake.stats()["calls"] == 1


def test_refused_request_is_not_retried(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(refuse_json_schema=True)
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}

    with pytest.raises(LLMCallError) as caught:
        run(chat(spec(), HELLO, response_format=schema))

    assert (caught.value.kind, caught.value.status) == (ErrorKind.BAD_REQUEST, 400)
    assert "json_schema is not supported" in str(caught.value)
    assert fake.stats()["calls"] == 1


def test_max_retries_bounds_the_attempts(fake: FakeLLM, spec: Spec, run: Run, recorded_sleep: RecordedSleep) -> None:
    fake.configure(faults={"500": 1.0})

    with pytest.raises(LLMCallError) as caught:
        run(chat(spec(max_retries=2), HELLO, sleep=recorded_sleep))

    error = caught.value
    assert (error.kind, error.status, error.attempts, error.retryable) == (ErrorKind.SERVER_ERROR, 500, 3, True)
    assert "gave up after 3 attempts" in str(error)
    assert fake.stats()["calls"] == 3
    assert len(recorded_sleep.waits) == 2


def test_hang_past_the_timeout_is_retried_then_fails(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(faults={"hang": 1.0}, hang_seconds=30)

    with pytest.raises(LLMCallError) as caught:
        run(chat(spec(timeout=0.5, max_retries=1), HELLO))

    error = caught.value
    assert (error.kind, error.attempts) == (ErrorKind.TIMEOUT, 2)
    assert "timed out" in str(error)
    assert settled_statuses(fake) == [499, 499]  # we hung up both times


def test_hang_then_success(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(schedule={"1": "hang"}, hang_seconds=30)

    result = run(chat(spec(timeout=0.5), HELLO))

    assert (result.attempts, result.content) == (2, "Fake answer to: hello")


def test_malformed_body_is_retried(fake: FakeLLM, spec: Spec, run: Run, recorded_sleep: RecordedSleep) -> None:
    fake.configure(schedule={"1": "malformed"})

    assert run(chat(spec(), HELLO, sleep=recorded_sleep)).attempts == 2


def test_connection_refused_is_retried_then_fails(transport: str, run: Run, recorded_sleep: RecordedSleep) -> None:
    dead = ModelSpec(model="m", base_url="http://127.0.0.1:9/v1", max_retries=2, timeout=5, transport=transport)

    with pytest.raises(LLMCallError) as caught:
        run(chat(dead, HELLO, sleep=recorded_sleep))

    assert (caught.value.kind, caught.value.attempts, caught.value.retryable) == (ErrorKind.CONNECTION, 3, True)


def test_never_waits_less_than_retry_after(fake: FakeLLM, spec: Spec, run: Run, recorded_sleep: RecordedSleep) -> None:
    fake.configure(schedule={"1": "429", "2": "429"}, retry_after=7)

    run(chat(spec(), HELLO, sleep=recorded_sleep))

    assert len(recorded_sleep.waits) == 2
    assert all(7 <= wait <= 7 + DEFAULTS.base_delay for wait in recorded_sleep.waits)


def test_absurd_retry_after_is_clamped(fake: FakeLLM, spec: Spec, run: Run, recorded_sleep: RecordedSleep) -> None:
    fake.configure(schedule={"1": "429"}, retry_after=86400)

    run(chat(spec(total_timeout=600), HELLO, sleep=recorded_sleep))

    (wait,) = recorded_sleep.waits
    assert DEFAULTS.max_retry_after <= wait <= DEFAULTS.max_retry_after + DEFAULTS.base_delay


def test_backoff_grows_without_retry_after(fake: FakeLLM, spec: Spec, run: Run, recorded_sleep: RecordedSleep) -> None:
    fake.configure(schedule={"1": "500", "2": "500", "3": "500"})

    assert run(chat(spec(), HELLO, sleep=recorded_sleep)).attempts == 4

    caps = [DEFAULTS.base_delay * 2**n for n in range(3)]
    assert all(0 <= wait <= cap for wait, cap in zip(recorded_sleep.waits, caps, strict=True))


def test_total_timeout_stops_retrying(fake: FakeLLM, spec: Spec, run: Run) -> None:
    # Each wait is at least 2 s, so a second wait would end past the 3 s bound: we give up instead.
    fake.configure(faults={"429": 1.0}, retry_after=2)

    with pytest.raises(LLMCallError) as caught:
        run(chat(spec(max_retries=10, total_timeout=3), HELLO))

    assert (caught.value.kind, caught.value.attempts) == (ErrorKind.RATE_LIMITED, 2)
    assert fake.stats()["calls"] == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": formatdate(1_000_030, usegmt=True)}, 30.0),
        ({"retry-after": formatdate(999_000, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=1_000_000) == expected
