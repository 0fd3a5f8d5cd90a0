"""chat(): answers, tokens, cost, the system message, request parameters and client reuse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from fakellm import FakeLLM
from llmcalls import (
    ChatResult,
    ErrorKind,
    LLMCallError,
    ModelSpec,
    RedisLimiter,
    chat,
    close_all,
    get_transport,
    limiter_for,
)
from llmcalls.calls import request_body
from llmcalls.clients import TRANSPORTS
from tests.listener import Listener

from .conftest import REDIS_URL, RecordedSleep

Run = Callable[..., Any]
Spec = Callable[..., ModelSpec]
# Every wait here is bounded well below this; a hang should fail fast with a stack dump.
pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every test here runs over both HTTP paths: they must answer and fail alike."""
    return request.param


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
    bare = request_body(ModelSpec(model="m"), HELLO, None)
    tuned = request_body(
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


def test_one_transport_per_kind_endpoint_and_loop(fake: FakeLLM) -> None:
    async def transports() -> tuple[object, ...]:
        first = get_transport(fake.base_url, "a")
        again = get_transport(fake.base_url, "a")
        other_key = get_transport(fake.base_url, "b")
        other_kind = get_transport(fake.base_url, "a", kind="openai")
        await close_all()
        return first, again, other_key, other_kind

    first, again, other_key, other_kind = asyncio.run(transports())
    assert first is again
    assert other_key is not first and other_kind is not first
    assert asyncio.run(transports())[0] is not first  # a new event loop gets its own transport


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


def _answering(status: str, body: dict[str, Any] | str, headers: str = "") -> bytes:
    raw = (body if isinstance(body, str) else json.dumps(body)).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
    return f"{head}Connection: close\r\n{headers}\r\n".encode() + raw


def test_an_answer_is_read_leniently_like_the_openai_client_reads_it(spec: Spec, run: Run) -> None:
    # What local servers send: values outside OpenAI's enums, fields it never had, no usage at all.
    odd = {
        "object": "chat.completion.chunk",
        "model": "local-7b",
        "choices": [{"index": 0, "finish_reason": "eos", "message": {"role": "assistant", "content": "Hi!"}}],
        "timings": {"predicted_ms": 12.5},
    }
    with Listener(_answering("200 OK", odd)) as target:
        result = run(chat(spec(base_url=f"http://127.0.0.1:{target.port}/v1"), HELLO))

    assert (result.content, result.model, result.finish_reason) == ("Hi!", "local-7b", "eos")
    assert (result.prompt_tokens, result.completion_tokens, result.attempts) == (0, 0, 1)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        {"choices": []},
        {"choices": [{"index": 0}]},
        {"choices": [{"message": {"role": "assistant", "content": 42}}]},
    ],
    ids=["not-json", "no-choices", "no-message", "content-not-a-string"],
)
def test_an_answer_without_what_is_stored_is_retried_as_unreadable(
    body: dict[str, Any] | str, spec: Spec, run: Run, recorded_sleep: RecordedSleep
) -> None:
    with Listener(_answering("200 OK", body)) as target:
        with pytest.raises(LLMCallError) as caught:
            run(chat(spec(base_url=f"http://127.0.0.1:{target.port}/v1", max_retries=1), HELLO, sleep=recorded_sleep))

    assert (caught.value.kind, caught.value.attempts) == (ErrorKind.BAD_RESPONSE, 2)
    assert target.connections == 2


def test_a_redirect_is_not_followed(spec: Spec, run: Run) -> None:
    with Listener() as elsewhere:
        moved = _answering("302 Found", "", f"Location: http://127.0.0.1:{elsewhere.port}/v1/chat/completions\r\n")
        with Listener(moved) as target:
            with pytest.raises(LLMCallError) as caught:
                run(chat(spec(base_url=f"http://127.0.0.1:{target.port}/v1", max_retries=0), HELLO))

    assert (caught.value.kind, caught.value.status) == (ErrorKind.CLIENT_ERROR, 302)
    assert target.contacted and not elsewhere.contacted


def test_tool_calls_are_kept_without_their_null_fields(spec: Spec, run: Run) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "look_up", "arguments": "{}"}, "index": None}
    answer = {"model": "m", "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}
    with Listener(_answering("200 OK", answer)) as target:
        result = run(chat(spec(base_url=f"http://127.0.0.1:{target.port}/v1"), HELLO))

    assert result.content == ""
    assert result.message["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "look_up", "arguments": "{}"}}
    ]
