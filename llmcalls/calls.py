"""One chat completion with retries, an optional concurrency limit, token counts and cost."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from services import metrics

from .clients import DEFAULT_BASE_URL, DEFAULT_MAX_CONNECTIONS, Transport, TransportKind, get_transport
from .errors import ErrorKind, LLMCallError
from .limiter import Limiter, LocalLimiter, RedisLimiter
from .outbound import OutboundPolicy, OutboundRefused, check_url_async
from .retry import RetryPolicy, Sleep, UnreadableResponse, call_with_retries, is_rate_limit

Message = dict[str, Any]
_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Which model to call, how, and what its tokens cost."""

    model: str
    base_url: str | None = None
    """``None`` means OpenAI's public API."""
    api_key: str | None = field(default=None, repr=False)
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    system_message: str | None = None
    timeout: float = 60.0
    """Seconds per HTTP attempt."""
    max_retries: int = 3
    """Retries after the first attempt (like the openai client's own setting)."""
    total_timeout: float = 120.0
    """Seconds for a whole call, retries and waits included."""
    input_price_per_mtok: float = 0.0
    output_price_per_mtok: float = 0.0
    max_connections: int = 10
    """Concurrent calls allowed to this provider account: the limit of :func:`limiter_for`."""
    outbound: OutboundPolicy | None = None
    """The policy ``base_url`` is checked against before every call; ``None`` for the operator's own URL."""
    transport: TransportKind = "aiohttp"
    """Which HTTP path carries the call (see :mod:`llmcalls.clients`)."""

    def retry_policy(self, sleep: Sleep | None = None) -> RetryPolicy:
        """The retry policy this spec asks for (``sleep`` is injectable for unit tests)."""
        policy = RetryPolicy(max_retries=self.max_retries, total_timeout=self.total_timeout)
        return policy if sleep is None else dataclasses.replace(policy, sleep=sleep)

    @property
    def limiter_key(self) -> str:
        """A Redis key naming this provider account and model; the API key only enters hashed."""
        identity = f"{self.base_url or DEFAULT_BASE_URL}\n{self.api_key or ''}\n{self.model}"
        return "assay:llm:limit:" + hashlib.sha256(identity.encode()).hexdigest()[:24]


def limiter_for(spec: ModelSpec, redis: str | Redis | None = None) -> Limiter:
    """A limiter allowing ``spec.max_connections`` concurrent calls to ``spec``'s account and model.

    Cluster-wide when ``redis`` (a URL or client) is given, else for this event loop only. Keep
    one per event loop and spec and pass it to every call; a new one per call limits nothing.
    """
    if redis is None:
        return LocalLimiter(spec.max_connections)
    return RedisLimiter(redis, spec.limiter_key, spec.max_connections)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """The assistant's answer and what it took to get it."""

    content: str
    message: Message
    """The assistant message as a dict: ``role``, ``content`` and ``tool_calls`` when present."""
    model: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    duration: float
    """Seconds for the whole call, retries included."""
    input_cost: float
    output_cost: float
    attempts: int
    finish_reason: str | None = None

    @property
    def total_cost(self) -> float:
        """Input plus output cost."""
        return self.input_cost + self.output_cost


async def chat(
    spec: ModelSpec,
    messages: Sequence[Mapping[str, Any]],
    *,
    response_format: Mapping[str, Any] | None = None,
    limiter: Limiter | None = None,
    deadline: float | None = None,
    sleep: Sleep | None = None,
) -> ChatResult:
    """Ask ``spec.model`` for one chat completion, retrying transient failures.

    ``limiter`` bounds concurrency per attempt (its slot is not held while waiting to retry);
    ``deadline`` (a ``time.monotonic()`` value) can tighten ``spec.total_timeout``.
    Raises :class:`~llmcalls.errors.LLMCallError` when the call fails for good.
    """
    started = time.monotonic()
    what = f"chat completion with {spec.model!r} at {spec.base_url or DEFAULT_BASE_URL}"
    await _check_outbound(spec, what)
    # The transport is shared by every spec of this endpoint, so its pool is sized generously and
    # never becomes a hidden second limit; the limiter bounds concurrency.
    pool = max(spec.max_connections, DEFAULT_MAX_CONNECTIONS)
    transport = get_transport(spec.base_url, spec.api_key, kind=spec.transport, max_connections=pool)
    body = request_body(spec, messages, response_format)

    model_seconds: list[float] = []

    async def attempt(seconds_left: float) -> dict[str, Any]:
        return await _attempt(transport, body, spec.timeout, limiter, seconds_left, model_seconds)

    try:
        completion, attempts = await call_with_retries(attempt, spec.retry_policy(sleep), what=what, deadline=deadline)
    except LLMCallError as exc:
        metrics.model_call(spec.model, str(exc.kind), time.monotonic() - started, exc.attempts)
        raise
    # The model's own time on the answer that was used: neither the wait for a free slot (queueing behind
    # the cluster-wide limit) nor failed attempts and their backoff count as response time.
    result = _result(spec, completion, attempts, model_seconds[-1] if model_seconds else time.monotonic() - started)
    metrics.model_call(spec.model, "success", result.duration, attempts)
    metrics.tokens(spec.model, result.prompt_tokens, result.completion_tokens, result.total_cost)
    return result


