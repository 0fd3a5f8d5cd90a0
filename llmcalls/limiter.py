"""Concurrency limits for model calls: cluster-wide on Redis, or per process.

Both limiters are adaptive: a 429 halves the effective limit (at most once per ``cooldown``, so a
burst of 429s from calls already in flight counts as one signal), and every ``recover_after``
successes give one slot back, up to the configured limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from .errors import LimiterUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_CONNECT_TIMEOUT = 5.0
"""Connect timeout (seconds) of the Redis client a limiter creates from a URL."""

# All times are Redis server milliseconds, so clocks of different worker hosts never matter.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: leases, adaptive; ARGV: member, ttl_ms, limit. Returns 0 (all taken), 1, or 2 (taken while
# the effective limit is cut, so successes must be counted towards its recovery).
_ACQUIRE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[3])
local effective = tonumber(redis.call('HGET', KEYS[2], 'limit'))
if effective and effective < limit then limit = math.max(effective, 1) end
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
if limit < tonumber(ARGV[3]) then return 2 end
return 1
"""
)

# KEYS: leases; ARGV: ttl_ms, members... Returns the members whose lease had already expired (not re-added).
_RENEW = (
    _NOW_MS
    + """
local expired = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
  else
    table.insert(expired, ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return expired
"""
)

# KEYS: leases
_HOLDERS = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS: adaptive; ARGV: limit, cooldown_ms, state_ttl_ms. Returns the effective limit.
_ON_RATE_LIMIT = (
    _NOW_MS
    + """
local current = tonumber(redis.call('HGET', KEYS[1], 'limit')) or tonumber(ARGV[1])
local cut_at = tonumber(redis.call('HGET', KEYS[1], 'cut_at')) or 0
if now - cut_at < tonumber(ARGV[2]) then return current end
current = math.max(1, math.floor(current / 2))
redis.call('HSET', KEYS[1], 'limit', current, 'ok', 0, 'cut_at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return current
"""
)

# KEYS: adaptive; ARGV: limit, recover_after, state_ttl_ms. Returns the effective limit.
_ON_SUCCESS = """
local limit = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'limit'))
if not current or current >= limit then return limit end
if redis.call('HINCRBY', KEYS[1], 'ok', 1) >= tonumber(ARGV[2]) then
  current = current + 1
  redis.call('HSET', KEYS[1], 'limit', current, 'ok', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return current
"""


class Limiter(Protocol):
    """What :func:`llmcalls.calls.chat` needs from a concurrency limiter."""

    def slot(self, timeout: float | None = None) -> AbstractAsyncContextManager[None]:
        """Hold one of the limited slots for the duration of the ``async with`` block."""
        ...

    async def on_success(self) -> None:
        """Report a successful call (feeds recovery of the effective limit)."""

    async def on_rate_limit(self) -> None:
        """Report a 429 (halves the effective limit)."""

    async def effective_limit(self) -> int:
        """The limit currently enforced (at most the configured one)."""
        ...


