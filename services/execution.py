"""What workers read before model calls and write after them, each in its own short transaction.

Nothing here calls a model: the worker reads a plan, calls the model with no transaction open,
then stores the outcome. The database's unique constraints keep one response per (entry, epoch)
and one rating per (response, criterion) whatever happens to the workers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, delete, or_, select, update
from sqlalchemy.orm import Session, lazyload

from llmcalls.calls import ChatResult, ModelSpec
from llmcalls.judge import Verdict
from llmcalls.outbound import policy_from
from models.db import insert_ignoring_conflicts
from models.orm import (
    Criterion,
    CriterionSet,
    Entry,
    Experiment,
    Job,
    LLMConfig,
    PromptResponse,
    PromptTemplate,
    Rating,
)
from models.schemas.criteria import CriterionIn
from services import criteria as criteria_service
from services import jobs
from services import responses as responses_service
from services.evaluators import EvalResult, Sample
from services.settings import Settings
from services.templates import render_messages


@dataclass(frozen=True)
class CriterionRef:
    """A criterion as the worker rates it: by the LLM judge, or by `evaluator` with `params`."""

    id: int
    text: str
    evaluator: str | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExperimentPlan:
    """Everything a worker needs to run an experiment's items, read once per job."""

    job_id: str
    project_id: int
    experiment_id: int
    template: dict[str, Any] | None
    criteria: tuple[CriterionRef, ...]
    generation: ModelSpec
    judge: ModelSpec
    rating_mode: str
    llm_config_id: int | None
    use_cache: bool = False
    judge_trials: int = 1


@dataclass
class ItemWork:
    """One (entry, epoch) of an experiment and what is already stored for it."""

    entry_id: int
    epoch: int
    values: dict[str, Any]
    prompt_messages: list[dict[str, Any]]
    response_id: int | None = None
    response_text: str | None = None
    response_failed: bool = False
    rated: bool = False
    missing_criteria: list[CriterionRef] = field(default_factory=list)
    prompt_id: int | None = None
    # An earlier run of the experiment answered this (entry, epoch): storing must replace it.
    replaces: bool = False


DEFAULT_JUDGE = "default"


def resolve_rating_version(settings: Settings, requested: str | None) -> str:
    """A configured judge's name; null, "latest" and unknown names fall back to the default judge."""
    return requested if requested in settings.judge_versions else DEFAULT_JUDGE


def judge_spec(settings: Settings, rating_version: str | None = None) -> ModelSpec:
    model = settings.judge_versions.get(resolve_rating_version(settings, rating_version))
    return _default_spec(settings, model or settings.judge_model or settings.llm_model)


def _default_spec(settings: Settings, model: str) -> ModelSpec:
    return ModelSpec(
        model=model,
        base_url=settings.llm_base_url,
        api_key=settings.openai_api_key or "unset",
        max_connections=settings.llm_max_connections,
        transport=settings.llm_transport,
    )


def with_generation_params(spec: ModelSpec, params: dict[str, Any] | None) -> ModelSpec:
    """An experiment's generation parameters override its model's sampling settings."""
    keys = ("temperature", "top_p", "max_tokens", "reasoning_effort")
    overrides = {k: params[k] for k in keys if params and params.get(k) is not None}
    return dataclasses.replace(spec, **overrides) if overrides else spec


def spec_for(config: LLMConfig | None, settings: Settings, judge: bool = False) -> ModelSpec:
    """The model of an LLM config, or the platform default (and judge) from settings."""
    if config is None:
        return judge_spec(settings) if judge else _default_spec(settings, settings.llm_model)
    return ModelSpec(
        model=config.llm_model_name,
        base_url=config.llm_base_url,
        api_key=config.api_key or "unset",
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        reasoning_effort=config.reasoning_effort,
        system_message=config.system_message,
        timeout=float(config.timeout or 60),
        max_retries=config.max_retries if config.max_retries is not None else 3,
        input_price_per_mtok=config.input_price_per_mtok or 0.0,
        output_price_per_mtok=config.output_price_per_mtok or 0.0,
        max_connections=config.max_connections,
        outbound=policy_from(settings.llm_allowed_hosts),
        transport=settings.llm_transport,
    )


def _template_dict(template: PromptTemplate | None) -> dict[str, Any] | None:
    if template is None:
        return None
    return {"id": template.id, "messages": template.messages, "response_format": template.response_format_json_schema}


def active_criteria(session: Session, criterion_set_id: int) -> tuple[CriterionRef, ...]:
    rows = session.execute(
        select(Criterion.id, Criterion.criterion_str, Criterion.evaluator, Criterion.evaluator_params)
        .where(Criterion.criterion_set_id == criterion_set_id, Criterion.superseded.is_(False))
        .order_by(Criterion.position, Criterion.id)
    ).all()
    return tuple(CriterionRef(*row) for row in rows)


