"""One ``AsyncOpenAI`` client per (base URL, API key) and event loop, reused for every call.

Clients hold an aiohttp session, which belongs to the event loop that created it, so the cache is
keyed by loop as well: a Celery task that runs ``asyncio.run`` gets fresh clients, and should
``await close_all()`` before its loop ends.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx2
from openai import AsyncOpenAI, DefaultAioHttpClient

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local OpenAI-compatible servers usually need no key, but the client insists on one.
PLACEHOLDER_API_KEY = "no-key"
# Connections per client when the caller does not say; the concurrency limiter is the real bound.
DEFAULT_MAX_CONNECTIONS = 100

_ClientKey = tuple[str, str]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_ClientKey, AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def get_client(
    base_url: str | None,
    api_key: str | None,
    *,
    timeout: float = 60.0,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> AsyncOpenAI:
    """The cached client for ``(base_url, api_key)`` on the running loop, created on first use.

    ``timeout`` and ``max_connections`` only shape a newly created client; calls pass their own
    timeout per request anyway.
    """
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (base_url or DEFAULT_BASE_URL, api_key or PLACEHOLDER_API_KEY)
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = _new_client(*key, timeout=timeout, max_connections=max_connections)
    return client


def _new_client(base_url: str, api_key: str, *, timeout: float, max_connections: int) -> AsyncOpenAI:
    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    # Our retry layer owns retries; the client's own would multiply with it. Redirects are not followed:
    # the outbound policy checked the URL's host, not wherever a redirect would lead.
    return AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        timeout=timeout,
        http_client=DefaultAioHttpClient(timeout=timeout, limits=limits, follow_redirects=False),
    )


async def close_all() -> None:
    """Close every client created on the running loop (call before the loop ends)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.close()
