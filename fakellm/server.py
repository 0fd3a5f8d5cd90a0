"""The aiohttp application: OpenAI-compatible endpoints plus the ``/_fake`` control API."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .config import FAULT_KINDS, SCHEDULE_OK, ConfigError, merge_config, model_config, normalize_config
from .content import ChatRequest, RequestError, build_content, count_tokens, parse_request, prompt_tokens

DEFAULT_MODELS: tuple[str, ...] = ("fake-model", "fake-judge")
DEFAULT_LOG_SIZE = 10_000
JSON_TYPE = "application/json"
_STREAM_PIECE = re.compile(r"\s*\S+\s*|\s+")

Record = dict[str, Any]


class FakeLLMServer:
    """State and request handlers of one fake model server.

    All state lives on the event loop thread, so no locking is needed.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, log_size: int = DEFAULT_LOG_SIZE) -> None:
        self._config = normalize_config(config)
        self._model_configs: dict[str, dict[str, Any]] = {}
        self._log: deque[Record] = deque(maxlen=log_size)
        self._seen_models: dict[str, None] = {}
        self._generation = 0
        self._release = asyncio.Event()
        self._rng = random.Random()
        self._reset_state()

    # ----------------------------------------------------------------- setup

    def app(self) -> web.Application:
        """Build the aiohttp application serving this state."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/chat/completions", self.chat_completions)
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/models", self.list_models)
        app.router.add_get("/_fake/health", self.health)
        app.router.add_get("/_fake/stats", self.stats)
        app.router.add_get("/_fake/requests", self.requests)
        app.router.add_post("/_fake/reset", self.reset)
        app.router.add_get("/_fake/config", self.get_config)
        app.router.add_post("/_fake/config", self.set_config)
        app.router.add_patch("/_fake/config", self.patch_config)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def _reset_state(self) -> None:
        self._generation += 1
        self._release.set()  # frees hanging requests of the previous generation
        self._release = asyncio.Event()
        self._rng.seed(self._config["seed"])
        self._seq = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._by_status: Counter[str] = Counter()
        self._by_model: Counter[str] = Counter()
        self._by_kind: Counter[str] = Counter({"generate": 0, "judge": 0})
        self._log.clear()

    def _replace_config(self, config: dict[str, Any]) -> None:
        self._config = config
        self._model_configs.clear()
        self._rng.seed(config["seed"])

    async def _on_shutdown(self, app: web.Application) -> None:
        self._release.set()

    # ------------------------------------------------------- chat completions

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``."""
        parsed = _parse(await request.read())
        model = parsed.model if isinstance(parsed, ChatRequest) else ""
        record, generation = self._begin(model, parsed.kind if isinstance(parsed, ChatRequest) else "generate")
        record["api_key"] = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            response = await self._answer(request, parsed, record)
        except asyncio.CancelledError:
            self._finish(record, generation, 499)  # client went away: nginx's "client closed request"
            raise
        except Exception:
            self._finish(record, generation, 500)
            raise
        self._finish(record, generation, response.status)
        return response

    def _begin(self, model: str, kind: str) -> tuple[Record, int]:
        self._seq += 1
        self._in_flight += 1
        if self._in_flight > self._max_in_flight:
            self._max_in_flight = self._in_flight
        self._by_model[model] += 1
        self._by_kind[kind] += 1
        if model not in self._seen_models:
            self._seen_models[model] = None
        record: Record = {
            "seq": self._seq,
            "model": model,
            "kind": kind,
            "started_at": time.time(),
            "ended_at": None,
            "status": None,
            "fault": None,
        }
        self._log.append(record)
        return record, self._generation

    def _finish(self, record: Record, generation: int, status: int) -> None:
        record["ended_at"] = time.time()
        record["status"] = status
        if generation == self._generation:  # requests from before a reset no longer count
            self._in_flight -= 1
            self._by_status[str(status)] += 1

    def _config_for(self, model: str) -> dict[str, Any]:
        config = self._model_configs.get(model)
        if config is None:
            config = self._model_configs[model] = model_config(self._config, model)
        return config

    async def _answer(
        self, request: web.Request, parsed: ChatRequest | RequestError, record: Record
    ) -> web.StreamResponse:
        config = self._config_for(record["model"])
        fault = self._pick_fault(record["seq"], config)
        # Drawn even when unused so one request always consumes the same random numbers.
        delay = (config["latency_ms"] + self._rng.random() * config["jitter_ms"]) / 1000.0
        record["fault"] = fault
        if fault == "hang":
            await self._hang(config["hang_seconds"])
        elif delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and fault != "hang":
            return _fault_response(fault, record["seq"], config)
        if isinstance(parsed, RequestError):
            return _error(400, str(parsed), "invalid_request_error", "invalid_request", parsed.param)
        if parsed.format_type == "json_schema" and config["refuse_json_schema"]:
            record["fault"] = "refuse_json_schema"
            return _error(
                400,
                "response_format json_schema is not supported",
                "invalid_request_error",
                "unsupported_response_format",
                "response_format",
            )
        junk = parsed.judge is not None and config["judge_junk"]
        if junk:
            record["fault"] = "judge_junk"
        try:
            content = build_content(parsed, judge_junk=junk)
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:  # malformed schema
            return _error(
                400,
                f"invalid response_format schema: {exc}",
                "invalid_request_error",
                "invalid_schema",
                "response_format",
            )
        if parsed.stream:
            return await _stream(request, parsed, content, record["seq"])
        return _completion_response(parsed, content, record["seq"])

    def _pick_fault(self, seq: int, config: Mapping[str, Any]) -> str | None:
        draw = self._rng.random()  # drawn even if scheduled, so the schedule doesn't shift later draws
        scheduled = config["schedule"].get(str(seq)) if config["schedule"] else None
        if scheduled is not None:
            return None if scheduled == SCHEDULE_OK else scheduled
        faults = config["faults"]
        threshold = 0.0
        for kind in FAULT_KINDS:
            threshold += faults.get(kind, 0.0)
            if draw < threshold:
                return kind
        return None

    async def _hang(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._release.wait(), seconds)
        except TimeoutError:
            pass

    # ----------------------------------------------------------------- models

    async def list_models(self, request: web.Request) -> web.Response:
        """``GET /v1/models``: the default names, configured overrides and every model seen."""
        names = dict.fromkeys([*DEFAULT_MODELS, *self._config["models"], *self._seen_models])
        names.pop("", None)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "fakellm"} for name in names]
        return _json({"object": "list", "data": data})

    # ------------------------------------------------------------ control API

    async def health(self, request: web.Request) -> web.Response:
        """``GET /_fake/health``."""
        return _json({"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        """``GET /_fake/stats``: counters since the last reset."""
        return _json(self.stats_snapshot())

    def stats_snapshot(self) -> dict[str, Any]:
        """The counters reported by ``/_fake/stats``."""
        return {
            "calls": self._seq,
            "by_status": dict(self._by_status),
            "in_flight": self._in_flight,
            "max_in_flight": self._max_in_flight,
            "by_model": dict(self._by_model),
            "by_kind": dict(self._by_kind),
        }

    async def requests(self, request: web.Request) -> web.Response:
        """``GET /_fake/requests?since=N``: records with ``seq > N`` still in the bounded log."""
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _error(400, "since must be an integer", "invalid_request_error", "invalid_since", "since")
        records: list[Record] = []
        if self._log:
            skip = max(0, since - self._log[0]["seq"] + 1)
            records = list(itertools.islice(self._log, skip, None))
        return _json({"requests": records, "last_seq": self._seq})

    async def reset(self, request: web.Request) -> web.Response:
        """``POST /_fake/reset``: zero counters and the log, free hanging requests; keep the config."""
        self._reset_state()
        return _json({"ok": True})

    async def get_config(self, request: web.Request) -> web.Response:
        """``GET /_fake/config``."""
        return _json(self._config)

    async def set_config(self, request: web.Request) -> web.Response:
        """``POST /_fake/config``: replace the whole config (missing keys take defaults)."""
        return await self._update_config(request, lambda body: normalize_config(body))

    async def patch_config(self, request: web.Request) -> web.Response:
        """``PATCH /_fake/config``: deep-merge the body over the current config."""
        return await self._update_config(request, lambda body: merge_config(self._config, body))

    async def _update_config(
        self, request: web.Request, build: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ConfigError("config must be a JSON object")
            self._replace_config(build(body))
        except (ValueError, ConfigError) as exc:
            return _error(400, f"invalid config: {exc}", "invalid_request_error", "invalid_config")
        return _json(self._config)


# --------------------------------------------------------------- responses


def _parse(body: bytes) -> ChatRequest | RequestError:
    try:
        return parse_request(json.loads(body))
    except RequestError as exc:
        return exc
    except ValueError:
        return RequestError("request body is not valid JSON")


def _json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(value).encode(), status=status, content_type=JSON_TYPE, headers=headers)


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return _json({"error": {"message": message, "type": type_, "param": param, "code": code}}, status, headers)


def _fault_response(fault: str, seq: int, config: Mapping[str, Any]) -> web.Response:
    if fault == "429":
        retry_after = config["retry_after"]
        headers = {} if retry_after is None else {"Retry-After": _format_seconds(retry_after)}
        return _error(
            429,
            "Rate limit reached for requests (fakellm fault injection).",
            "requests",
            "rate_limit_exceeded",
            headers=headers,
        )
    if fault == "500":
        return _error(
            500,
            "The server had an error while processing your request (fakellm fault injection).",
            "server_error",
            "internal_server_error",
        )
    if fault == "401":
        return _error(
            401,
            "Incorrect API key provided (fakellm fault injection).",
            "invalid_request_error",
            "invalid_api_key",
        )
    # malformed: a 200 whose JSON body is cut off mid-way
    body = f'{{"id": "chatcmpl-fake-{seq}", "object": "chat.completion", "choices": [{{"index": 0, "mess'
    return web.Response(body=body.encode(), content_type=JSON_TYPE)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _usage(request: ChatRequest, content: str) -> dict[str, Any]:
    prompt, completion = prompt_tokens(request), count_tokens(content)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _completion_response(request: ChatRequest, content: str, seq: int) -> web.Response:
    return _json(
        {
            "id": f"chatcmpl-fake-{seq}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": _usage(request, content),
        }
    )


async def _stream(request: web.Request, parsed: ChatRequest, content: str, seq: int) -> web.StreamResponse:
    """Server-sent events like OpenAI's: a role chunk, one chunk per word, a stop chunk, [DONE]."""
    head = {
        "id": f"chatcmpl-fake-{seq}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": parsed.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": piece}, None) for piece in _STREAM_PIECE.findall(content)]
    events.append(chunk({}, "stop"))
    if parsed.include_usage:
        events.append({**head, "choices": [], "usage": _usage(parsed, content)})
    payload = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write(payload.encode())
    await response.write_eof()
    return response


# --------------------------------------------------------------- running


async def serve(
    config: Mapping[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    log_size: int = DEFAULT_LOG_SIZE,
    on_listening: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or until ``stop`` is set), then shut down cleanly.

    ``on_listening`` receives the base URL (``http://host:port/v1``) once the socket is bound.
    """
    server = FakeLLMServer(config, log_size)
    runner = web.AppRunner(
        server.app(), handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    stop = stop or asyncio.Event()
    _install_signal_handlers(stop)
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        on_listening(base_url(host, runner.addresses[0][1]))
        await stop.wait()
    finally:
        await runner.cleanup()


def base_url(host: str, port: int) -> str:
    """The client-facing ``/v1`` URL for a server bound to ``host:port``."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass


def run(
    config: Mapping[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    log_size: int = DEFAULT_LOG_SIZE,
    on_listening: Callable[[str], None] = print,
) -> None:
    """Blocking entry point used by the CLI."""
    try:
        asyncio.run(serve(config, host, port, log_size, on_listening))
    except KeyboardInterrupt:  # where signal handlers can't be installed
        pass