def experiment_plan(session: Session, job: Job, settings: Settings) -> ExperimentPlan:
    experiment = session.get_one(Experiment, job.experiment_id)
    return ExperimentPlan(
        job_id=job.id,
        project_id=job.project_id,
        experiment_id=experiment.id,
        template=_template_dict(experiment.prompt_template),
        criteria=active_criteria(session, experiment.criterion_set_id),
        generation=with_generation_params(spec_for(experiment.llm_config, settings), experiment.generation_params),
        judge=judge_spec(settings, experiment.rating_version),
        rating_mode=job.params.get("rating_mode", experiment.rating_mode),
        llm_config_id=experiment.llm_config_id,
        use_cache=experiment.use_cache or settings.llm_cache,
        judge_trials=experiment.judge_trials or 1,
    )


def load_items(session: Session, plan: ExperimentPlan, items: list[list[int]]) -> list[ItemWork]:
    """The chunk's items with their rendered prompts, and what is already stored for them."""
    entry_ids = {entry_id for entry_id, _ in items}
    # lazyload: an entry's joined collection would count that collection's entries for every row.
    query = select(Entry).where(Entry.id.in_(entry_ids)).options(lazyload("*"))
    entries = {e.id: e for e in session.scalars(query)}
    stored = _stored_responses(session, plan, entry_ids)
    template = session.get(PromptTemplate, plan.template["id"]) if plan.template else None
    prompts = responses_service.prompts_for(session, template, list(entries.values()))
    work = []
    for entry_id, epoch in items:
        entry = entries.get(entry_id)
        if entry is None:
            continue  # deleted since the job started: nothing to generate
        prompt = prompts[entry_id]
        item = ItemWork(entry_id, epoch, entry.input_values, prompt.messages, prompt_id=prompt.id)
        _attach_stored(session, item, plan, stored.get((entry_id, epoch)))
        work.append(item)
    return work


def _stored_responses(session: Session, plan: ExperimentPlan, entry_ids: set[int]) -> dict[tuple[int, int], Row]:
    table = PromptResponse.__table__
    columns = (table.c.id, table.c.entry_id, table.c.epoch, table.c.job_id, table.c.error, table.c.messages)
    query = select(*columns, table.c.rated_at).where(
        table.c.experiment_id == plan.experiment_id, table.c.entry_id.in_(entry_ids)
    )
    return {(row.entry_id, row.epoch): row for row in session.execute(query)}


def _attach_stored(session: Session, item: ItemWork, plan: ExperimentPlan, response: Row | None) -> None:
    if response is None:
        return
    if response.job_id != plan.job_id:
        item.replaces = True  # an earlier run's answer: this job's replaces it
        return
    item.response_id = response.id
    item.response_failed = response.error is not None
    item.response_text = responses_service.response_text(response.messages)
    item.rated = response.rated_at is not None
    done = set(session.scalars(select(Rating.criterion_id).where(Rating.response_id == response.id)))
    item.missing_criteria = [c for c in plan.criteria if c.id not in done]


def store_response(
    session: Session, plan: ExperimentPlan, item: ItemWork, result: ChatResult | None, error: str | None
) -> int | None:
    """Store this job's response of (entry, epoch), replacing an earlier run's; None if this job already has one.

    Core statements, so a result is durable within moments of its answer at little cost (the ratings
    of a replaced response go with it through the foreign key's ON DELETE CASCADE).
    """
    return store_responses(session, [(plan, item, result, error)])[0]


def store_responses(session: Session, calls: list[tuple[Any, ...]]) -> list[int | None]:
    """Many `store_response` calls (their arguments after the session) as one multi-row INSERT."""
    table = PromptResponse.__table__
    for plan, item, _, _ in calls:
        if item.replaces:
            session.execute(
                delete(table).where(
                    table.c.experiment_id == plan.experiment_id,
                    table.c.entry_id == item.entry_id,
                    table.c.epoch == item.epoch,
                    or_(table.c.job_id.is_(None), table.c.job_id != plan.job_id),
                )
            )
    insert = insert_ignoring_conflicts(session, PromptResponse, "experiment_id", "entry_id", "epoch")
    returning = insert.returning(table.c.id, table.c.experiment_id, table.c.entry_id, table.c.epoch)
    rows = session.execute(returning, [_response_row(*call) for call in calls])
    # A key with no row back: a worker that took over the chunk stored that item first.
    stored = {(row.experiment_id, row.entry_id, row.epoch): row.id for row in rows}
    return [stored.pop((plan.experiment_id, item.entry_id, item.epoch), None) for plan, item, _, _ in calls]


