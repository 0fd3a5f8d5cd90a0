"""chat(): answers, tokens, cost, the system message, request parameters and client reuse."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fakellm import FakeLLM
from llmcalls import ChatResult, ModelSpec, RedisLimiter, chat, close_all, get_client, limiter_for
from llmcalls.calls import request_params

from .conftest import REDIS_URL

Run = Callable[..., Any]
Spec = Callable[..., ModelSpec]
# Every wait here is bounded well below this; a hang should fail fast with a stack dump.
pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "hello there"}]


def test_chat_returns_content_tokens_and_cost(fake: FakeLLM, spec: Spec, run: Run) -> None:
    model = spec(input_price_per_mtok=2.0, output_price_per_mtok=8.0)

    result: ChatResult = run(chat(model, HELLO))

    assert result.content == "Fake answer to: hello there"
    assert result.message == {"role": "assistant", "content": "Fake answer to: hello there"}
    assert (result.prompt_tokens, result.completion_tokens, result.reasoning_tokens) == (2, 5, 0)
    assert result.input_cost == pytest.approx(2 * 2.0 / 1_000_000)
    assert result.output_cost == pytest.approx(5 * 8.0 / 1_000_000)
    assert result.total_cost == pytest.approx(result.input_cost + result.output_cost)
    assert result.attempts == 1
    assert result.model == "fake-model"
    assert fake.stats()["calls"] == 1


def test_the_api_key_is_sent_as_a_bearer_token(fake: FakeLLM, spec: Spec, run: Run) -> None:
    run(chat(spec(api_key="sk-right-one"), HELLO))

    assert fake.requests()[-1]["api_key"] == "sk-right-one"


def test_system_message_is_prepended(spec: Spec, run: Run) -> None:
    model = spec(system_message="Answer in three short words")

    result = run(chat(model, HELLO))

    # The fake counts the words of every message it received: 5 system words + 2 user words.
    assert result.prompt_tokens == 7


def test_own_system_message_is_kept(spec: Spec, run: Run) -> None:
    model = spec(system_message="Answer in three short words")
    messages = [{"role": "system", "content": "Be brief"}, *HELLO]

    result = run(chat(model, messages))

    assert result.prompt_tokens == 4


def test_optional_settings_are_sent_only_when_set() -> None:
    bare = request_params(ModelSpec(model="m"), HELLO, None)
    tuned = request_params(
        ModelSpec(model="m", temperature=0.0, top_p=0.5, max_tokens=64, reasoning_effort="low"),
        HELLO,
        {"type": "json_object"},
    )

    assert not {"temperature", "top_p", "max_tokens", "reasoning_effort", "response_format"} & bare.keys()
    assert tuned["temperature"] == 0.0
    assert (tuned["top_p"], tuned["max_tokens"], tuned["reasoning_effort"]) == (0.5, 64, "low")
    assert tuned["response_format"] == {"type": "json_object"}


def test_settings_reach_the_server(spec: Spec, run: Run) -> None:
    model = spec(temperature=0.2, top_p=0.9, max_tokens=32, reasoning_effort="low")

    assert run(chat(model, HELLO)).content == "Fake answer to: hello there"


def test_api_key_is_not_in_the_repr(spec: Spec) -> None:
    assert "test-key" not in repr(spec())
    assert "test-key" not in spec().limiter_key


def test_one_client_per_endpoint_and_loop(fake: FakeLLM) -> None:
    async def clients() -> tuple[object, ...]:
        first = get_client(fake.base_url, "a")
        again = get_client(fake.base_url, "a")
        other_key = get_client(fake.base_url, "b")
        await close_all()
        return first, again, other_key

    first, again, other_key = asyncio.run(clients())
    assert first is again
    assert other_key is not first
    assert asyncio.run(clients())[0] is not first  # a new event loop gets its own client


def test_limiter_for_uses_the_spec_limit(spec: Spec, run: Run) -> None:
    async def limits() -> tuple[int, int, str]:
        local = limiter_for(spec(max_connections=3))
        shared = limiter_for(spec(max_connections=5), REDIS_URL)
        assert isinstance(shared, RedisLimiter)
        try:
            return await local.effective_limit(), await shared.effective_limit(), shared.key
        finally:
            await shared.aclose()

    assert run(limits()) == (3, 5, spec().limiter_key)


def test_duration_is_the_models_time_not_the_wait_for_a_slot(spec: Spec, run: Run) -> None:
    from llmcalls.limiter import LocalLimiter

    async def queued() -> tuple[ChatResult, float]:
        limiter = LocalLimiter(1)
        started = asyncio.get_running_loop().time()
        async with limiter.slot():  # another call holds the only slot for a second
            task = asyncio.create_task(chat(spec(), HELLO, limiter=limiter))
            await asyncio.sleep(1.0)
        result = await task
        return result, asyncio.get_running_loop().time() - started

    result, wall = run(queued())
    assert 0 < result.duration <= wall - 1.0  # the second spent queueing is not response time
