"""The call gate: every model call of one job run passes through it.

It holds the rules that are about calls, not about items: a call starts only while the run may go
on (the job has not ended, the chunk's lease is still held), within the process's in-flight limit;
the run's first calls go one at a time until one succeeds (slow start), so a provider that refuses
everything costs a handful of calls; identical non-retryable failures in a row before any call
succeeded end the job (the failure streak); identical calls are answered from the cache when it is on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from llmcalls import ChatResult, JudgeParseError, LLMCallError, LLMError, ModelSpec, Verdict, chat, judge_k
from services.evaluators import Sample
from services.execution import CriterionRef, RatingOutcome
from services.settings import Settings
from workers.cache import CallCache
from workers.engine import Engine

TRANSIENT_BEFORE_PARALLEL = 3
# A model that answered one of this process's calls this recently needs no slow start: its key and URL
# worked moments ago (a key revoked since still ends the job by the failure streak, at the cost of one
# round of the cap's calls), and a team running experiment after experiment waits no probe each time.
ANSWERED_RECENTLY_SECONDS = 300.0
T = TypeVar("T")


class Cancelled(Exception):
    """The job ended elsewhere (cancel, timeout, failure) or the chunk's lease was lost: no new call starts."""


class CallGate:
    """The model calls of one job run. `should_stop()` says whether the caller's work must stop (read in
    the caller's context, so per chunk); `refused(message)` ends the job when the streak is reached."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        cache: CallCache,
        should_stop: Callable[[], bool],
        refused: Callable[[str], Awaitable[None]],
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.cache = cache
        self.should_stop = should_stop
        self._refused = refused
        self._streak: tuple[str, int] = ("", 0)
        self._proven = asyncio.Event()
        self._probe = asyncio.Lock()
        self._transient_failures = 0
        # Once the provider has answered one call of this run, its key and URL work: later refusals are
        # the items' own (their order among concurrent calls is chance), so they fail items, not the job.
        self._answered = False

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """`fn()` within the in-flight limit; `Cancelled` instead once the work must stop."""
        if self.should_stop():
            raise Cancelled
        async with self.engine.inflight:
            if self.should_stop():
                raise Cancelled
            return await fn()

    async def generate(
        self, spec: ModelSpec, messages: list[dict[str, Any]], epoch: int = 1
    ) -> tuple[ChatResult | None, str | None]:
        """A generation's result, or None and the error; `Cancelled` when the work must stop."""
        return await self._slow_start(spec, lambda: self._generate_once(spec, messages, epoch))

    async def _slow_start(self, spec: ModelSpec, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, one at a time until a call of this run succeeds (or the model answered this process
        recently), then all at once."""
        if not self._proven.is_set() and self.engine.answered_within(spec, ANSWERED_RECENTLY_SECONDS):
            self._proven.set()
        if not self._proven.is_set():
            async with self._probe:
                # Waiters queued before the first success must not keep taking turns after it.
                if not self._proven.is_set():
                    return await attempt()
        return await attempt()

    async def _generate_once(
        self, spec: ModelSpec, messages: list[dict[str, Any]], epoch: int
    ) -> tuple[ChatResult | None, str | None]:
        def call() -> Awaitable[ChatResult]:
            return chat(spec, messages, limiter=self.engine.limiter(spec))

        try:
            result = await self.call(lambda: self.cache.chat(spec, messages, epoch, call))
        except LLMCallError as exc:
            await self._note_failure(exc)
            return None, str(exc)
        self._succeeded(spec)
        return result, None

    async def judge(
        self, spec: ModelSpec, sample: Sample, criterion: CriterionRef, mode: str, trials: int = 1
    ) -> RatingOutcome | None:
        """The judge's verdict on one criterion (the majority of `trials` answers), a failed rating, or
        None when the work must stop. A run with no generation (a ratings batch) slow-starts on these."""
        return await self._slow_start(spec, lambda: self._judge_once(spec, sample, criterion, mode, trials))

    async def _judge_once(
        self, spec: ModelSpec, sample: Sample, criterion: CriterionRef, mode: str, trials: int
    ) -> RatingOutcome | None:
        judge_mode = "detailed" if mode == "detailed" else "fast"
        text, values = sample.response, sample.variables

        def call() -> Awaitable[Verdict]:
            limiter = self.engine.limiter(spec)
            return judge_k(
                spec, text, criterion.text, trials=trials, mode=judge_mode, variables=values, limiter=limiter
            )

        try:
            payload = [text, criterion.text, judge_mode, values, *([trials] if trials > 1 else [])]
            verdict = await self.call(lambda: self.cache.verdict(spec, payload, call))
        except Cancelled:
            return None
        except LLMCallError as exc:
            await self._note_failure(exc)
            return RatingOutcome(criterion.id, None, str(exc), spec.model)
        except (JudgeParseError, LLMError) as exc:
            return RatingOutcome(criterion.id, None, str(exc), spec.model)
        self._succeeded(spec)
        return RatingOutcome(criterion.id, verdict, None, spec.model)

    def _succeeded(self, spec: ModelSpec) -> None:
        self._streak = ("", 0)
        self._answered = True
        self._proven.set()
        self.engine.answered(spec)

    async def _note_failure(self, exc: LLMCallError) -> None:
        """End the job when the provider refuses everything the same way (for example a bad key)."""
        if exc.retryable:
            # Transient failures already used their retries; stop probing so the rest fail in parallel.
            self._transient_failures += 1
            if self._transient_failures >= TRANSIENT_BEFORE_PARALLEL:
                self._proven.set()
            return
        if self._answered:
            return
        kind, count = self._streak
        self._streak = (exc.kind, count + 1 if kind == exc.kind else 1)
        if self._streak[1] >= self.settings.failure_streak_limit:
            await self._refused(f"FAILURE: {self._streak[1]} consecutive model calls failed the same way: {exc}")
