"""The HTTP path of a chat completion: one keep-alive transport per (kind, base URL, API key) and event loop.

Two transports post the same JSON body and hand back the completion as a plain dict:

- ``aiohttp`` (the default): one ``aiohttp`` session posting the body and reading the answer's JSON, nothing
  else. Measured against the fake model at no latency, one call costs about 0.3 ms of CPU this way and
  1.4-1.8 ms through the ``openai`` client (its request building, its httpx-on-aiohttp transport and its
  typed parsing): on two shared cores that difference decides how close a run gets to the latency limit.
  The answer is read as leniently as the ``openai`` client reads it (unknown fields and values pass, only
  what is stored must be there, see ``calls._result``).
- ``openai``: the ``openai`` package's ``AsyncOpenAI`` (``ASSAY_LLM_TRANSPORT=openai``), for a provider whose
  answers only that client understands.

Sessions belong to the event loop that created them, so the cache is keyed by loop as well: a Celery task
that runs ``asyncio.run`` gets fresh transports, and should ``await close_all()`` before its loop ends.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping
from typing import Any, Literal, Protocol, get_args

import aiohttp
import httpx2
from openai import AsyncOpenAI, DefaultAioHttpClient

from .errors import ErrorKind
from .retry import AttemptFailed, Failure, status_failure

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local OpenAI-compatible servers usually need no key, but the client insists on one.
PLACEHOLDER_API_KEY = "no-key"
# Connections per transport when the caller does not say; the concurrency limiter is the real bound.
DEFAULT_MAX_CONNECTIONS = 100
USER_AGENT = "assay"

TransportKind = Literal["aiohttp", "openai"]
TRANSPORTS: tuple[TransportKind, ...] = get_args(TransportKind)


class Transport(Protocol):
    """Posts one chat-completion body and returns the answer's JSON, not yet checked (``calls._checked`` does)."""

    async def complete(self, body: Mapping[str, Any], timeout: float) -> Any: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """``POST {base_url}/chat/completions`` on one aiohttp session; failures raise :class:`AttemptFailed`.

    Redirects are not followed: the outbound policy checked the URL's host, not wherever a redirect leads.
    """

    def __init__(self, base_url: str, api_key: str, *, max_connections: int) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    async def complete(self, body: Mapping[str, Any], timeout: float) -> Any:
        # The openai client's timeout too applies to connecting and to each read, not to the whole answer.
        limits = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout, sock_read=timeout)
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self._session.post(self.url, data=data, timeout=limits, allow_redirects=False) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
        except aiohttp.ClientConnectorError as exc:
            raise AttemptFailed(Failure(ErrorKind.CONNECTION, None, f"cannot connect ({exc})")) from exc
        except TimeoutError as exc:  # aiohttp's connect and read timeouts are TimeoutErrors
            raise AttemptFailed(Failure(ErrorKind.TIMEOUT, None, "the request timed out")) from exc
        except aiohttp.ClientError as exc:
            raise AttemptFailed(Failure(ErrorKind.CONNECTION, None, f"connection error ({exc!r})")) from exc
        parsed = _json(raw)
        if not 200 <= status < 300:
            text = raw.decode(errors="replace")
            raise AttemptFailed(status_failure(status, headers, parsed, text or f"HTTP {status}"))
        return parsed

    async def close(self) -> None:
        await self._session.close()


class OpenAITransport:
    """The ``openai`` package's client; its exceptions are classified by :func:`llmcalls.retry.classify`."""

    def __init__(self, base_url: str, api_key: str, *, max_connections: int) -> None:
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        # Our retry layer owns retries; the client's own would multiply with it. Redirects are not followed.
        self.client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            max_retries=0,
            http_client=DefaultAioHttpClient(limits=limits, follow_redirects=False),
        )

    async def complete(self, body: Mapping[str, Any], timeout: float) -> Any:
        # The request `chat.completions.create` makes, without its walk over the typed parameters on every
        # call (about a third of the client's CPU time, measured): ours are plain JSON already.
        options = {"timeout": timeout}
        return await self.client.post("/chat/completions", body=dict(body), options=options, cast_to=object)

    async def close(self) -> None:
        await self.client.close()


_KINDS: Mapping[TransportKind, type[AiohttpTransport] | type[OpenAITransport]] = {
    "aiohttp": AiohttpTransport,
    "openai": OpenAITransport,
}
_TransportKey = tuple[TransportKind, str, str]
_transports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_TransportKey, Transport]] = (
    weakref.WeakKeyDictionary()
)


def get_transport(
    base_url: str | None,
    api_key: str | None,
    *,
    kind: TransportKind = "aiohttp",
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> Transport:
    """The cached transport for ``(kind, base_url, api_key)`` on the running loop, created on first use.

    ``max_connections`` only shapes a newly created transport.
    """
    per_loop = _transports.setdefault(asyncio.get_running_loop(), {})
    key = (kind, base_url or DEFAULT_BASE_URL, api_key or PLACEHOLDER_API_KEY)
    transport = per_loop.get(key)
    if transport is None:
        transport = per_loop[key] = _KINDS[kind](key[1], key[2], max_connections=max_connections)
    return transport


async def close_all() -> None:
    """Close every transport created on the running loop (call before the loop ends)."""
    per_loop = _transports.pop(asyncio.get_running_loop(), {})
    for transport in per_loop.values():
        await transport.close()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
