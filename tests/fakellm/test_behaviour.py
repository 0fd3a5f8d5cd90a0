"""Scripted faults, per-model overrides, counters, the request log and reset."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from fakellm import FakeLLM
from fakellm.testing import FakeLLMError
from tests.conftest import wait_until

Run = Callable[..., Any]
MESSAGES = [{"role": "user", "content": "hello"}]
JUDGE = [{"role": "user", "content": "<response>fine</response><criterion>ok</criterion>"}]


async def ask(client: openai.AsyncOpenAI, model: str = "fake-model", **kwargs: Any) -> str:
    completion = await client.chat.completions.create(model=model, messages=kwargs.pop("messages", MESSAGES), **kwargs)
    return completion.choices[0].message.content or ""


async def outcome(client: openai.AsyncOpenAI, model: str = "fake-model") -> int:
    """The HTTP status of one request, as seen by the client."""
    try:
        await ask(client, model)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def test_429_carries_retry_after(fake: FakeLLM, run: Run) -> None:
    fake.configure(faults={"429": 1.0}, retry_after=2)
    with pytest.raises(openai.RateLimitError) as caught:
        run(ask)
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "2"
    assert error.body["code"] == "rate_limit_exceeded"  # type: ignore[index]

    fake.configure(faults={"429": 1.0}, retry_after=None)
    with pytest.raises(openai.RateLimitError) as caught:
        run(ask)
    assert "retry-after" not in caught.value.response.headers


@pytest.mark.parametrize(
    ("fault", "error_type", "status"),
    [("500", openai.InternalServerError, 500), ("401", openai.AuthenticationError, 401)],
)
def test_error_faults(fake: FakeLLM, run: Run, fault: str, error_type: type[Exception], status: int) -> None:
    fake.configure(faults={fault: 1.0})
    with pytest.raises(error_type) as caught:
        run(ask)
    body = json.loads(caught.value.response.text)  # type: ignore[attr-defined]
    assert set(body["error"]) >= {"message", "type", "code"}
    assert fake.requests()[0]["fault"] == fault and fake.stats()["by_status"] == {str(status): 1}


def test_hang_times_out_the_client_and_is_observed(fake: FakeLLM, run: Run) -> None:
    fake.configure(faults={"hang": 1.0}, hang_seconds=600)
    with pytest.raises(openai.APITimeoutError):
        run(ask, timeout=0.5)
    # The client hung up: the server notices, records 499 and frees the in-flight slot.
    wait_until(lambda: fake.stats()["in_flight"] == 0)
    [record] = fake.requests()
    assert record["fault"] == "hang" and record["status"] == 499
    assert record["ended_at"] - record["started_at"] >= 0.4


def test_hang_does_not_block_others_and_reset_releases_it(fake: FakeLLM, run: Run) -> None:
    fake.configure(schedule={"1": "hang"}, hang_seconds=600)

    async def scenario(client: openai.AsyncOpenAI) -> tuple[str, str]:
        hung = asyncio.create_task(ask(client))
        await asyncio.to_thread(wait_until, lambda: fake.stats()["in_flight"] == 1)
        other = await ask(client)
        assert fake.stats()["in_flight"] == 1
        await asyncio.to_thread(fake.reset)
        return other, await asyncio.wait_for(hung, 10)

    other, released = run(scenario)
    assert other == released == "Fake answer to: hello"
    assert fake.stats()["calls"] == 0


def test_short_hang_answers_after_hang_seconds(fake: FakeLLM, run: Run) -> None:
    fake.configure(faults={"hang": 1.0}, hang_seconds=0.3)
    assert run(ask) == "Fake answer to: hello"
    [record] = fake.requests()
    assert record["fault"] == "hang" and record["status"] == 200
    assert record["ended_at"] - record["started_at"] >= 0.29


def test_malformed_body_is_a_client_error(fake: FakeLLM, run: Run) -> None:
    fake.configure(faults={"malformed": 1.0})
    with pytest.raises((ValueError, openai.APIError)):
        run(ask)
    assert fake.requests()[0]["fault"] == "malformed" and fake.stats()["by_status"] == {"200": 1}


def test_refuse_json_schema(fake: FakeLLM, run: Run) -> None:
    fake.configure(refuse_json_schema=True)
    schema_format = {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        run(lambda client: ask(client, response_format=schema_format))
    assert caught.value.status_code == 400
    assert "response_format json_schema is not supported" in caught.value.message
    assert json.loads(run(lambda client: ask(client, response_format={"type": "json_object"}))) == {
        "answer": "Fake answer to: hello"
    }
    assert fake.stats()["by_status"] == {"400": 1, "200": 1}


def test_judge_junk_has_no_verdict(fake: FakeLLM, run: Run) -> None:
    fake.configure(judge_junk=True)

    async def scenario(client: openai.AsyncOpenAI) -> list[str]:
        return [
            await ask(client, "fake-judge", messages=JUDGE),
            await ask(client, "fake-judge", messages=JUDGE, response_format={"type": "json_object"}),
            await ask(client),
        ]

    plain, as_json, generation = run(scenario)
    for junk in (plain, as_json):
        assert "yes" not in junk.lower() and "no" not in junk.lower()
        with pytest.raises(ValueError):
            json.loads(junk)
    assert generation == "Fake answer to: hello"
    assert [r["fault"] for r in fake.requests()] == ["judge_junk", "judge_junk", None]


def test_schedule_hits_exactly_the_scheduled_requests(fake: FakeLLM, run: Run) -> None:
    fake.configure(schedule={"3": "500", "4": "429", "6": "401"}, faults={"429": 0.0})

    async def scenario(client: openai.AsyncOpenAI) -> list[int]:
        return [await outcome(client) for _ in range(7)]

    assert run(scenario) == [200, 200, 500, 429, 200, 401, 200]
    records = fake.requests()
    assert [r["seq"] for r in records] == list(range(1, 8))
    assert [r["fault"] for r in records] == [None, None, "500", "429", None, "401", None]
    # Numbering restarts after a reset.
    fake.reset()
    assert run(scenario) == [200, 200, 500, 429, 200, 401, 200]


def test_schedule_ok_overrides_random_faults(fake: FakeLLM, run: Run) -> None:
    fake.configure(faults={"500": 1.0}, schedule={"2": "ok"})

    async def scenario(client: openai.AsyncOpenAI) -> list[int]:
        return [await outcome(client) for _ in range(3)]

    assert run(scenario) == [500, 200, 500]


def test_random_faults_are_reproducible_with_the_seed(fake: FakeLLM, run: Run) -> None:
    fake.configure(faults={"429": 0.3, "500": 0.2}, seed=42)

    async def scenario(client: openai.AsyncOpenAI) -> list[int]:
        return [await outcome(client) for _ in range(40)]

    first = run(scenario)
    fake.reset()
    assert run(scenario) == first
    assert {200, 429, 500} <= set(first)
    fake.configure(faults={"429": 0.3, "500": 0.2}, seed=43)
    assert run(scenario) != first


def test_per_model_overrides(fake: FakeLLM, run: Run) -> None:
    fake.configure(models={"always-401": {"faults": {"401": 1.0}}, "slow": {"latency_ms": 200}})

    async def scenario(client: openai.AsyncOpenAI) -> list[int]:
        return [await outcome(client, model) for model in ("always-401", "fake-model", "slow", "always-401")]

    assert run(scenario) == [401, 200, 200, 401]
    stats = fake.stats()
    assert stats["by_model"] == {"always-401": 2, "fake-model": 1, "slow": 1}
    assert stats["by_status"] == {"401": 2, "200": 2}
    slow = next(r for r in fake.requests() if r["model"] == "slow")
    assert slow["ended_at"] - slow["started_at"] >= 0.19


def test_concurrency_counters_and_log_timestamps(fake: FakeLLM, run: Run) -> None:
    fake.configure(latency_ms=300)
    before = time.time()

    async def scenario(client: openai.AsyncOpenAI) -> list[str]:
        return list(await asyncio.gather(*(ask(client) for _ in range(10))))

    assert run(scenario) == ["Fake answer to: hello"] * 10
    after = time.time()
    stats = fake.stats()
    assert stats["calls"] == 10 and stats["by_status"] == {"200": 10}
    assert stats["in_flight"] == 0 and stats["max_in_flight"] == 10
    assert stats["by_kind"] == {"generate": 10, "judge": 0} and stats["by_model"] == {"fake-model": 10}

    records = fake.requests()
    assert sorted(r["seq"] for r in records) == list(range(1, 11))
    assert all(r["status"] == 200 and r["kind"] == "generate" and r["fault"] is None for r in records)
    assert all(r["ended_at"] - r["started_at"] >= 0.29 for r in records)
    assert max(r["started_at"] for r in records) < min(r["ended_at"] for r in records)  # they overlapped
    assert all(before - 5 <= r["started_at"] <= r["ended_at"] <= after + 5 for r in records)
    assert [r["seq"] for r in fake.requests(since=7)] == [8, 9, 10]


def test_jitter_stays_within_bounds(fake: FakeLLM, run: Run) -> None:
    fake.configure(latency_ms=50, jitter_ms=100, seed=1)

    async def scenario(client: openai.AsyncOpenAI) -> None:
        await asyncio.gather(*(ask(client) for _ in range(5)))

    run(scenario)
    durations = [r["ended_at"] - r["started_at"] for r in fake.requests()]
    assert all(0.049 <= d < 5 for d in durations)


def test_reset_zeroes_counters_and_log_but_keeps_config(fake: FakeLLM, run: Run) -> None:
    fake.configure(faults={"500": 1.0}, latency_ms=1)
    with pytest.raises(openai.InternalServerError):
        run(ask)
    assert fake.stats()["calls"] == 1
    fake.reset()
    assert fake.stats() == {
        "calls": 0,
        "by_status": {},
        "in_flight": 0,
        "max_in_flight": 0,
        "by_model": {},
        "by_kind": {"generate": 0, "judge": 0},
    }
    assert fake.requests() == []
    assert fake.config()["faults"]["500"] == 1.0 and fake.config()["latency_ms"] == 1


def test_config_api_replace_merge_and_validation(fake: FakeLLM) -> None:
    config = fake.configure({"latency_ms": 5}, faults={"429": 0.5})
    assert config["latency_ms"] == 5 and config["faults"]["429"] == 0.5 and config["hang_seconds"] == 600
    assert fake.update_config(jitter_ms=2)["latency_ms"] == 5
    assert fake.configure(jitter_ms=2)["latency_ms"] == 0  # configure replaces
    with pytest.raises(FakeLLMError, match="unknown key"):
        fake.configure(latencyms=3)
    with pytest.raises(FakeLLMError, match="more than 1"):
        fake.configure(faults={"429": 0.6, "500": 0.6})
    assert fake.config()["jitter_ms"] == 2  # a rejected config changes nothing