store_response.many = store_responses  # type: ignore[attr-defined]  # see Engine.write


def _response_row(plan: ExperimentPlan, item: ItemWork, result: ChatResult | None, error: str | None) -> dict[str, Any]:
    return {
        "project_id": plan.project_id,
        "experiment_id": plan.experiment_id,
        "prompt_id": item.prompt_id,
        "entry_id": item.entry_id,
        "epoch": item.epoch,
        "job_id": plan.job_id,
        "llm_config_id": plan.llm_config_id,
        "llm_model_name": plan.generation.model,
        "messages": [result.message] if result else [],
        "error": error,
        "rated_at": datetime.now(UTC) if error else None,
        **_usage(result),
    }


def _usage(result: ChatResult | None) -> dict[str, Any]:
    # Every key even without a result: the rows of one multi-row INSERT need the same keys.
    return {
        "duration_seconds": result.duration if result else None,
        "input_tokens": result.prompt_tokens if result else None,
        "output_tokens": result.completion_tokens if result else None,
        "reasoning_tokens": result.reasoning_tokens if result else None,
        "input_cost_usd": result.input_cost if result else None,
        "output_cost_usd": result.output_cost if result else None,
    }


@dataclass(frozen=True)
class RatingOutcome:
    """One criterion's result: the judge's `verdict`, an evaluator's `evaluation`, or neither and an `error`."""

    criterion_id: int
    verdict: Verdict | None = None
    error: str | None = None
    model: str | None = None
    evaluation: EvalResult | None = None


def store_ratings(
    session: Session, response_id: int, outcomes: list[RatingOutcome], complete: bool, fresh: bool = False
) -> None:
    """Write the ratings of one response and mark it rated; a `fresh` response (just stored by this
    job) has no older ratings of those criteria to replace."""
    store_ratings_many(session, [(response_id, outcomes, complete, fresh)])


class _RatingsCall(NamedTuple):
    response_id: int
    outcomes: list[RatingOutcome]
    complete: bool
    fresh: bool = False


def store_ratings_many(session: Session, calls: list[tuple[Any, ...]]) -> list[None]:
    """Many `store_ratings` calls (their arguments after the session) as one INSERT and one UPDATE."""
    ratings, responses = Rating.__table__, PromptResponse.__table__
    parsed = [_RatingsCall(*call) for call in calls]
    for call in parsed:
        if not call.fresh:
            criterion_ids = [o.criterion_id for o in call.outcomes]
            stale = (ratings.c.response_id == call.response_id, ratings.c.criterion_id.in_(criterion_ids))
            session.execute(delete(ratings).where(*stale))
    # A rating stored at the same moment by a worker that took over the chunk stands.
    rows = [_rating_row(call.response_id, o) for call in parsed for o in call.outcomes]
    if rows:
        session.execute(insert_ignoring_conflicts(session, Rating, "response_id", "criterion_id"), rows)
    complete = [call.response_id for call in parsed if call.complete]
    if complete:
        session.execute(update(responses).where(responses.c.id.in_(complete)).values(rated_at=datetime.now(UTC)))
    return [None] * len(calls)


store_ratings.many = store_ratings_many  # type: ignore[attr-defined]  # see Engine.write


_RATING_COLUMNS = dict.fromkeys(
    ("rating", "reasoning", "score", "trials", "duration_seconds", "input_tokens", "output_tokens")
    + ("input_cost_usd", "output_cost_usd")
)


def _rating_row(response_id: int, outcome: RatingOutcome) -> dict[str, Any]:
    # Every row carries every column: one multi-row INSERT needs the same keys in each.
    return {
        **_RATING_COLUMNS,
        "response_id": response_id,
        "criterion_id": outcome.criterion_id,
        "error": outcome.error,
        "llm_model_name": outcome.model,
        **_verdict_columns(outcome),
    }


def _verdict_columns(outcome: RatingOutcome) -> dict[str, Any]:
    if outcome.evaluation is not None:
        evaluation = outcome.evaluation
        rating = "YES" if evaluation.passed else "NO"
        return {"rating": rating, "reasoning": evaluation.explanation, "score": evaluation.score}
    verdict = outcome.verdict
    if verdict is None:
        return {}
    return {
        "rating": verdict.rating,
        "reasoning": verdict.reasoning,
        "trials": [{"rating": r, "reasoning": why} for r, why in verdict.trials] or None,
        "duration_seconds": verdict.duration,
        "input_tokens": verdict.prompt_tokens,
        "output_tokens": verdict.completion_tokens,
        "input_cost_usd": verdict.input_cost,
        "output_cost_usd": verdict.output_cost,
    }


