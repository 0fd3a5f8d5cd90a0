"""SQLAlchemy 2 typed tables. Every row that belongs to a tenant carries `project_id`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from models.types import EncryptedText
from services.states import JobKind, TaskState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Organization(Timestamped, Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    domain: Mapped[str] = mapped_column(String(200), default="")


class Project(Timestamped, Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    organization: Mapped[Organization] = relationship(lazy="joined")


class ApiKey(Base):
    """A project-scoped key; only its SHA-256 is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudioSession(Base):
    """A Studio login: the cookie holds a random token, this row its SHA-256. Logging out deletes the row,
    so a copied cookie dies with it; deleting the API key deletes its sessions."""

    __tablename__ = "studio_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class OrgToken(Base):
    """An organization-scoped bearer token; only its SHA-256 is stored."""

    __tablename__ = "org_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CriterionSet(Timestamped, Base):
    __tablename__ = "criterion_sets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    criteria: Mapped[list[Criterion]] = relationship(
        back_populates="criterion_set",
        primaryjoin="and_(Criterion.criterion_set_id == CriterionSet.id, Criterion.superseded.is_(False))",
        order_by="(Criterion.position, Criterion.id)",
        viewonly=True,
    )
    prompt_templates: Mapped[list[PromptTemplate]] = relationship(
        back_populates="criterion_set", order_by="PromptTemplate.id", viewonly=True
    )


class Criterion(Base):
    """A yes/no question. Editing creates a new row and marks the old one superseded (ratings keep it).

    The LLM judge answers it, unless `evaluator` names an installed evaluator that computes it from
    `evaluator_params` (see services/evaluators).
    """

    __tablename__ = "criteria"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    criterion_set_id: Mapped[int] = mapped_column(ForeignKey("criterion_sets.id", ondelete="CASCADE"), index=True)
    criterion_str: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(Integer, default=0)
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    evaluator: Mapped[str | None] = mapped_column(String(200))
    evaluator_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    criterion_set: Mapped[CriterionSet] = relationship(back_populates="criteria")


class PromptTemplate(Timestamped, Base):
    __tablename__ = "prompt_templates"
    __table_args__ = (
        UniqueConstraint("project_id", "name", "version"),
        UniqueConstraint("project_id", "name", "content_hash"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(Integer)
    messages: Mapped[list[Any]] = mapped_column(default=list)
    placeholders: Mapped[list[Any]] = mapped_column(default=list)
    response_format_json_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tools: Mapped[list[Any] | None] = mapped_column(JSON)
    tool_choice: Mapped[Any | None] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    parent_prompt_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("prompt_templates.id", ondelete="SET NULL")
    )
    criterion_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("criterion_sets.id", ondelete="SET NULL"), index=True
    )
    criterion_set: Mapped[CriterionSet | None] = relationship(back_populates="prompt_templates")


