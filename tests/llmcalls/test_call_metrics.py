"""Model calls feed the Prometheus counters and the tally a job's run log reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import REGISTRY

from fakellm.testing import FakeLLM
from llmcalls import LLMCallError, LocalLimiter, ModelSpec, chat
from services import metrics
from tests.llmcalls.conftest import RecordedSleep
from tests.metrics_text import sample_sum

HELLO = [{"role": "user", "content": "hello"}]


def _sample(name: str, **labels: str) -> float:
    return sample_sum(generate_latest(REGISTRY).decode(), name, **labels)


def test_a_429_then_an_answer_and_a_bad_key_are_counted_by_outcome(
    fake: FakeLLM, spec: Callable[..., ModelSpec], run: Callable[[Awaitable[Any]], Any], recorded_sleep: RecordedSleep
) -> None:
    model = "fake-model-metrics"
    fake.configure(schedule={"1": "429", "3": "401"})
    before = {
        name: _sample(name, model=model)
        for name in (
            "assay_model_retries_total",
            "assay_model_rate_limited_total",
            "assay_model_call_duration_seconds_count",
        )
    }

    async def scenario() -> metrics.CallTally:
        tally = metrics.track_calls()
        limiter = LocalLimiter(4)
        result = await chat(spec(model=model), HELLO, limiter=limiter, sleep=recorded_sleep)
        with pytest.raises(LLMCallError):
            await chat(spec(model=model), HELLO, limiter=limiter, sleep=recorded_sleep)
        assert result.attempts == 2
        return tally

    tally = run(scenario())
    assert tally.summary() == "Model calls here: 1 answered, 1 failed (auth: 1); 1 retries, 1 rate-limited (429)"
    assert _sample("assay_model_retries_total", model=model) - before["assay_model_retries_total"] == 1
    assert _sample("assay_model_rate_limited_total", model=model) - before["assay_model_rate_limited_total"] == 1
    assert (
        _sample("assay_model_call_duration_seconds_count", model=model)
        - before["assay_model_call_duration_seconds_count"]
        == 2
    )
    assert _sample("assay_model_calls_total", model=model, outcome="auth") >= 1
    assert _sample("assay_model_concurrency_limit", model=model) == 2  # the 429 halved the limit of 4
    assert tally.take_summary() is not None and tally.summary() is None


def test_tokens_and_cost_of_an_answer(
    fake: FakeLLM, spec: Callable[..., ModelSpec], run: Callable[[Awaitable[Any]], Any]
) -> None:
    model = "fake-model-tokens"
    before = _sample("assay_model_tokens_total", model=model, direction="input")
    result = run(chat(spec(model=model, input_price_per_mtok=1_000_000.0), HELLO))
    assert _sample("assay_model_tokens_total", model=model, direction="input") - before == result.prompt_tokens > 0
    assert _sample("assay_model_cost_usd_total", model=model) >= result.prompt_tokens
