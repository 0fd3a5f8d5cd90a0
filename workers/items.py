"""Per-kind item handlers: what one item of an experiment, a responses batch or a ratings batch is.

A handler turns a chunk's stored items into work (`load`) and does one of them (`run`): model calls go
through the run's `CallGate`, results are written with `Engine.write`. Handlers know nothing of
chunks, leases or job states; the scheduler (`workers.job_run`) does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from llmcalls import LLMError, ModelSpec, generate_criteria
from models.orm import Job
from services import execution, metrics
from services.evaluators import Sample
from services.execution import CriterionRef, ExperimentPlan, ItemWork, RatingOutcome
from services.settings import Settings
from services.states import JobKind
from workers.engine import Engine
from workers.evaluator_pool import EvaluationFailed
from workers.gate import CallGate, Cancelled


class ItemHandler(Protocol):
    async def load(self, items: list[Any]) -> list[Any]:
        """The work of a chunk's stored items (what is already done for each, where that matters)."""
        ...

    async def run(self, work: Any) -> None:
        """Do one item: its model calls through the gate, its results written."""
        ...


class Rater:
    """Rates one response against criteria: evaluators in the evaluator processes, the rest by the judge."""

    def __init__(self, engine: Engine, gate: CallGate) -> None:
        self.engine = engine
        self.gate = gate

    async def rate(
        self,
        response_id: int,
        sample: Sample,
        criteria: list[CriterionRef],
        spec: ModelSpec,
        mode: str,
        fresh: bool = False,
        trials: int = 1,
    ) -> None:
        outcomes = await asyncio.gather(*(self._rate_one(spec, sample, c, mode, trials) for c in criteria))
        stored = [o for o in outcomes if o is not None]
        complete = len(stored) == len(criteria)
        await self.engine.write(execution.store_ratings, response_id, stored, complete, fresh)

    def _rate_one(
        self, spec: ModelSpec, sample: Sample, criterion: CriterionRef, mode: str, trials: int
    ) -> Awaitable[RatingOutcome | None]:
        if criterion.evaluator is not None:
            return self._evaluate(sample, criterion)
        return self.gate.judge(spec, sample, criterion, mode, trials)

    async def _evaluate(self, sample: Sample, criterion: CriterionRef) -> RatingOutcome | None:
        """An evaluator criterion: computed in an evaluator process, no model call."""
        assert criterion.evaluator is not None
        if self.gate.should_stop():
            return None
        try:
            result = await self.engine.evaluators.evaluate(criterion.evaluator, criterion.params or {}, sample)
        except EvaluationFailed as exc:
            metrics.evaluator_run(criterion.evaluator, "failed")
            return RatingOutcome(criterion.id, error=str(exc))
        metrics.evaluator_run(criterion.evaluator, "pass" if result.passed else "fail")
        return RatingOutcome(criterion.id, evaluation=result)


class ExperimentItems:
    """An (entry, epoch) of an experiment: generate the response unless stored, then rate what it lacks."""

    def __init__(self, engine: Engine, gate: CallGate, plan: ExperimentPlan) -> None:
        self.engine = engine
        self.gate = gate
        self.rater = Rater(engine, gate)
        self.plan = plan

    async def load(self, items: list[Any]) -> list[ItemWork]:
        return await self.engine.db(execution.load_items, self.plan, items)

    async def run(self, work: ItemWork) -> None:
        plan = self.plan
        fresh = work.response_id is None
        if fresh:
            try:
                result, error = await self.gate.generate(plan.generation, work.prompt_messages, work.epoch)
            except Cancelled:
                return
            response_id = await self.engine.write(execution.store_response, plan, work, result, error)
            if response_id is None:
                # A worker that took this chunk over stored the item first; the stored one may still lack
                # ratings (that worker may have stopped before rating it), so rate what it lacks.
                stored = await self.load([[work.entry_id, work.epoch]])
                if stored and stored[0].response_id is not None:
                    await self.run(stored[0])
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
        await self.rater.rate(
            work.response_id, sample, work.missing_criteria, plan.judge, plan.rating_mode, fresh, plan.judge_trials
        )


class ResponseBatchItems:
    """A `responses/batches` item: store the given messages, or generate them first."""

    def __init__(self, engine: Engine, gate: CallGate, job_id: str, settings: Settings) -> None:
        self.engine, self.gate, self.job_id, self.settings = engine, gate, job_id, settings

    async def load(self, items: list[Any]) -> list[Any]:
        return list(items)

    async def run(self, item: dict[str, Any]) -> None:
        target = await self.engine.db(execution.batch_response_target, self.job_id, item, self.settings)
        if target is None:
            await self.engine.db(execution.count_failed, self.job_id)
            return
        result, error = None, None
        if target.needs_generation:
            try:
                result, error = await self.gate.generate(target.spec, target.prompt_messages)
            except Cancelled:
                return
        await self.engine.write(execution.store_batch_response, self.job_id, item, target, result, error)


class RatingBatchItems:
    """A `ratings/batches` item: a response id, rated against its experiment's criteria."""

    def __init__(self, engine: Engine, gate: CallGate, job_id: str, settings: Settings) -> None:
        self.engine, self.job_id, self.settings = engine, job_id, settings
        self.rater = Rater(engine, gate)

    async def load(self, items: list[Any]) -> list[Any]:
        return list(items)

    async def run(self, response_id: int) -> None:
        target = await self.engine.db(execution.rating_target, self.job_id, response_id, self.settings)
        if target is None:
            await self.engine.db(execution.count_failed, self.job_id)
            return
        await self.rater.rate(response_id, target.sample, list(target.criteria), target.spec, target.mode)


async def handler_for(
    engine: Engine, gate: CallGate, job: Job, settings: Settings, fail: Callable[[str], Awaitable[None]]
) -> ItemHandler:
    """The handler of the job's kind, prepared (an experiment's plan read, its criteria generated if none)."""
    if job.kind == JobKind.RESPONSES_BATCH:
        return ResponseBatchItems(engine, gate, job.id, settings)
    if job.kind == JobKind.RATINGS_BATCH:
        return RatingBatchItems(engine, gate, job.id, settings)
    plan = await engine.db(_plan, job.id, settings)
    gate.cache.enabled = plan.use_cache
    if not plan.criteria and plan.template is not None:
        await _generate_criteria(engine, gate, plan, fail)
        plan = await engine.db(_plan, job.id, settings)
    return ExperimentItems(engine, gate, plan)


async def _generate_criteria(
    engine: Engine, gate: CallGate, plan: ExperimentPlan, fail: Callable[[str], Awaitable[None]]
) -> None:
    """An experiment whose criterion set is empty rates against criteria generated from its template."""
    spec = plan.judge
    try:
        texts = await gate.call(
            lambda: generate_criteria(spec, plan.template["messages"], limiter=engine.limiter(spec))  # type: ignore[index]
        )
    except LLMError as exc:
        await fail(f"FAILURE: the criterion set is empty and generating criteria from the template failed: {exc}")
        raise Cancelled from None
    await engine.db(execution.store_generated_criteria, plan.job_id, plan.experiment_id, texts)


def _plan(session: Any, job_id: str, settings: Settings) -> ExperimentPlan:
    return execution.experiment_plan(session, session.get_one(Job, job_id), settings)
