"""Experiments: a template, a collection, a criterion set and a model, plus their responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from models.orm import Collection, CriterionSet, Experiment, LLMConfig, PromptTemplate
from models.schemas.experiments import ExperimentCreate, ExperimentQuery
from services import agent_results, criteria, execution, results
from services.errors import Conflict, Invalid, owned
from services.pagination import Paged, paginate
from services.settings import Settings


@dataclass
class ExperimentView:
    """An experiment with its computed results, read by attribute like the row itself."""

    experiment: Experiment
    results: dict[str, Any]
    n_epochs: int | None = None
    generation_task_id: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.experiment, name)


def view(session: Session, experiment: Experiment, task_id: str | None = None) -> ExperimentView:
    """The experiment with results; `task_id` reports a job that already ended (rejected at once)."""
    task = task_id or experiment.generation_task_id
    return ExperimentView(experiment, results.compute(session, experiment), experiment.n_epochs, task)


def get(session: Session, project_id: int, experiment_id: int) -> Experiment:
    return owned(session, Experiment, project_id, experiment_id, "Experiment")


def _resolve_criterion_set(
    session: Session, project_id: int, body: ExperimentCreate, template: PromptTemplate | None
) -> CriterionSet:
    if body.criterion_set_id is not None:
        return owned(session, CriterionSet, project_id, body.criterion_set_id, "Criterion set", "body.criterion_set_id")
    if template is not None:
        # The template's linked set, created (named like the template) when missing; a run fills an
        # empty set with criteria generated from the template.
        return criteria.template_set(session, template)
    raise Invalid("body.criterion_set_id: required when there is no prompt template")


def _check_response_column(collection: Collection, column_id: int | None) -> None:
    if column_id is not None and column_id not in {c.id for c in collection.columns}:
        raise Invalid(f"body.response_column_id: column {column_id} is not a column of collection {collection.id}")


def _check_mode(body: ExperimentCreate) -> None:
    """Persona (MULTI_TURN) experiments simulate conversations from a scenario set: not available."""
    for field, value in (
        ("evaluation_mode", body.evaluation_mode == "MULTI_TURN"),
        ("scenario_set_id", body.scenario_set_id is not None),
        ("persona_group_id", body.persona_group_id is not None),
    ):
        if value:
            raise Invalid(f"body.{field}: MULTI_TURN (Persona) experiments are not supported by this server")
    if body.collection_id is None:
        raise Invalid("body.collection_id: required (the collection of test cases or tasks)")


def create(session: Session, settings: Settings, project_id: int, body: ExperimentCreate) -> Experiment:
    """Validate every reference, then write the experiment row (no job is started here)."""
    if session.scalar(select(Experiment.id).where(Experiment.project_id == project_id, Experiment.name == body.name)):
        raise Conflict(f"Experiment '{body.name}' already exists")
    _check_mode(body)
    collection = owned(session, Collection, project_id, body.collection_id, "Collection", "body.collection_id")
    template = None
    if body.prompt_template_id is not None:
        template = owned(
            session, PromptTemplate, project_id, body.prompt_template_id, "Prompt template", "body.prompt_template_id"
        )
    elif body.response_column_id is None and body.evaluation_mode != "AGENTIC":
        raise Invalid(
            "body.prompt_template_id: required unless response_column_id names the responses "
            "or the experiment is AGENTIC"
        )
    if body.llm_config_id is not None:
        owned(session, LLMConfig, project_id, body.llm_config_id, "LLM config", "body.llm_config_id")
    _check_response_column(collection, body.response_column_id)
    criterion_set = _resolve_criterion_set(session, project_id, body, template)
    experiment = Experiment(
        project_id=project_id,
        name=body.name,
        description=body.description or "",
        prompt_template_id=template.id if template else None,
        collection_id=collection.id,
        criterion_set_id=criterion_set.id,
        # The rows too (they agree with the ids): the view serialises them without loading them again.
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
        llm_config_id=body.llm_config_id,
        rating_mode=body.rating_mode,
        rating_version=execution.resolve_rating_version(settings, body.rating_version),
        n_epochs=1 if body.response_column_id is not None else body.n_epochs,
        generation_params=body.generation_params.model_dump(exclude_none=True) if body.generation_params else None,
        response_column_id=body.response_column_id,
        evaluation_mode=body.evaluation_mode,
        agent_config=body.agent_config,
        evaluation_agent_config=body.evaluation_agent_config,
        use_cache=body.use_cache,
        time_limit_seconds=body.time_limit_seconds,
        judge_trials=body.judge_trials,
    )
    if body.evaluation_mode == "AGENTIC":
        agent_results.freeze(session, experiment, collection)
    session.add(experiment)
    session.flush()
    return experiment


def list_(session: Session, project_id: int, query: ExperimentQuery, page_size: int) -> Paged[Any]:
    stmt: Select[Any] = select(Experiment).where(Experiment.project_id == project_id)
    if query.experiment_name is not None:
        stmt = stmt.where(Experiment.name == query.experiment_name)
    if query.experiment_name_search:
        stmt = stmt.where(Experiment.name.contains(query.experiment_name_search, autoescape=True))
    for column, value in (
        (Experiment.prompt_template_id, query.prompt_template_id),
        (Experiment.collection_id, query.collection_id),
        (Experiment.llm_config_id, query.llm_config_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    page = paginate(session, stmt.order_by(Experiment.id.desc()), query.page, page_size)
    return Paged(items=[view(session, e) for e in page.items], count=page.count)


def delete(session: Session, project_id: int, experiment_id: int) -> None:
    session.delete(get(session, project_id, experiment_id))
    session.flush()
