"""One process's share of one job: lease chunks, run their items, renew leases, end the job.

Several processes run the same job at once; the chunk leases in the database decide who does
what. A participant that finds nothing to lease but chunks still leased by others waits for those
leases to be either completed or expired (their worker died) and then takes them over.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from llmcalls import (
    ChatResult,
    JudgeParseError,
    LLMCallError,
    LLMError,
    ModelSpec,
    Verdict,
    chat,
    generate_criteria,
    judge_k,
)
from models.orm import Job, JobChunk
from services import execution, jobs
from services.evaluators import Sample
from services.execution import CriterionRef, ExperimentPlan, ItemWork, RatingOutcome
from services.states import TERMINAL_STATES, JobKind, TaskState
from workers.cache import CallCache
from workers.evaluator_pool import EvaluationFailed

if TYPE_CHECKING:
    from workers.engine import Engine

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.5
current_chunk: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_chunk", default=None)


class Cancelled(Exception):
    """The job ended elsewhere (cancel, timeout, failure); no new model call may start."""


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
        self.plan: ExperimentPlan | None = None
        self.job: Job | None = None
        self._streak: tuple[str, int] = ("", 0)
        # Slow start: one generation at a time until one succeeds, so a provider that rejects
        # everything (a bad key) costs a handful of calls instead of a chunk's worth.
        self._proven = asyncio.Event()
        self._probe = asyncio.Lock()
        self._transient_failures = 0

    @property
    def held(self) -> set[int]:
        """The chunks this run holds (and renews the leases of)."""
        return set(self._chunk_tasks.values())

    async def run(self) -> None:
        try:
            job = await self.engine.db(jobs.mark_started, self.job_id)
        except (OperationalError, InterfaceError, PoolTimeout):
            raise  # the database is away: the job stays queued and a scout starts it once it is back
        except Exception as exc:  # a job that can never start must end, not be retried every second
            log.exception("job %s could not start", self.job_id)
            await self.engine.db(_fail, self.job_id, f"FAILURE: internal error while starting the job: {exc}")
            return
        if job is None:
            return
        self.job = job
        self.cache = CallCache(self.engine, job.project_id, self.settings.llm_cache)
        watcher = asyncio.create_task(self._watch())
        try:
            await self._prepare()
            await self._work()
        except Cancelled:
            pass
        except Exception as exc:  # an engine bug must end the job visibly, not leave it STARTED
            log.exception("job %s crashed", self.job_id)
            await self.engine.db(_fail, self.job_id, f"FAILURE: internal error: {exc}")
        finally:
            watcher.cancel()
            await self._log_cache_hits()

    async def _log_cache_hits(self) -> None:
        if self.cache.hits:
            line = f"Cache: {self.cache.hits} answer(s) reused without a model call"
            self.cache.hits = 0
            await self.engine.db(_log, self.job_id, line)

    async def _prepare(self) -> None:
        if self.job is None or self.job.kind != JobKind.EXPERIMENT:
            return
        self.plan = await self.engine.db(_plan, self.job_id, self.settings)
        self.cache.enabled = self.plan.use_cache
        if not self.plan.criteria and self.plan.template is not None:
            await self._generate_criteria(self.plan)
            self.plan = await self.engine.db(_plan, self.job_id, self.settings)

    async def _generate_criteria(self, plan: ExperimentPlan) -> None:
        """An experiment whose criterion set is empty rates against criteria generated from its template."""
        spec = plan.judge
        try:
            texts = await self._call(
                lambda: generate_criteria(spec, plan.template["messages"], limiter=self.engine.limiter(spec))
            )
        except LLMError as exc:
            await self.engine.db(
                _fail,
                self.job_id,
                f"FAILURE: the criterion set is empty and generating criteria from the template failed: {exc}",
            )
            raise Cancelled from None
        await self.engine.db(execution.store_generated_criteria, self.job_id, plan.experiment_id, texts)

    # -- chunks -----------------------------------------------------------------------------------

    async def _work(self) -> None:
        # One chunk more than the call cap fills, so slots freed by a chunk's slowest items have work.
        capacity = -(-self.settings.worker_max_inflight // max(1, self.settings.job_chunk_size)) + 1
        tasks = self._chunk_tasks
        try:
            while not self.stopped.is_set():
                while len(tasks) < capacity and not self.stopped.is_set():
                    lease = self.settings.job_lease_seconds
                    chunk = await self.engine.db(jobs.claim_chunk, self.job_id, self.engine.owner, lease, self.held)
                    if chunk is None:
                        break
                    if chunk.attempts > self.settings.max_chunk_attempts:
                        await self._fail_poisoned(chunk)
                        break
                    tasks[asyncio.create_task(self._run_chunk(chunk))] = chunk.id
                if tasks:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        tasks.pop(task)
                        if not task.cancelled():
                            task.result()
                    continue
                if await self._finished_or_wait():
                    return
        finally:
            # Ended, failed or crashed: no chunk of this run may go on calling models.
            self._cancel_chunks(self.held)
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks.clear()

    async def _fail_poisoned(self, chunk: JobChunk) -> None:
        """A chunk whose every worker stopped while running it (a crash on one of its items, say) would
        otherwise take down worker after worker until the job's time limit."""
        message = (
            f"FAILURE: chunk {chunk.position} was started {chunk.attempts - 1} times and its worker stopped "
            f"each time (limit ASSAY_MAX_CHUNK_ATTEMPTS={self.settings.max_chunk_attempts}); see the worker logs"
        )
        await self.engine.db(_fail, self.job_id, message)
        self._stop()

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
            await self.engine.db(_finish_success, self.job_id)
            return True
        wait = 0.5 if earliest is None else (earliest - datetime.now(UTC)).total_seconds() + 0.05
        await asyncio.sleep(min(max(wait, 0.05), 1.0))
        return False

    async def _run_chunk(self, chunk: JobChunk) -> None:
        current_chunk.set(chunk.id)  # the items' tasks inherit it: a lost lease stops their model calls
        run_item = self._item_runner()
        if self.plan is not None:
            works: list[Any] = await self.engine.db(execution.load_items, self.plan, chunk.items)
        else:
            works = list(chunk.items)
        await asyncio.gather(*(run_item(w) for w in works))
        if not self.stopped.is_set():
            await self.engine.db(jobs.complete_chunk, chunk.id, self.engine.owner)

    def _item_runner(self) -> Callable[[Any], Awaitable[None]]:
        kind = self.job.kind if self.job else None
        if kind == JobKind.EXPERIMENT:
            return self._experiment_item
        if kind == JobKind.RESPONSES_BATCH:
            return self._response_item
        return self._rating_item

    # -- watching: leases, cancel, deadline --------------------------------------------------------

    async def _watch(self) -> None:
        lease = self.settings.job_lease_seconds
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                status = await self.engine.control(_status_after_deadline, self.job_id)
                if status in TERMINAL_STATES:
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

    # -- model calls -------------------------------------------------------------------------------

    def _must_stop(self) -> bool:
        return self.stopped.is_set() or current_chunk.get() in self.lost

    async def _call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self._must_stop():
            raise Cancelled
        async with self.engine.inflight:
            if self._must_stop():
                raise Cancelled
            return await fn()

    async def _generate(
        self, spec: ModelSpec, messages: list[dict[str, Any]], epoch: int = 1
    ) -> tuple[ChatResult | None, str | None]:
        if not self._proven.is_set():
            async with self._probe:
                # Waiters queued before the first success must not keep taking turns after it.
                if not self._proven.is_set():
                    return await self._generate_once(spec, messages, epoch)
        return await self._generate_once(spec, messages, epoch)

    async def _generate_once(
        self, spec: ModelSpec, messages: list[dict[str, Any]], epoch: int
    ) -> tuple[ChatResult | None, str | None]:
        def call() -> Awaitable[ChatResult]:
            return chat(spec, messages, limiter=self.engine.limiter(spec))

        try:
            result = await self._call(lambda: self.cache.chat(spec, messages, epoch, call))
        except LLMCallError as exc:
            await self._note_failure(exc)
            return None, str(exc)
        self._streak = ("", 0)
        self._proven.set()
        return result, None

    async def _note_failure(self, exc: LLMCallError) -> None:
        """Stop the job when the provider refuses everything the same way (for example a bad key)."""
        if exc.retryable:
            # Transient failures already used their retries; stop probing so the rest fail in parallel.
            self._transient_failures += 1
            if self._transient_failures >= 3:
                self._proven.set()
            return
        kind, count = self._streak
        self._streak = (exc.kind, count + 1 if kind == exc.kind else 1)
        if self._streak[1] >= self.settings.failure_streak_limit:
            message = f"FAILURE: {self._streak[1]} consecutive model calls failed the same way: {exc}"
            await self.engine.db(_fail, self.job_id, message)
            self._stop()

    async def _judge(self, spec: ModelSpec, sample: Sample, criterion: CriterionRef, mode: str) -> RatingOutcome | None:
        judge_mode = "detailed" if mode == "detailed" else "fast"
        text, values = sample.response, sample.variables

        trials = self.plan.judge_trials if self.plan is not None else 1  # issue 17: judge k times

        def call() -> Awaitable[Verdict]:
            limiter = self.engine.limiter(spec)
            return judge_k(
                spec, text, criterion.text, trials=trials, mode=judge_mode, variables=values, limiter=limiter
            )

        try:
            payload = [text, criterion.text, judge_mode, values, *([trials] if trials > 1 else [])]
            verdict = await self._call(lambda: self.cache.verdict(spec, payload, call))
        except Cancelled:
            return None
        except LLMCallError as exc:
            await self._note_failure(exc)
            return RatingOutcome(criterion.id, None, str(exc), spec.model)
        except (JudgeParseError, LLMError) as exc:
            return RatingOutcome(criterion.id, None, str(exc), spec.model)
        self._streak = ("", 0)
        return RatingOutcome(criterion.id, verdict, None, spec.model)

    async def _evaluate(self, sample: Sample, criterion: CriterionRef) -> RatingOutcome | None:
        """An evaluator criterion: computed in an evaluator process, no model call."""
        assert criterion.evaluator is not None
        if self._must_stop():
            return None
        try:
            result = await self.engine.evaluators.evaluate(criterion.evaluator, criterion.params or {}, sample)
        except EvaluationFailed as exc:
            return RatingOutcome(criterion.id, error=str(exc))
        return RatingOutcome(criterion.id, evaluation=result)

    def _rate_one(
        self, spec: ModelSpec, sample: Sample, criterion: CriterionRef, mode: str
    ) -> Awaitable[RatingOutcome | None]:
        if criterion.evaluator is not None:
            return self._evaluate(sample, criterion)
        return self._judge(spec, sample, criterion, mode)

    async def _rate(
        self,
        response_id: int,
        sample: Sample,
        criteria: list[CriterionRef],
        spec: ModelSpec,
        mode: str,
        fresh: bool = False,
    ) -> None:
        outcomes = await asyncio.gather(*(self._rate_one(spec, sample, c, mode) for c in criteria))
        stored = [o for o in outcomes if o is not None]
        complete = len(stored) == len(criteria)
        await self.engine.write(execution.store_ratings, response_id, stored, complete, fresh)

    # -- item kinds --------------------------------------------------------------------------------

    async def _experiment_item(self, work: ItemWork) -> None:
        plan = self.plan
        assert plan is not None
        fresh = work.response_id is None
        if fresh:
            try:
                result, error = await self._generate(plan.generation, work.prompt_messages, work.epoch)
            except Cancelled:
                return
            response_id = await self.engine.write(execution.store_response, plan, work, result, error)
            if response_id is None:
                # A worker that took this chunk over stored the item first; the stored one may still lack
                # ratings (that worker may have stopped before rating it), so rate what it lacks.
                stored = await self.engine.db(execution.load_items, plan, [[work.entry_id, work.epoch]])
                if stored and stored[0].response_id is not None:
                    await self._experiment_item(stored[0])
                return
            if result is None:
                return
            work.response_id, work.response_text, work.missing_criteria = (
                response_id,
                result.content,
                list(plan.criteria),
            )
        elif work.response_failed or work.rated:
            return
        sample = Sample(work.prompt_messages, work.response_text or "", work.values)
        await self._rate(work.response_id, sample, work.missing_criteria, plan.judge, plan.rating_mode, fresh)

    async def _response_item(self, item: dict[str, Any]) -> None:
        target = await self.engine.db(execution.batch_response_target, self.job_id, item, self.settings)
        if target is None:
            await self.engine.db(execution.count_failed, self.job_id)
            return
        result, error = None, None
        if target.needs_generation:
            try:
                result, error = await self._generate(target.spec, target.prompt_messages)
            except Cancelled:
                return
        await self.engine.write(execution.store_batch_response, self.job_id, item, target, result, error)

    async def _rating_item(self, response_id: int) -> None:
        target = await self.engine.db(execution.rating_target, self.job_id, response_id, self.settings)
        if target is None:
            await self.engine.db(execution.count_failed, self.job_id)
            return
        await self._rate(response_id, target.sample, list(target.criteria), target.spec, target.mode)


def _plan(session: Any, job_id: str, settings: Any) -> ExperimentPlan:
    return execution.experiment_plan(session, session.get_one(Job, job_id), settings)


def _log(session: Any, job_id: str, line: str) -> None:
    if session.get(Job, job_id) is not None:
        jobs.log(session, job_id, line)


def _finish_success(session: Any, job_id: str) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        jobs.finish(session, job, TaskState.SUCCESS)


def _fail(session: Any, job_id: str, message: str) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        jobs.finish(session, job, TaskState.FAILURE, message)


def _status_after_deadline(session: Any, job_id: str) -> str:
    job = session.get(Job, job_id)
    if job is None:  # deleted with its experiment
        return TaskState.REVOKED
    if job.status == TaskState.STARTED and job.deadline_at is not None and jobs.is_past(job.deadline_at):
        limit = job.time_limit_seconds
        jobs.finish(session, job, TaskState.TIMEOUT, f"TIMEOUT: the job ran past its time limit of {limit} s")
        return TaskState.TIMEOUT
    return job.status