class RedisLimiter:
    """At most ``limit`` concurrent holders of ``key`` across every process sharing the Redis.

    Slots are leases in a sorted set (member = holder id, score = expiry). A holder renews its
    lease in the background, so a crashed process frees its slots after ``lease_ttl`` seconds.
    Use one instance per event loop (the Redis client belongs to the loop).
    """

    def __init__(
        self,
        redis: str | Redis,
        key: str,
        limit: int,
        *,
        lease_ttl: float = 30.0,
        recover_after: int = 10,
        cooldown: float = 1.0,
        poll_interval: tuple[float, float] = (0.01, 0.05),
        state_ttl: float = 3600.0,
        outage: float = 0.0,
        keep_released: float = 0.0,
        max_reuses: int = 32,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._owns_redis = isinstance(redis, str)
        self._redis = connect(redis) if isinstance(redis, str) else redis
        self.key = key
        self.limit = limit
        self.lease_ttl = lease_ttl
        self._leases_key, self._adaptive_key = f"{key}:leases", f"{key}:adaptive"
        self._recover_after, self._poll_interval = recover_after, poll_interval
        self._cooldown_ms, self._state_ttl_ms = int(cooldown * 1000), int(state_ttl * 1000)
        self._scripts = {name: self._redis.register_script(source) for name, source in _SCRIPTS.items()}
        # One waiter per process polls Redis (the head of this queue); the rest wait their turn, and
        # a local release wakes the head at once instead of after its poll interval.
        self._queue = asyncio.Lock()
        self._freed = asyncio.Event()
        # This process's leases, renewed together by one task rather than a task per call.
        self._held: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._cut = False
        # How long a Redis that stopped answering is waited for (retrying with backoff) before a slot
        # wait fails with LimiterUnavailable: a broker restart must not fail the calls waiting meanwhile.
        self.outage = outage
        # A released lease is kept for `keep_released` seconds for this process's next call, which then
        # takes it without two Redis round trips; after `max_reuses` calls it goes back to Redis, so the
        # acquire script sees the cluster's adaptive limit again. Never while the limit is cut.
        self.keep_released, self.max_reuses = keep_released, max_reuses
        self._kept: dict[str, int] = {}  # kept lease -> calls it has served
        self._uses: dict[str, int] = {}  # lease in use -> calls it has served before this one
        self._releasing: set[asyncio.Task[None]] = set()
        self._member_prefix = f"{socket.gethostname()}:{os.getpid()}"

    @asynccontextmanager
    async def slot(self, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold a slot, polling with jitter while all are taken; ``TimeoutError`` after ``timeout``."""
        member = self._reuse() or await self._wait_for_lease(timeout)
        self._held.add(member)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._keep_renewing())
        try:
            yield
        finally:
            if not self._keep(member):
                self._held.discard(member)  # first: a renewal never re-adds a released lease
                await self._release(member)
            self._freed.set()

    def _reuse(self) -> str | None:
        """A lease this process kept after its last use, unless the limit is cut meanwhile."""
        if not self._kept or self._cut:
            return None
        member, uses = self._kept.popitem()
        self._uses[member] = uses
        return member

    def _keep(self, member: str) -> bool:
        """Keep a released lease for the next call of this process (see `keep_released`)."""
        uses = self._uses.pop(member, 0) + 1
        if self.keep_released <= 0 or self._cut or uses >= self.max_reuses:
            return False
        self._kept[member] = uses
        asyncio.get_running_loop().call_later(self.keep_released, self._give_back, member)
        return True

    def _give_back(self, member: str) -> None:
        """A kept lease no call took: back to Redis for every process."""
        if self._kept.pop(member, None) is None:
            return  # in use again (its next release schedules its own give-back)
        self._held.discard(member)
        task = asyncio.create_task(self._release(member))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    def _give_back_all(self) -> None:
        for member in list(self._kept):
            self._give_back(member)

    async def _wait_for_lease(self, timeout: float | None) -> str:
        member = f"{self._member_prefix}:{uuid.uuid4().hex}"
        # An explicit deadline, not asyncio.timeout(): redis-py can absorb the cancellation that
        # asyncio.timeout() relies on (seen on Python 3.11), which left waiters polling forever.
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            await self._wait_turn(deadline, timeout)
            try:
                # A lease this process kept while the head waited is taken before asking Redis again.
                while (kept := self._reuse()) is None and not await self._try_acquire(member):
                    self._freed.clear()
                    pause = self._pause(deadline, timeout)  # raises TimeoutError past the deadline
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._freed.wait(), pause)
            finally:
                self._queue.release()
        except BaseException:
            # Cancelled while the acquire script ran: the lease may exist without us knowing.
            await self._release(member)
            raise
        return kept or member

    async def _wait_turn(self, deadline: float | None, timeout: float | None) -> None:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(f"no free slot on {self.key} within {timeout} s")
        try:
            await asyncio.wait_for(self._queue.acquire(), left)
        except TimeoutError:
            raise TimeoutError(f"no free slot on {self.key} within {timeout} s") from None

    def _pause(self, deadline: float | None, timeout: float | None) -> float:
        pause = random.uniform(*self._poll_interval)
        if deadline is None:
            return pause
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no free slot on {self.key} within {timeout} s")
        return min(pause, left)

    async def _try_acquire(self, member: str) -> bool:
        keys = [self._leases_key, self._adaptive_key]
        acquired = await self._while_reachable(
            lambda: self._scripts["acquire"](keys=keys, args=[member, self._ttl_ms, self.limit])
        )
        if acquired:
            self._cut = acquired == 2
        return bool(acquired)

    async def _while_reachable(self, command: Callable[[], Awaitable[T]]) -> T:
        """`command()`, retried with backoff while Redis does not answer, for up to `outage` seconds."""
        give_up_at = time.monotonic() + self.outage
        retry = 0
        while True:
            try:
                return await command()
            except RedisError as exc:
                if time.monotonic() >= give_up_at:
                    waited = f" within {self.outage:g} s" if self.outage else ""
                    raise LimiterUnavailable(
                        f"the limiter's Redis did not answer for {self.key}{waited}: {exc}"
                    ) from exc
                retry += 1
                if retry == 1:
                    log.warning(
                        "the limiter's Redis did not answer for %s; waiting up to %g s: %s", self.key, self.outage, exc
                    )
                await asyncio.sleep(
                    min(random.uniform(0.05, min(1.0, 0.05 * 2**retry)), max(0.0, give_up_at - time.monotonic()))
                )

    async def _keep_renewing(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease_ttl / 3)
            held = list(self._held)
            if not held:
                continue
            try:
                expired = await self._scripts["renew"](keys=[self._leases_key], args=[self._ttl_ms, *held])
            except RedisError as exc:
                log.warning("could not renew %d lease(s) on %s: %s", len(held), self._leases_key, exc)
                continue
            for member in expired:
                log.warning("lease %s on %s expired before it was renewed", member, self._leases_key)

    async def _release(self, member: str) -> None:
        # Shielded so a cancellation arriving now cannot leave the slot held until its lease expires.
        with contextlib.suppress(RedisError):
            await asyncio.shield(self._redis.zrem(self._leases_key, member))

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.lease_ttl * 1000))

    async def holders(self) -> int:
        """How many unexpired leases are held right now."""
        return int(await self._scripts["holders"](keys=[self._leases_key]))

    async def effective_limit(self) -> int:
        """The limit currently enforced across the cluster."""
        value = await self._redis.hget(self._adaptive_key, "limit")
        return self.limit if value is None else max(1, min(self.limit, int(value)))

    async def on_rate_limit(self) -> None:
        """Halve the shared effective limit (floor 1), at most once per cooldown; kept leases go back,
        so this process's next calls acquire against the lowered limit."""
        self._cut = True
        self._give_back_all()
        args = [self.limit, self._cooldown_ms, self._state_ttl_ms]
        await self._best_effort("rate_limited", args)

    async def on_success(self) -> None:
        """Count a success; every ``recover_after`` of them raise the shared effective limit by one."""
        if not self._cut:  # the last acquire saw the full limit: nothing to recover, no round trip
            return
        args = [self.limit, self._recover_after, self._state_ttl_ms]
        await self._best_effort("success", args)

    async def _best_effort(self, script: str, args: list[int]) -> None:
        # The adaptive limit is advice: a Redis blip must not throw away an answer already paid for.
        try:
            await self._scripts[script](keys=[self._adaptive_key], args=args)
        except RedisError as exc:
            log.warning("could not update the adaptive limit of %s: %s", self.key, exc)

    async def clear(self) -> None:
        """Forget all leases and the adaptive state of this key."""
        await self._redis.delete(self._leases_key, self._adaptive_key)

    async def aclose(self) -> None:
        """Stop renewing and close the Redis client if this limiter created it from a URL."""
        if self._renewer is not None:
            self._renewer.cancel()
        self._give_back_all()
        await asyncio.gather(*self._releasing, return_exceptions=True)
        if self._owns_redis:
            await self._redis.aclose()


def connect(url: str) -> Redis:
    """A Redis client for limiters; several limiters of one event loop can share it (and its pool)."""
    # No socket_timeout: with it, redis-py's inner read timeout absorbs the cancellation of an
    # enclosing asyncio.timeout() on Python 3.11 (most of the time in our tests), so callers'
    # deadlines stop working. Waits here are bounded by explicit deadlines instead.
    # A blocking pool: many coroutines waiting for a connection queue up instead of failing with
    # "Too many connections".
    pool = BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=None, socket_connect_timeout=REDIS_CONNECT_TIMEOUT
    )
    return Redis(connection_pool=pool)


_SCRIPTS = {
    "acquire": _ACQUIRE,
    "renew": _RENEW,
    "holders": _HOLDERS,
    "rate_limited": _ON_RATE_LIMIT,
    "success": _ON_SUCCESS,
}


class LocalLimiter:
    """The same adaptive limit within one event loop, for when no Redis is configured.

    Built on an event rather than ``asyncio.Semaphore`` because the effective limit moves.
    """

    def __init__(self, limit: int, *, recover_after: int = 10, cooldown: float = 1.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._effective = limit
        self._holders = 0
        self._successes = 0
        self._recover_after, self._cooldown = recover_after, cooldown
        self._cut_at = float("-inf")
        self._changed: asyncio.Event | None = None

    @asynccontextmanager
    async def slot(self, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold a slot; waits while all are taken. ``TimeoutError`` after ``timeout``."""
        async with asyncio.timeout(timeout):
            while self._holders >= self._effective:
                changed = self._changed = self._changed or asyncio.Event()
                changed.clear()
                await changed.wait()
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def holders(self) -> int:
        """How many slots are held right now."""
        return self._holders

    async def effective_limit(self) -> int:
        """The limit currently enforced."""
        return self._effective

    async def on_rate_limit(self) -> None:
        """Halve the effective limit (floor 1), at most once per cooldown."""
        now = time.monotonic()
        if now - self._cut_at >= self._cooldown:
            self._effective, self._successes, self._cut_at = max(1, self._effective // 2), 0, now

    async def on_success(self) -> None:
        """Count a success; every ``recover_after`` of them raise the effective limit by one."""
        if self._effective >= self.limit:
            return
        self._successes += 1
        if self._successes >= self._recover_after:
            self._effective, self._successes = self._effective + 1, 0
            self._notify()
