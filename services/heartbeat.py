"""Liveness of workers and the sweeper: each keeps a Redis key with a short TTL alive.

`/readyz` counts the keys, so an operator sees how many worker processes and sweepers are up
without a Celery inspect round trip. A missing Redis only means no heartbeat: never an error.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis

log = logging.getLogger(__name__)

PREFIX = "assay:heartbeat:"
TTL_SECONDS = 30
EVERY_SECONDS = 5.0
ROLES = ("worker", "sweeper")

_last: dict[str, float] = {}
_lock = threading.Lock()
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assay-heartbeat")


@functools.cache
def client(url: str) -> redis.Redis:
    """A client that gives up within a second, so a health check or a heartbeat never hangs (one per URL)."""
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def beat(redis_url: str | None, role: str, name: str) -> None:
    """Say that `name` (a `role` process) is alive for the next TTL_SECONDS."""
    if not redis_url:
        return
    try:
        client(redis_url).set(f"{PREFIX}{role}:{name}", str(time.time()), ex=TTL_SECONDS)
    except redis.RedisError as exc:
        log.warning("could not write the %s heartbeat: %s", role, exc)


def beat_soon(redis_url: str | None, role: str, name: str) -> None:
    """`beat` at most every EVERY_SECONDS, on a background thread (safe to call from an event loop)."""
    now = time.monotonic()
    with _lock:
        if now - _last.get(name, float("-inf")) < EVERY_SECONDS:
            return
        _last[name] = now
    _pool.submit(beat, redis_url, role, name)


def alive(connection: redis.Redis) -> dict[str, int]:
    """How many processes of each role beat within the TTL."""
    counts = dict.fromkeys(ROLES, 0)
    for key in connection.scan_iter(match=f"{PREFIX}*", count=500):
        role = key.decode().removeprefix(PREFIX).split(":", 1)[0]
        counts[role] = counts.get(role, 0) + 1
    return counts
