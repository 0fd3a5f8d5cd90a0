"""One long-lived event loop per worker process, on which every job run of the process works.

Celery tasks only hand job ids to the scheduler (`workers.job_run`), whose runs work on this loop (in
a background thread): the model calls run concurrently, bounded per process by
`ASSAY_WORKER_MAX_INFLIGHT` and per model across the cluster by the Redis limiter. Database work
runs in a small thread pool so it never blocks the loop, and each piece of it is its own short
transaction, retried across transient faults (`workers.units`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from redis.asyncio import Redis

from llmcalls import Limiter, LocalLimiter, ModelSpec, RedisLimiter, close_all
from llmcalls.limiter import connect as limiter_redis
from models.db import Database
from services.settings import Settings, load_settings
from workers.evaluator_pool import EvaluatorPool
from workers.units import Units, is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")
WRITE_BATCH = 200
# A released limiter lease is kept this long for the process's next call (llmcalls.limiter): at the
# full limit the next call starts within moments, and then costs no Redis round trip.
KEEP_RELEASED_LEASE = 0.05


class Engine:
    """What every job run of a process shares: the loop, units of work, result writes, limiters, evaluators."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # No pre-ping: every unit runs again on a fresh connection when its connection died (workers.units).
        self.database = Database(settings.database_url, settings.sqlite_busy_timeout_ms, pre_ping=False)
        self.units = Units(self.database, settings.db_outage_seconds)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loop = asyncio.new_event_loop()
        self._db_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="assay-db")
        # Lease renewals and status checks never queue behind item writes.
        self._control_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assay-control")
        self._writes: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._limiters: dict[str, Limiter] = {}
        # When each model (by its limiter key: URL, key and model) last answered a call of this process.
        self._answered_at: dict[str, float] = {}
        # One Redis pool for every limiter of this process: one per limiter would keep up to 64 idle
        # connections for each model and key a long-lived worker has ever called.
        self._limiter_redis: Redis | None = None
        self._inflight: asyncio.Semaphore | None = None
        self._evaluators: EvaluatorPool | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self._serve, name="assay-engine", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._inflight = asyncio.Semaphore(self.settings.worker_max_inflight)
        self.loop.run_forever()

    def call_soon(self, coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run `coroutine()` on the engine's loop (thread-safe), for as long as it runs: the loop itself
        keeps only weak references to tasks, and one waiting on a socket can be collected mid-run."""

        def start() -> None:
            task = self.loop.create_task(coroutine())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        self.loop.call_soon_threadsafe(start)

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)` as one transaction in the database thread pool, again on a fresh
        connection after a transient fault (see `workers.units`)."""
        # In the caller's context, so lines logged there carry its job and chunk ids (services.logs).
        context = contextvars.copy_context()
        return await self.loop.run_in_executor(self._db_pool, context.run, self.units.run, fn, args)

    async def control(self, fn: Callable[..., T], *args: Any) -> T:
        """Like `db`, on the control thread (leases, status), so bulk writes cannot delay it; retried
        only within a lease, since a lease the database could not renew is lost anyway."""
        bound = min(self.settings.db_outage_seconds, self.settings.job_lease_seconds)
        return await self.loop.run_in_executor(self._control_pool, self.units.run, fn, args, bound)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Like `db` for results: writes waiting at the same moment share one transaction, so a result is
        stored within one commit of its answer and a crash loses little. When `fn` has a `many`
        attribute, `fn.many(session, [args, ...])` applies all of its waiting calls at once."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self._writes.append((fn, args, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain_writes())
        return await future

    async def _drain_writes(self) -> None:
        while self._writes:
            batch, self._writes = self._writes[:WRITE_BATCH], self._writes[WRITE_BATCH:]
            try:
                outcomes = await self.loop.run_in_executor(self._db_pool, self._write_retrying, batch)
            except Exception as exc:  # the commit itself failed: every write of the batch failed
                outcomes = [(False, exc)] * len(batch)
            for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(value) if ok else future.set_exception(value)

    def _write_retrying(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]) -> list[tuple[bool, Any]]:
        return self.units.retrying(lambda: self._write_batch(batch), "write batch")

    def _write_batch(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]) -> list[tuple[bool, Any]]:
        # The whole batch in one transaction; only when a write fails (its experiment was deleted, say)
        # is it done again with a savepoint per write, so one bad write never costs the others.
        try:
            with self.database.session() as session:
                return [(True, value) for value in _apply_together(session, batch)]
        except Exception as exc:
            if is_transient(exc):
                raise  # the connection, not a write, failed: the whole batch goes again
            return self._write_each(batch)

    def _write_each(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        with self.database.session() as session:
            for fn, args, _ in batch:
                try:
                    with session.begin_nested():
                        outcomes.append((True, fn(session, *args)))
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    outcomes.append((False, exc))
        return outcomes

    @property
    def inflight(self) -> asyncio.Semaphore:
        assert self._inflight is not None
        return self._inflight

    @property
    def evaluators(self) -> EvaluatorPool:
        """This process's evaluator children, created on first use (on the engine's loop)."""
        if self._evaluators is None:
            settings = self.settings
            self._evaluators = EvaluatorPool(settings.evaluator_processes, settings.evaluator_timeout_seconds)
        return self._evaluators

    def answered(self, spec: ModelSpec) -> None:
        self._answered_at[spec.limiter_key] = time.monotonic()

    def answered_within(self, spec: ModelSpec, seconds: float) -> bool:
        at = self._answered_at.get(spec.limiter_key)
        return at is not None and time.monotonic() - at < seconds

    def limiter(self, spec: ModelSpec) -> Limiter:
        """The cluster-wide limit of a model (Redis), or a per-process one without Redis."""
        key = f"{spec.limiter_key}:{spec.max_connections}"
        if key not in self._limiters:
            redis_url = self.settings.redis_url
            if redis_url and self._limiter_redis is None:
                self._limiter_redis = limiter_redis(redis_url)
            self._limiters[key] = (
                RedisLimiter(
                    self._limiter_redis,
                    spec.limiter_key,
                    spec.max_connections,
                    outage=self.settings.redis_outage_seconds,
                    keep_released=KEEP_RELEASED_LEASE,
                )
                if self._limiter_redis is not None
                else LocalLimiter(spec.max_connections)
            )
        return self._limiters[key]

    def shutdown(self) -> None:
        async def stop() -> None:
            await close_all()
            for limiter in self._limiters.values():
                if isinstance(limiter, RedisLimiter):
                    await limiter.aclose()  # leases it kept go back now, not when they expire
            if self._limiter_redis is not None:
                await self._limiter_redis.aclose()
            if self._evaluators is not None:
                await self._evaluators.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._db_pool.shutdown(wait=False)
        self._control_pool.shutdown(wait=False)


def _apply_together(session: Any, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]) -> list[Any]:
    """Each write's result, in order; the calls of a function with `many` go in one call of it."""
    results: dict[int, Any] = {}
    grouped: dict[Callable[..., list[Any]], list[int]] = {}
    for i, (fn, args, _) in enumerate(batch):
        many = getattr(fn, "many", None)
        if many is None:
            results[i] = fn(session, *args)
        else:
            grouped.setdefault(many, []).append(i)
    for many, indexes in grouped.items():
        values = many(session, [batch[i][1] for i in indexes])
        results.update(zip(indexes, values, strict=True))
    return [results[i] for i in range(len(batch))]


_engine: Engine | None = None
_engine_pid: int | None = None
_lock = threading.Lock()


def engine() -> Engine:
    """This process's engine, created on first use (and again in a forked child)."""
    global _engine, _engine_pid
    with _lock:
        if _engine is None or _engine_pid != os.getpid():
            _engine, _engine_pid = Engine(load_settings()), os.getpid()
        return _engine
