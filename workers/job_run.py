"""Scheduling: one process's share of one job (claim chunks, watch the job, renew leases, finish it),
and the process's set of such runs (`Scheduler`), joined by message, by wake-up or by scouting.

Several processes run the same job at once; the chunk leases in the database decide who does
what. A participant that finds nothing to lease but chunks still leased by others waits for those
leases to be either completed or expired (their worker died) and then takes them over. What an
item is belongs to `workers.items`; what a model call may do, to `workers.gate`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from models.orm import Job, JobChunk
from services import heartbeat, jobs, logs, metrics, wakeups
from services.states import TERMINAL_STATES
from workers.cache import CallCache
from workers.engine import Engine, engine
from workers.gate import CallGate, Cancelled
from workers.items import ItemHandler, handler_for
from workers.units import is_transient

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.5
current_chunk: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_chunk", default=None)


class JobRun:
    def __init__(self, engine: Engine, job_id: str) -> None:
        self.engine = engine
        self.job_id = job_id
        self.settings = engine.settings
        self.stopped = asyncio.Event()
        # Chunks whose lease another worker took over (this one was too slow to renew): stop them.
        self.lost: set[int] = set()
        # The task running each chunk this run holds, until `_work` sees it finish.
        self._chunk_tasks: dict[asyncio.Task[None], int] = {}
        # Items of each held chunk not finished yet: the run claims another chunk while they are few
        # enough (`_has_room`), so its calls stay at the cap and it holds no more than it needs (a
        # worker sitting on queued items while another has none would end the job at half speed).
        self._unfinished: dict[int, int] = {}
        self._room = asyncio.Event()
        self.cache: CallCache | None = None
        self.calls: metrics.CallTally | None = None
        self.kind = ""

    @property
    def held(self) -> set[int]:
        """The chunks this run holds (and renews the leases of)."""
        return set(self._chunk_tasks.values())

    async def run(self) -> None:
        logs.bind(job_id=self.job_id)  # this task's lines, and its chunks' (their tasks inherit it)
        job = await self._start()
        if job is None:
            return
        logs.bind(project_id=job.project_id)
        self.calls = metrics.track_calls()
        self.kind = job.kind
        self.cache = CallCache(self.engine.db, job.project_id, self.settings.llm_cache)
        gate = CallGate(self.engine, self.settings, self.cache, self._must_stop, self._fail)
        watcher = asyncio.create_task(self._watch())
        try:
            handler = await handler_for(self.engine, gate, job, self.settings, self._fail)
            await self._work(handler)
        except Cancelled:
            pass
        except Exception as exc:  # an engine bug must end the job visibly, not leave it STARTED
            log.exception("job %s crashed", self.job_id)
            await self.engine.db(jobs.fail, self.job_id, f"FAILURE: internal error: {exc}")
        finally:
            watcher.cancel()
            await self._log_cache_hits()

    async def _start(self) -> Job | None:
        try:
            return await self.engine.db(jobs.mark_started, self.job_id)
        except Exception as exc:
            if is_transient(exc):
                raise  # the database is away: the job stays queued and a scout starts it once it is back
            # A job that can never start must end, not be retried every second.
            log.exception("job %s could not start", self.job_id)
            await self.engine.db(jobs.fail, self.job_id, f"FAILURE: internal error while starting the job: {exc}")
            return None

    async def _fail(self, message: str) -> None:
        """End the job in FAILURE from this run; its calls in flight are abandoned."""
        await self.engine.db(jobs.fail, self.job_id, message)
        self._stop()

    async def _log_cache_hits(self) -> None:
        """Before the job ends (and when this run stops): cache hits, and this process's model calls."""
        if self.cache is not None and self.cache.hits:
            line = f"Cache: {self.cache.hits} answer(s) reused without a model call"
            self.cache.hits = 0
            await self.engine.db(jobs.log_if_present, self.job_id, line)
        if self.calls is not None and (summary := self.calls.take_summary()):
            await self.engine.db(jobs.log_if_present, self.job_id, f"{summary} ({self.engine.owner})")

    # -- chunks -----------------------------------------------------------------------------------

    async def _work(self, handler: ItemHandler) -> None:
        tasks = self._chunk_tasks
        try:
            while not self.stopped.is_set():
                self._room.clear()
                none_free = await self._claim_while_room(handler)
                if tasks:
                    await self._wait_for_chunks(wake_on_room=not none_free)
                    continue
                if await self._finished_or_wait():
                    return
        finally:
            # Ended, failed or crashed: no chunk of this run may go on calling models.
            self._cancel_chunks(self.held)
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks.clear()
            self._unfinished.clear()

    def _has_room(self) -> bool:
        # A chunk's worth beyond the cap: items between two calls (writing a response before rating
        # it) hold no slot, and the queued ones take the slots they leave.
        room = self.settings.worker_max_inflight + self.settings.job_chunk_size
        return sum(self._unfinished.values()) < room

    async def _claim_while_room(self, handler: ItemHandler) -> bool:
        """Claim chunks while the run has room for more items (`_has_room`); True when none was free."""
        lease = self.settings.job_lease_seconds
        while self._has_room() and not self.stopped.is_set():
            chunk = await self.engine.db(jobs.claim_chunk, self.job_id, self.engine.owner, lease, self.held)
            if chunk is None:
                return True
            metrics.chunk_claimed(self.kind)
            if chunk.attempts > self.settings.max_chunk_attempts:
                await self._fail(self._poisoned_message(chunk))
                return False
            # A chunk this run lost and has now leased again (its own lease expired while the database
            # was away, say) is its to run again: calls for it must not stay refused.
            self.lost.discard(chunk.id)
            self._unfinished[chunk.id] = len(chunk.items)
            self._chunk_tasks[asyncio.create_task(self._run_chunk(chunk, handler))] = chunk.id
        return False

    async def _wait_for_chunks(self, wake_on_room: bool) -> None:
        """Until a held chunk ends or, when more chunks may be free, until there is room for one."""
        tasks = self._chunk_tasks
        room = asyncio.ensure_future(self._room.wait())
        try:
            done, _ = await asyncio.wait(
                {*tasks, room} if wake_on_room else set(tasks), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            room.cancel()
        for task in done & tasks.keys():
            self._unfinished.pop(tasks.pop(task), None)
            if not task.cancelled():
                task.result()

    def _item_finished(self, chunk_id: int, count: int = 1) -> None:
        if chunk_id in self._unfinished:
            self._unfinished[chunk_id] -= count
            if self._has_room():
                self._room.set()

    def _poisoned_message(self, chunk: JobChunk) -> str:
        """A chunk whose every worker stopped while running it (a crash on one of its items, say) would
        otherwise take down worker after worker until the job's time limit."""
        return (
            f"FAILURE: chunk {chunk.position} was started {chunk.attempts - 1} times and its worker stopped "
            f"each time (limit ASSAY_MAX_CHUNK_ATTEMPTS={self.settings.max_chunk_attempts}); see the worker logs"
        )

    def _cancel_chunks(self, chunk_ids: set[int]) -> None:
        for task, chunk_id in self._chunk_tasks.items():
            if chunk_id in chunk_ids:
                task.cancel()

    def _stop(self) -> None:
        """The job ended (elsewhere or by this run): calls in flight are abandoned, none start."""
        self.stopped.set()
        self._cancel_chunks(self.held)

    async def _finished_or_wait(self) -> bool:
        pending, earliest = await self.engine.db(jobs.pending_chunks, self.job_id)
        if pending == 0:
            await self._log_cache_hits()
            await self.engine.db(jobs.succeed, self.job_id)
            return True
        wait = 0.5 if earliest is None else (earliest - datetime.now(UTC)).total_seconds() + 0.05
        await asyncio.sleep(min(max(wait, 0.05), 1.0))
        return False

    async def _run_chunk(self, chunk: JobChunk, handler: ItemHandler) -> None:
        current_chunk.set(chunk.id)  # the items' tasks inherit it: a lost lease stops their model calls
        logs.bind(chunk_id=chunk.id)
        works: list[Any] = await handler.load(chunk.items)
        self._item_finished(chunk.id, len(chunk.items) - len(works))  # nothing to do for those
        await asyncio.gather(*(self._run_item(chunk.id, handler, w) for w in works))
        if not self._must_stop():  # items refused a call are not done: the chunk is not either
            await self.engine.db(jobs.complete_chunk, chunk.id, self.engine.owner)

    async def _run_item(self, chunk_id: int, handler: ItemHandler, work: Any) -> None:
        try:
            await handler.run(work)
        finally:
            self._item_finished(chunk_id)

    # -- watching: leases, cancel, deadline --------------------------------------------------------

    async def _watch(self) -> None:
        lease = self.settings.job_lease_seconds
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                if await self.engine.control(jobs.current_state, self.job_id) in TERMINAL_STATES:
                    self._stop()
                    return
                if time.monotonic() - last_renew >= lease / 4:
                    held = list(self.held)
                    kept = await self.engine.control(jobs.renew_leases, held, self.engine.owner, lease)
                    self._lose(set(held) - set(kept))
                    last_renew = time.monotonic()
            except Exception:  # the database is away: keep watching, the leases outlast a few misses
                log.warning("job %s: could not check its state or renew its leases", self.job_id, exc_info=True)
                if time.monotonic() - last_renew > lease:  # they expired: others may be running them now
                    self._lose(self.held)

    def _lose(self, chunk_ids: set[int]) -> None:
        """Chunks whose leases this run no longer holds: their items stop at once."""
        self.lost.update(chunk_ids)
        self._cancel_chunks(chunk_ids)

    def _must_stop(self) -> bool:
        return self.stopped.is_set() or current_chunk.get() in self.lost


class Scheduler:
    """This process's job runs: joins a job when a message or a wake-up (`services.wakeups`) names it,
    and scouts for every job with free or expired chunks, so all live workers share the work and a dead
    worker's leases are taken over without waiting for a new message."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._runs: dict[str, asyncio.Task[None]] = {}
        engine.call_soon(self._scout)
        if redis_url := engine.settings.redis_url:
            engine.call_soon(lambda: wakeups.listen(redis_url, self._start))

    async def _scout(self) -> None:
        while True:
            heartbeat.beat_soon(self.engine.settings.redis_url, "worker", self.engine.owner)
            try:
                for job_id in await self.engine.db(jobs.claimable_jobs):
                    self._start(job_id)
            except Exception:
                log.exception("scouting for work failed; retrying")
            await asyncio.sleep(self.engine.settings.worker_scout_seconds)

    def submit(self, job_id: str) -> None:
        """Start working on a job unless this process already is (thread-safe)."""
        self.engine.loop.call_soon_threadsafe(self._start, job_id)

    def _start(self, job_id: str) -> None:
        running = self._runs.get(job_id)
        if running is not None and not running.done():
            return
        self._runs = {jid: run for jid, run in self._runs.items() if not run.done()}
        self._runs[job_id] = asyncio.create_task(JobRun(self.engine, job_id).run(), name=f"job-{job_id}")


_scheduler: Scheduler | None = None
_lock = threading.Lock()


def scheduler() -> Scheduler:
    """This process's scheduler, on its engine (both created on first use, again in a forked child)."""
    global _scheduler
    with _lock:
        current = engine()
        if _scheduler is None or _scheduler.engine is not current:
            _scheduler = Scheduler(current)
        return _scheduler