async def _check_outbound(spec: ModelSpec, what: str) -> None:
    """Refuse, before connecting, a base URL that resolves where the policy forbids (DNS may have changed)."""
    if spec.outbound is None or spec.base_url is None:
        return
    try:
        await check_url_async(spec.base_url, spec.outbound)
    except OutboundRefused as exc:
        raise LLMCallError(what, kind=ErrorKind.REFUSED, provider_message=f"llm_base_url refused: {exc}") from None


def request_body(
    spec: ModelSpec, messages: Sequence[Mapping[str, Any]], response_format: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions``; optional settings only when set."""
    optional = {
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "max_tokens": spec.max_tokens,
        "reasoning_effort": spec.reasoning_effort,
        "response_format": response_format,
    }
    params: dict[str, Any] = {"model": spec.model, "messages": with_system_message(spec, messages)}
    params.update({name: value for name, value in optional.items() if value is not None})
    return params


def with_system_message(spec: ModelSpec, messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """``messages`` with the spec's system message first, unless they already start with one."""
    prepared = [dict(message) for message in messages]
    if spec.system_message and not (prepared and prepared[0].get("role") in _SYSTEM_ROLES):
        prepared.insert(0, {"role": "system", "content": spec.system_message})
    return prepared


async def _attempt(
    transport: Transport,
    body: dict[str, Any],
    timeout: float,
    limiter: Limiter | None,
    seconds_left: float,
    timing: list[float],
) -> dict[str, Any]:
    if limiter is None:
        return _checked(await _timed(transport, body, timeout, timing))
    async with limiter.slot(timeout=seconds_left):
        try:
            completion = await _timed(transport, body, timeout, timing)
        except Exception as exc:
            if is_rate_limit(exc):
                metrics.rate_limited(body["model"])
                await limiter.on_rate_limit()
                await _report_limit(body["model"], limiter, now=True)
            raise
    await limiter.on_success()
    await _report_limit(body["model"], limiter)
    return _checked(completion)


async def _report_limit(model: str, limiter: Limiter, now: bool = False) -> None:
    """Keep the limit gauge current: at once after a 429, else every few seconds (one Redis read)."""
    if not (now or metrics.limit_due(model)):
        return
    try:
        metrics.model_limit(model, await limiter.effective_limit())
    except Exception:  # the gauge is advice; the call's answer is already paid for
        return


async def _timed(transport: Transport, body: dict[str, Any], timeout: float, timing: list[float]) -> Any:
    started = time.monotonic()
    completion = await transport.complete(body, timeout)
    timing.append(time.monotonic() - started)
    return completion


def _checked(completion: Any) -> dict[str, Any]:
    """The completion, once the parts that are stored are there and of their type (else retried as unreadable)."""
    if not isinstance(completion, dict):
        raise UnreadableResponse("the answer is not a JSON object")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        raise UnreadableResponse("the completion has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise UnreadableResponse("the completion's first choice has no message")
    if not isinstance(message.get("content"), str | None):
        raise UnreadableResponse("the message's content is not a string")
    if not isinstance(completion.get("usage"), dict | None):
        raise UnreadableResponse("the completion's usage is not an object")
    return completion


def _result(spec: ModelSpec, completion: dict[str, Any], attempts: int, duration: float) -> ChatResult:
    choice = completion["choices"][0]
    usage = completion.get("usage") or {}
    prompt_tokens = _count(usage, "prompt_tokens")
    completion_tokens = _count(usage, "completion_tokens")
    details = usage.get("completion_tokens_details")
    model = completion.get("model")
    return ChatResult(
        content=choice["message"].get("content") or "",
        message=message_dict(choice["message"]),
        model=model if isinstance(model, str) and model else spec.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        reasoning_tokens=_count(details, "reasoning_tokens") if isinstance(details, dict) else 0,
        duration=duration,
        input_cost=prompt_tokens * spec.input_price_per_mtok / 1_000_000,
        output_cost=completion_tokens * spec.output_price_per_mtok / 1_000_000,
        attempts=attempts,
        finish_reason=choice.get("finish_reason"),
    )


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and value >= 0 else 0


def message_dict(message: Mapping[str, Any]) -> Message:
    """The assistant message as a plain dict, ready to store or to send back in a conversation."""
    result: Message = {"role": message.get("role") or "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        result["tool_calls"] = _without_none(message["tool_calls"])
    return result


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value