class Collection(Timestamped, Base):
    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    collection_type: Mapped[str] = mapped_column(String(20), default="STANDARD")
    environment_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    columns: Mapped[list[CollectionColumn]] = relationship(
        order_by="(CollectionColumn.column_position, CollectionColumn.id)",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class CollectionColumn(Base):
    __tablename__ = "collection_columns"
    __table_args__ = (UniqueConstraint("collection_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    column_type: Mapped[str] = mapped_column(String(20), default="text")
    default_value: Mapped[str | None] = mapped_column(Text, default="")
    column_position: Mapped[int] = mapped_column(Integer, default=0)
    categorical_values: Mapped[list[Any] | None] = mapped_column(JSON)


class Entry(Base):
    """One test case of a collection (the SDK calls it TemplateVariables)."""

    __tablename__ = "entries"
    __table_args__ = (Index("ix_entries_collection_id_identity_hash", "collection_id", "identity_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    input_values: Mapped[dict[str, Any]] = mapped_column(JSON)
    environment_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    identity_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    collection: Mapped[Collection] = relationship(lazy="joined", innerjoin=True)


# Deferred: a collection is joined into every entry, prompt, response and experiment load, and counting
# 100,000 entries for each of those rows made a page of responses take seconds. Counted when read.
Collection.variables_count = column_property(
    select(func.count(Entry.id)).where(Entry.collection_id == Collection.id).correlate_except(Entry).scalar_subquery(),
    deferred=True,
)


class LLMConfig(Timestamped, Base):
    __tablename__ = "llm_configs"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    llm_model_name: Mapped[str] = mapped_column(String(500))
    llm_base_url: Mapped[str | None] = mapped_column(String(2000))
    # The provider key is needed by the workers, so it is kept, encrypted (services.crypto); the API only
    # ever shows a masked form.
    api_key: Mapped[str | None] = mapped_column(EncryptedText)
    api_version: Mapped[str | None] = mapped_column(String(100))
    max_connections: Mapped[int] = mapped_column(Integer, default=10)
    inference_type: Mapped[str] = mapped_column(String(20), default="openai")
    max_retries: Mapped[int | None] = mapped_column(Integer)
    timeout: Mapped[int | None] = mapped_column(Integer)
    system_message: Mapped[str | None] = mapped_column(Text)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    top_p: Mapped[float | None] = mapped_column(Float)
    temperature: Mapped[float | None] = mapped_column(Float)
    best_of: Mapped[int | None] = mapped_column(Integer)
    top_k: Mapped[int | None] = mapped_column(Integer)
    logprobs: Mapped[bool | None] = mapped_column(Boolean)
    top_logprobs: Mapped[int | None] = mapped_column(Integer)
    reasoning_effort: Mapped[str | None] = mapped_column(String(20))
    verbosity: Mapped[str | None] = mapped_column(String(20))
    custom_api_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    custom_response_parser: Mapped[str | None] = mapped_column(Text)
    input_price_per_mtok: Mapped[float | None] = mapped_column(Float)
    output_price_per_mtok: Mapped[float | None] = mapped_column(Float)


class Experiment(Timestamped, Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    prompt_template_id: Mapped[int | None] = mapped_column(ForeignKey("prompt_templates.id", ondelete="SET NULL"))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    criterion_set_id: Mapped[int] = mapped_column(ForeignKey("criterion_sets.id", ondelete="RESTRICT"))
    llm_config_id: Mapped[int | None] = mapped_column(ForeignKey("llm_configs.id", ondelete="SET NULL"))
    rating_mode: Mapped[str] = mapped_column(String(20), default="detailed")
    rating_version: Mapped[str | None] = mapped_column(String(100))
    n_epochs: Mapped[int] = mapped_column(Integer, default=1)
    generation_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    response_column_id: Mapped[int | None] = mapped_column(Integer)
    evaluation_mode: Mapped[str] = mapped_column(String(20), default="STANDARD")
    use_cache: Mapped[bool] = mapped_column(Boolean, default=False)
    time_limit_seconds: Mapped[int | None] = mapped_column(Integer)
    # Assay extension: the judge answers each criterion this many times (odd); the majority is the rating.
    judge_trials: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    generation_task_id: Mapped[str | None] = mapped_column(String(36))
    has_internal_error: Mapped[bool] = mapped_column(Boolean, default=False)
    agent_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evaluation_agent_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # AGENTIC: the tasks and criteria uploads are keyed by, frozen at creation (services/agent_results.py).
    agent_definition: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    prompt_template: Mapped[PromptTemplate | None] = relationship(lazy="joined")
    collection: Mapped[Collection] = relationship(lazy="joined", innerjoin=True)
    criterion_set: Mapped[CriterionSet] = relationship(lazy="joined", innerjoin=True)
    llm_config: Mapped[LLMConfig | None] = relationship(lazy="joined")


class Prompt(Base):
    """A template rendered with one entry's values; shared by every experiment using the pair."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("prompt_template_id", "entry_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_template_id: Mapped[int | None] = mapped_column(ForeignKey("prompt_templates.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    messages: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    prompt_template: Mapped[PromptTemplate | None] = relationship(lazy="joined")
    entry: Mapped[Entry] = relationship(lazy="joined", innerjoin=True)


class PromptResponse(Base):
    """A model's answer to one prompt, for one (entry, epoch) of an experiment."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("experiment_id", "entry_id", "epoch"),
        # The listing's order after experiment_id, id included: a page's ids come from the index alone.
        Index("ix_responses_experiment_page", "experiment_id", "entry_id", "epoch", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    llm_config_id: Mapped[int | None] = mapped_column(ForeignKey("llm_configs.id", ondelete="SET NULL"))
    epoch: Mapped[int] = mapped_column(Integer, default=1)
    messages: Mapped[list[Any]] = mapped_column(default=list)
    llm_model_name: Mapped[str | None] = mapped_column(String(500))
    # The job that produced it: a retried chunk skips what its own job already wrote.
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    # Set in the transaction that stores the last of its ratings.
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    annotation: Mapped[str] = mapped_column(Text, default="")
    termination_reason: Mapped[str | None] = mapped_column(String(100))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    reasoning_tokens: Mapped[int | None] = mapped_column(Integer)
    input_cost_usd: Mapped[float | None] = mapped_column(Float)
    output_cost_usd: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Reported by a client that produced the response itself (GenerationMetadata.cached_tokens).
    cached_tokens: Mapped[int | None] = mapped_column(Integer)
    # An uploaded agent trial's trajectory, kept as sent.
    trajectory: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prompt: Mapped[Prompt] = relationship(lazy="joined", innerjoin=True)
    llm_config: Mapped[LLMConfig | None] = relationship(lazy="joined")
    ratings: Mapped[list[Rating]] = relationship(
        back_populates="response", order_by="Rating.id", cascade="all, delete-orphan", lazy="selectin"
    )
    # What clients see: failed ratings (no verdict) are counted in results but never listed.
    verdicts: Mapped[list[Rating]] = relationship(
        primaryjoin="and_(Rating.response_id == PromptResponse.id, Rating.rating.is_not(None))",
        order_by="Rating.id",
        viewonly=True,
        lazy="selectin",
    )

    @property
    def generation_metadata(self) -> dict[str, Any] | None:
        return _metadata(self.llm_config, self.llm_model_name, self)


class Rating(Base):
    """A verdict on one response for one criterion; `rating` is null when the judge failed (`error`)."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("response_id", "criterion_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), index=True)
    criterion_id: Mapped[int] = mapped_column(ForeignKey("criteria.id", ondelete="CASCADE"), index=True)
    rating: Mapped[str | None] = mapped_column(String(3))
    llm_model_name: Mapped[str | None] = mapped_column(String(500))
    reasoning: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # Every trial's {"rating", "reasoning"} when the judge answered several times; `rating` is their majority.
    trials: Mapped[list[Any] | None] = mapped_column(JSON)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    input_cost_usd: Mapped[float | None] = mapped_column(Float)
    output_cost_usd: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    response: Mapped[PromptResponse] = relationship(back_populates="ratings")
    criterion: Mapped[Criterion] = relationship(lazy="joined", innerjoin=True)

    @property
    def generation_metadata(self) -> dict[str, Any] | None:
        return _metadata(None, self.llm_model_name, self)


USAGE_KEYS = ("duration_seconds", "input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens")
# The model of a response uploaded with usage but no model: 0.7.x requires `llm_model_config` then.
EXTERNAL_MODEL = {"name": "external", "llm_model_name": "external"}


def _metadata(config: LLMConfig | None, model_name: str | None, row: Any) -> dict[str, Any] | None:
    """The SDK's GenerationMetadata; 0.7.x requires `llm_model_config` whenever it is present."""
    usage = {key: getattr(row, key, None) for key in USAGE_KEYS}
    if config is None and model_name is None and all(value is None for value in usage.values()):
        return None
    model_config: Any = config
    if config is None:
        model_config = {"name": "platform default", "llm_model_name": model_name} if model_name else EXTERNAL_MODEL
    return {"llm_model_config": model_config, **usage}


def _string_enum(enum: type[StrEnum], length: int) -> Enum:
    """An enum stored as its values in a plain VARCHAR (no database enum type, no CHECK), loaded as members."""
    return Enum(
        enum, native_enum=False, create_constraint=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class Review(Base):
    """A person's verdict on a rating: confirming or overriding the judge's, with a note. Kept beside the
    rating, never in it, so the judge's verdict (what the SDK and the results report) is unchanged."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id", ondelete="CASCADE"), unique=True)
    verdict: Mapped[str] = mapped_column(String(3))
    note: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Job(Base):
    """The source of truth for a long-running task; its id is the task id clients see."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[JobKind] = mapped_column(_string_enum(JobKind, 32))
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    status: Mapped[TaskState] = mapped_column(_string_enum(TaskState, 16), default=TaskState.PENDING, index=True)
    error_msg: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    time_limit_seconds: Mapped[int | None] = mapped_column(Integer)
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class JobChunk(Base):
    """A slice of a job's items, leased by one worker at a time; an expired lease can be taken over."""

    __tablename__ = "job_chunks"
    __table_args__ = (UniqueConstraint("job_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    items: Mapped[list[Any]] = mapped_column(JSON)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class JobLog(Base):
    """Append-only log lines of a job; clients read them by cursor (the last id they saw)."""

    __tablename__ = "job_logs"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LLMCacheEntry(Base):
    """A stored model answer for the opt-in cache (see services/llm_cache.py)."""

    __tablename__ = "llm_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScenarioSet(Timestamped, Base):
    """The samples of a Persona evaluation: each scenario has a goal, an expected outcome and the values
    of the set's declared fields."""

    __tablename__ = "scenario_sets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[list[ScenarioField]] = relationship(
        order_by="ScenarioField.id", cascade="all, delete-orphan", lazy="selectin"
    )


class ScenarioField(Base):
    """A field every scenario of a set carries besides the goal and the expected outcome."""

    __tablename__ = "scenario_fields"
    __table_args__ = (UniqueConstraint("scenario_set_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_set_id: Mapped[int] = mapped_column(ForeignKey("scenario_sets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    field_type: Mapped[str] = mapped_column(String(20), default="text")
    default_value: Mapped[str] = mapped_column(Text, default="")


class Scenario(Base):
    """One scenario; `field_values` holds every declared field (defaults filled in), `identity_hash`
    what `skip_existing` compares."""

    __tablename__ = "scenarios"
    __table_args__ = (Index("ix_scenarios_scenario_set_id_identity_hash", "scenario_set_id", "identity_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_set_id: Mapped[int] = mapped_column(ForeignKey("scenario_sets.id", ondelete="CASCADE"))
    goal: Mapped[str] = mapped_column(Text)
    expected_conversation_outcome: Mapped[str] = mapped_column(Text)
    field_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    identity_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


ScenarioSet.scenarios_count = column_property(
    select(func.count(Scenario.id))
    .where(Scenario.scenario_set_id == ScenarioSet.id)
    .correlate_except(Scenario)
    .scalar_subquery()
)