@dataclass(frozen=True)
class BatchResponseTarget:
    """Where a `responses/batches` item goes and, when it has no messages, how to generate it."""

    needs_generation: bool
    spec: ModelSpec
    prompt_messages: list[dict[str, Any]]


def _batch_spec(
    session: Session, project_id: int, config_id: int | None, experiment: Experiment | None, settings: Settings
) -> ModelSpec:
    config = session.get(LLMConfig, config_id) if config_id is not None else None
    if config is not None and config.project_id != project_id:
        config = None
    return spec_for(config or (experiment.llm_config if experiment else None), settings)


def batch_response_target(
    session: Session, job_id: str, item: dict[str, Any], settings: Settings
) -> BatchResponseTarget | None:
    """None when the item's entry was deleted after the batch was queued: the item fails, not the job."""
    job = session.get_one(Job, job_id)
    entry = session.get(Entry, item["template_variables_id"])
    if entry is None:
        return None
    experiment = session.get(Experiment, item.get("experiment_id")) if item.get("experiment_id") else None
    spec = _batch_spec(session, job.project_id, item.get("llm_config_id"), experiment, settings)
    if item.get("messages"):
        return BatchResponseTarget(False, spec, [])
    template = experiment.prompt_template if experiment else None
    if item.get("prompt_template_id"):
        template = session.get(PromptTemplate, item["prompt_template_id"]) or template
    messages = render_messages(template.messages, entry.input_values) if template else []
    return BatchResponseTarget(True, spec, messages)


def store_batch_response(
    session: Session,
    job_id: str,
    item: dict[str, Any],
    target: BatchResponseTarget,
    result: ChatResult | None,
    error: str | None,
) -> None:
    """Store one batch item as a response of its experiment, replacing that (entry, epoch)'s old one; an
    item whose entry was deleted meanwhile is counted failed."""
    job = session.get_one(Job, job_id)
    entry = session.get(Entry, item["template_variables_id"])
    if entry is None:
        count_failed(session, job_id)
        return
    experiment = session.get(Experiment, item["experiment_id"]) if item.get("experiment_id") else None
    template = experiment.prompt_template if experiment else None
    responses_service.replace_existing(session, experiment, entry.id, item.get("epoch", 1))
    if target.needs_generation:
        usage = {**_usage(result), "llm_model_name": target.spec.model}
    else:
        usage = responses_service.uploaded_columns(item.get("metadata"), item.get("llm_config_id"))
    session.add(
        PromptResponse(
            project_id=job.project_id,
            experiment_id=experiment.id if experiment else None,
            prompt_id=responses_service.prompt_for(session, template, entry).id,
            entry_id=entry.id,
            epoch=item.get("epoch", 1),
            job_id=job_id,
            llm_config_id=item.get("llm_config_id"),
            messages=[result.message] if result else (item.get("messages") or []),
            error=error,
            **usage,
        )
    )
    if error:
        count_failed(session, job_id)
    session.flush()


@dataclass(frozen=True)
class RatingTarget:
    sample: Sample
    criteria: tuple[CriterionRef, ...]
    spec: ModelSpec
    mode: str


def rating_target(session: Session, job_id: str, response_id: int, settings: Settings) -> RatingTarget | None:
    """What to rate a response against: its experiment's criteria; None when it cannot be rated."""
    job = session.get_one(Job, job_id)
    response = session.get(PromptResponse, response_id)
    if response is None or response.experiment_id is None or response.error is not None:
        return None
    experiment = session.get_one(Experiment, response.experiment_id)
    entry = session.get_one(Entry, response.entry_id)
    return RatingTarget(
        sample=Sample(response.prompt.messages, responses_service.response_text(response.messages), entry.input_values),
        criteria=active_criteria(session, experiment.criterion_set_id),
        spec=judge_spec(settings, experiment.rating_version),
        mode=job.params.get("rating_mode", "fast"),
    )


def count_failed(session: Session, job_id: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(failed=Job.failed + 1))


def store_generated_criteria(session: Session, job_id: str, experiment_id: int, texts: list[str]) -> None:
    """Fill the experiment's still-empty criterion set (another worker may have filled it first)."""
    experiment = session.get_one(Experiment, experiment_id)
    if active_criteria(session, experiment.criterion_set_id):
        return
    criterion_set = session.get_one(CriterionSet, experiment.criterion_set_id)
    criteria_service.add_to_set(session, criterion_set, [CriterionIn(criterion_str=t) for t in texts])
    jobs.log(session, job_id, f"Generated {len(texts)} criteria from the prompt template into '{criterion_set.name}'")
