"""What the Studio dashboard shows beyond the REST API: experiment summaries, filtered response tables,
A/B comparisons. Aggregates run in SQL and tables fetch one page, so a 10,000-response experiment
renders in a few queries whatever its size."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, Float, Select, String, and_, case, cast, exists, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from models.orm import (
    Collection,
    CriterionSet,
    Entry,
    Experiment,
    Job,
    LLMConfig,
    PromptResponse,
    PromptTemplate,
    Rating,
    Review,
    utcnow,
)
from models.schemas.collections import CollectionCreate
from models.schemas.criteria import CriterionIn, CriterionSetCreate
from models.schemas.experiments import ExperimentCreate
from services import (
    collections,
    comparisons,
    consistency,
    criteria,
    experiments,
    jobs,
    results,
    reviews,
    runs,
    statistics,
)
from services.errors import Conflict, Invalid, NotFound, not_found, owned
from services.pagination import Paged, paginate
from services.responses import response_text
from services.settings import Settings
from services.states import TaskState

ResponseFilter = Literal["all", "failed", "failing", "rating_errors", "passed"]
ExperimentStatusFilter = Literal["all", "running", "SUCCESS", "FAILURE", "REVOKED", "TIMEOUT", "REJECTED", "never"]
ExperimentSort = Literal["newest", "oldest", "name", "pass_rate"]
ERROR_SUMMARY_LENGTH = 160


def rate(yes: int, verdicts: int) -> float | None:
    return yes / verdicts if verdicts else None


# ---- experiments list


@dataclass
class ExperimentRow:
    experiment: Experiment
    status: str | None
    pass_rate: float | None
    progress: dict[str, int] | None = None


def latest_job(session: Session, experiment_id: int) -> Job | None:
    """The experiment's newest job (running or ended): what its page follows."""
    stmt = select(Job).where(Job.experiment_id == experiment_id).order_by(Job.created_at.desc(), Job.id).limit(1)
    return session.scalar(stmt)


def job_to_follow(session: Session, project_id: int, experiment_id: int) -> str:
    """The id of the job an experiment's page follows live: its newest; 404 when it never ran."""
    owned(session, Experiment, project_id, experiment_id, "Experiment")
    job = latest_job(session, experiment_id)
    if job is None:
        raise NotFound(f"Experiment {experiment_id} has never run")
    return job.id


NEWEST_FIRST = (Job.created_at.desc(), Job.id)


def _latest_status() -> Any:
    newest = select(Job.status).where(Job.experiment_id == Experiment.id).order_by(*NEWEST_FIRST).limit(1)
    return newest.correlate(Experiment).scalar_subquery()


def latest_jobs(session: Session, experiment_ids: list[int]) -> dict[int, Job]:
    """The newest job of each experiment that has one, in one query whatever their number."""
    rank = func.row_number().over(partition_by=Job.experiment_id, order_by=NEWEST_FIRST).label("rank")
    ranked = select(Job, rank).where(Job.experiment_id.in_(experiment_ids)).subquery()
    newest = aliased(Job, ranked)
    return {job.experiment_id: job for job in session.scalars(select(newest).where(ranked.c.rank == 1))}


def _pass_rates(where: Any) -> Select[Any]:
    """(experiment id, YES verdicts, verdicts) of the experiments whose responses match `where`."""
    yes = func.sum(case((Rating.rating == "YES", 1), else_=0))
    return (
        select(PromptResponse.experiment_id, yes.label("yes"), func.count(Rating.rating).label("verdicts"))
        .join(Rating, Rating.response_id == PromptResponse.id)
        .where(where)
        .group_by(PromptResponse.experiment_id)
    )


def _order(sort: ExperimentSort, project_id: int) -> tuple[Any, tuple[Any, ...]]:
    """What to join and order by; only sorting by pass rate needs every experiment's rate."""
    if sort != "pass_rate":
        orders = {
            "newest": (Experiment.id.desc(),),
            "oldest": (Experiment.id,),
            "name": (Experiment.name, Experiment.id),
        }
        return None, orders[sort]
    rates = _pass_rates(PromptResponse.project_id == project_id).subquery()
    pass_rate = cast(rates.c.yes, Float) / func.nullif(rates.c.verdicts, 0)
    return rates, (func.coalesce(pass_rate, -1.0).desc(), Experiment.id.desc())


def _status_clause(status_col: Any, status: ExperimentStatusFilter) -> Any:
    if status == "running":
        return status_col.in_(jobs.ACTIVE_STATES)
    if status == "never":
        return status_col.is_(None)
    return status_col == status


@dataclass(frozen=True)
class ExperimentFilters:
    status: ExperimentStatusFilter = "all"
    q: str = ""
    sort: ExperimentSort = "newest"
    page: int = 1


def list_experiments(
    session: Session, project_id: int, filters: ExperimentFilters, page_size: int
) -> Paged[ExperimentRow]:
    """A page of the project's experiments with their latest job's state, progress and pass rate."""
    status_col = _latest_status()
    stmt: Select[Any] = select(Experiment, status_col).where(Experiment.project_id == project_id)
    if filters.status != "all":
        stmt = stmt.where(_status_clause(status_col, filters.status))
    if filters.q:
        stmt = stmt.where(Experiment.name.icontains(filters.q, autoescape=True))
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rates, order = _order(filters.sort, project_id)
    if rates is not None:
        stmt = stmt.outerjoin(rates, rates.c.experiment_id == Experiment.id)
    rows = session.execute(stmt.order_by(*order).limit(page_size).offset((filters.page - 1) * page_size)).all()
    ids = [e.id for e, _ in rows]
    verdicts = {
        i: (int(y or 0), int(n)) for i, y, n in session.execute(_pass_rates(PromptResponse.experiment_id.in_(ids)))
    }
    items = [ExperimentRow(e, s, rate(*verdicts.get(e.id, (0, 0)))) for e, s in rows]
    running = [row.experiment.id for row in items if row.status in jobs.ACTIVE_STATES]
    progress = _progress(session, latest_jobs(session, running)) if running else {}
    for row in items:
        row.progress = progress.get(row.experiment.id)
    return Paged(items=items, count=count)


def _progress(session: Session, newest: dict[int, Job]) -> dict[int, dict[str, Any]]:
    counts = jobs.experiment_progress(session, list(newest.values()))
    return {experiment_id: {"status": job.status, **counts[job.id]} for experiment_id, job in newest.items()}


def progress_of(session: Session, project_id: int, experiment_ids: list[int]) -> dict[str, Any]:
    """The list's live column: the newest job of each given experiment; "STARTED" while any of them runs."""
    found = session.scalars(
        select(Experiment.id).where(Experiment.project_id == project_id, Experiment.id.in_(experiment_ids))
    ).all()
    progress = _progress(session, latest_jobs(session, list(found))) if found else {}
    running = any(p["status"] in jobs.ACTIVE_STATES for p in progress.values())
    return {"status": TaskState.STARTED if running else TaskState.SUCCESS, "experiments": progress}


# ---- one experiment


@dataclass
class CriterionStat:
    id: int
    text: str
    yes: int
    verdicts: int

    @property
    def pass_rate(self) -> float | None:
        return rate(self.yes, self.verdicts)

    @property
    def interval(self) -> statistics.Interval | None:
        """The 95% Wilson interval of the pass rate."""
        return statistics.wilson(self.yes, self.verdicts).interval


def epoch_stats(session: Session, experiment_id: int) -> list[CriterionStat]:
    """The pass rate of each epoch over every criterion, as chart rows (an experiment run n_epochs times)."""
    yes = func.sum(case((Rating.rating == "YES", 1), else_=0))
    rows = session.execute(
        select(PromptResponse.epoch, yes, func.count(Rating.rating))
        .join(Rating, Rating.response_id == PromptResponse.id)
        .where(PromptResponse.experiment_id == experiment_id)
        .group_by(PromptResponse.epoch)
        .order_by(PromptResponse.epoch)
    ).all()
    return [CriterionStat(epoch, f"Epoch {epoch}", int(y or 0), int(n)) for epoch, y, n in rows]


@dataclass
class Summary:
    """Everything the experiment page shows above its responses table."""

    experiment: Experiment
    totals: results.ResponseTotals  # the numbers the REST API's results report too
    cost_usd: float
    failed_ratings: int
    criteria: list[CriterionStat]
    errors: list[ErrorGroup]
    job: Job | None
    progress: dict[str, int] | None = None
    agreement: list[reviews.CriterionAgreement] = field(default_factory=list)
    latency: Latency | None = None
    run_time: RunTime | None = None
    consistency: consistency.Consistency | None = None  # with judge_trials > 1
    epochs: list[CriterionStat] = field(default_factory=list)  # with more than one epoch

    @property
    def pass_rate(self) -> float | None:
        return rate(sum(c.yes for c in self.criteria), sum(c.verdicts for c in self.criteria))


@dataclass(frozen=True)
class ErrorGroup:
    """Generation errors that start alike: the shared start, how many, and one full message."""

    summary: str
    count: int
    full: str

    @property
    def cut(self) -> bool:
        return len(self.full) > len(self.summary)


def error_summary(session: Session, experiment_id: int, limit: int = 10) -> list[ErrorGroup]:
    """The most frequent generation errors, grouped by their first characters, each with a full example."""
    message = func.substr(PromptResponse.error, 1, ERROR_SUMMARY_LENGTH)
    rows = session.execute(
        select(message, func.count(), func.max(PromptResponse.error))
        .where(PromptResponse.experiment_id == experiment_id, PromptResponse.error.is_not(None))
        .group_by(message)
        .order_by(func.count().desc())
        .limit(limit)
    ).all()
    return [ErrorGroup(str(text), int(n), str(full)) for text, n, full in rows]


@dataclass(frozen=True)
class Latency:
    """How long the model took per generated response: a histogram over `edges` (seconds)."""

    edges: list[float]
    counts: list[int]

    @property
    def peak(self) -> int:
        return max(self.counts, default=0)


def latency_histogram(session: Session, experiment_id: int, bins: int = 20) -> Latency | None:
    """Model time of the generated responses in `bins` equal bins, counted in SQL (two queries whatever
    the experiment's size); None before any response has a duration."""
    seconds = PromptResponse.duration_seconds
    where = (PromptResponse.experiment_id == experiment_id, PromptResponse.error.is_(None), seconds.is_not(None))
    low, high = session.execute(select(func.min(seconds), func.max(seconds)).where(*where)).one()
    if low is None:
        return None
    bins = bins if high > low else 1
    width = (high - low) / bins or 1.0
    edges = [low + width * i for i in range(bins)] + [high]
    counted = [
        func.sum(
            case(
                (seconds >= edges[i] if i == bins - 1 else and_(seconds >= edges[i], seconds < edges[i + 1]), 1),
                else_=0,
            )
        )
        for i in range(bins)
    ]
    counts = session.execute(select(*counted).where(*where)).one()
    return Latency([float(e) for e in edges], [int(c or 0) for c in counts])


@dataclass(frozen=True)
class RunTime:
    """The experiment's runs: how many, and their time from start to end (now while one runs) summed, so a
    retry adds its own minutes rather than the hours since the experiment was created."""

    runs: int
    seconds: float | None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def run_time(session: Session, experiment_id: int) -> RunTime:
    spans = session.execute(select(Job.started_at, Job.finished_at).where(Job.experiment_id == experiment_id)).all()
    started = [(start, end) for start, end in spans if start is not None]
    if not started:
        return RunTime(len(spans), None)
    now = utcnow()
    total = sum((_aware(end or now) - _aware(start)).total_seconds() for start, end in started)
    return RunTime(len(spans), max(total, 0.0))


def summary(session: Session, project_id: int, experiment_id: int) -> Summary:
    experiment = owned(session, Experiment, project_id, experiment_id, "Experiment")
    totals = results.response_totals(session, experiment.id)
    stats = results.rating_stats(session, experiment.id)
    criteria = [
        CriterionStat(c.id, c.label or c.criterion_str, *stats.by_criterion.get(c.id, (0, 0)))
        for c in results.criteria_of(session, experiment)
    ]
    job = latest_job(session, experiment.id)
    return Summary(
        experiment=experiment,
        totals=totals,
        cost_usd=totals.input_cost_usd + totals.output_cost_usd + stats.input_cost + stats.output_cost,
        failed_ratings=stats.failed,
        criteria=criteria,
        errors=error_summary(session, experiment.id),
        job=job,
        progress=jobs.progress(session, job) if job is not None else None,
        agreement=reviews.experiment_reviews(session, project_id, experiment.id).criteria,
        latency=latency_histogram(session, experiment.id),
        run_time=run_time(session, experiment.id),
        consistency=consistency.consistency(session, project_id, experiment.id)
        if experiment.judge_trials > 1
        else None,
        epochs=epoch_stats(session, experiment.id) if totals.completed_epochs > 1 else [],
    )


# ---- the responses table


@dataclass
class ResponseRow:
    id: int
    entry_id: int
    epoch: int
    variables: dict[str, Any]
    text: str
    error: str | None
    verdicts: dict[int, str | None] = field(default_factory=dict)  # criterion id -> YES, NO or None (failed)


@dataclass(frozen=True)
class ResponseFilters:
    """The responses table's filters: a status, failing one criterion, text in the input or answer."""

    status: ResponseFilter = "all"
    criterion_id: int | None = None
    q: str = ""
    page: int = 1


def _failing(criterion_id: int | None = None) -> Any:
    clause = and_(Rating.response_id == PromptResponse.id, Rating.rating == "NO")
    if criterion_id is not None:
        clause = and_(clause, Rating.criterion_id == criterion_id)
    return exists().where(clause)


def _rating_failed() -> Any:
    return exists().where(Rating.response_id == PromptResponse.id, Rating.rating.is_(None))


def _passed() -> Any:
    """Generated, rated YES at least once, and no NO or failed rating: an unrated response has not passed."""
    rated_yes = exists().where(Rating.response_id == PromptResponse.id, Rating.rating == "YES")
    return and_(PromptResponse.error.is_(None), rated_yes, ~_failing(), ~_rating_failed())


def _json_or_empty(column: Any, json_type: str, empty: str) -> Any:
    # PostgreSQL's JSON set functions raise on any other JSON type; a stray `null` must not break the page.
    return case((func.json_typeof(column) == json_type, column), else_=cast(empty, JSON))


def _text_matches(q: str, dialect: str) -> Any:
    """`q` is in the answer (a message's content) or an input value: the decoded values, not the stored JSON
    text, so keys never match while quotes and non-ASCII do; `%` and `_` are literal."""
    if dialect == "postgresql":
        elements = func.json_array_elements(_json_or_empty(PromptResponse.messages, "array", "[]"))
        messages = elements.table_valued("value")
        values = func.json_each_text(_json_or_empty(Entry.input_values, "object", "{}")).table_valued("key", "value")
        content = messages.c.value.op("->>")("content")
    else:  # SQLite's json_each walks an array's elements and an object's values alike
        messages = func.json_each(PromptResponse.messages).table_valued("value")
        values = func.json_each(Entry.input_values).table_valued("value")
        content = func.json_extract(messages.c.value, "$.content")
    return or_(
        exists().select_from(messages).where(cast(content, String).icontains(q, autoescape=True)),
        exists().select_from(values).where(cast(values.c.value, String).icontains(q, autoescape=True)),
    )


def _filtered(stmt: Select[Any], filters: ResponseFilters, dialect: str) -> Select[Any]:
    clauses = {
        "all": None,
        "failed": PromptResponse.error.is_not(None),
        "failing": _failing(),
        "rating_errors": _rating_failed(),
        "passed": _passed(),
    }
    if (clause := clauses[filters.status]) is not None:
        stmt = stmt.where(clause)
    if filters.criterion_id is not None:
        stmt = stmt.where(_failing(filters.criterion_id))
    if filters.q:
        stmt = stmt.where(_text_matches(filters.q, dialect))
    return stmt


def response_page(
    session: Session, project_id: int, experiment_id: int, filters: ResponseFilters, page_size: int
) -> Paged[ResponseRow]:
    """One page of an experiment's responses in entry order, with each one's verdicts."""
    owned(session, Experiment, project_id, experiment_id, "Experiment")
    columns = (
        PromptResponse.id,
        PromptResponse.entry_id,
        PromptResponse.epoch,
        Entry.input_values,
        PromptResponse.messages,
        PromptResponse.error,
    )
    stmt = select(*columns).join(Entry, Entry.id == PromptResponse.entry_id)
    dialect = session.get_bind().dialect.name
    stmt = _filtered(stmt.where(PromptResponse.experiment_id == experiment_id), filters, dialect)
    stmt = stmt.order_by(PromptResponse.entry_id, PromptResponse.epoch, PromptResponse.id)
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.execute(stmt.limit(page_size).offset((filters.page - 1) * page_size)).all()
    items = [
        ResponseRow(r.id, r.entry_id, r.epoch, r.input_values or {}, response_text(r.messages), r.error) for r in rows
    ]
    by_id = {row.id: row for row in items}
    if by_id:
        verdicts = select(Rating.response_id, Rating.criterion_id, Rating.rating).where(Rating.response_id.in_(by_id))
        for response_id, criterion_id_, verdict in session.execute(verdicts):
            by_id[response_id].verdicts[criterion_id_] = verdict
    return Paged(items=items, count=count)


@dataclass
class ExperimentPage:
    summary: Summary
    responses: Paged[ResponseRow]


def experiment_page(
    session: Session, project_id: int, experiment_id: int, filters: ResponseFilters, page_size: int
) -> ExperimentPage:
    """The experiment page: its summary and the first (or asked-for) page of its responses."""
    head = summary(session, project_id, experiment_id)
    return ExperimentPage(head, response_page(session, project_id, experiment_id, filters, page_size))


def response_detail(session: Session, project_id: int, experiment_id: int, response_id: int) -> PromptResponse:
    """One response of the experiment with its prompt and every rating (failed ones too)."""
    response = owned(session, PromptResponse, project_id, response_id, "Response")
    if response.experiment_id != experiment_id:
        raise not_found("Response", response_id)
    return response


@dataclass
class ResponseDrawer:
    response: PromptResponse
    reviews: dict[int, Review]  # by rating id


def response_drawer(session: Session, project_id: int, experiment_id: int, response_id: int) -> ResponseDrawer:
    """The drawer: a response with every rating and the people's reviews of them."""
    response = response_detail(session, project_id, experiment_id, response_id)
    return ResponseDrawer(response, reviews.of_response(session, response.id))


# ---- A/B comparison


@dataclass
class CriterionDiff:
    text: str
    a: float | None
    b: float | None

    @property
    def diff(self) -> float | None:
        return self.b - self.a if self.a is not None and self.b is not None else None


@dataclass
class PairRow:
    entry_id: int
    epoch: int
    variables: dict[str, Any]
    a_text: str
    a_score: float
    b_text: str
    b_score: float


@dataclass
class Comparison:
    a: Experiment
    b: Experiment
    criteria: list[CriterionDiff]
    improved: list[PairRow]
    regressed: list[PairRow]
    counts: dict[str, int]


def _scores(experiment_id: int) -> Any:
    """Each response's share of YES verdicts; one without a verdict (its generation failed, or it is not
    rated yet) passed nothing, so scores 0: an error fixed in B counts as improved."""
    yes = func.sum(case((Rating.rating == "YES", 1), else_=0))
    score = func.coalesce(cast(yes, Float) / func.nullif(func.count(Rating.rating), 0), 0.0)
    return (
        select(
            PromptResponse.id,
            PromptResponse.entry_id,
            PromptResponse.epoch,
            PromptResponse.messages.label("m"),
            PromptResponse.error.label("error"),
            score.label("score"),
        )
        .outerjoin(Rating, Rating.response_id == PromptResponse.id)
        .where(PromptResponse.experiment_id == experiment_id)
        .group_by(PromptResponse.id)
        .subquery()
    )


def _criterion_diffs(session: Session, a: Experiment, b: Experiment) -> list[CriterionDiff]:
    """Pass rates per criterion text, so experiments with different criterion sets still line up."""
    rates: dict[str, list[float | None]] = {}
    for side, experiment in enumerate((a, b)):
        stats = results.rating_stats(session, experiment.id)
        for c in results.criteria_of(session, experiment):
            rates.setdefault(c.label or c.criterion_str, [None, None])[side] = rate(
                *stats.by_criterion.get(c.id, (0, 0))
            )
    return [CriterionDiff(text, ra, rb) for text, (ra, rb) in rates.items()]


def _answer(messages: list[Any] | None, error: str | None) -> str:
    return f"Generation failed: {error}" if error else response_text(messages)


def _pairs(session: Session, sa: Any, sb: Any, improved: bool, limit: int) -> list[PairRow]:
    delta = sb.c.score - sa.c.score
    a_text, b_text = (sa.c.m, sa.c.error), (sb.c.m, sb.c.error)
    stmt = (
        select(sa.c.entry_id, sa.c.epoch, Entry.input_values, *a_text, sa.c.score, *b_text, sb.c.score)
        .join(sb, and_(sb.c.entry_id == sa.c.entry_id, sb.c.epoch == sa.c.epoch))
        .join(Entry, Entry.id == sa.c.entry_id)
        .where(delta > 0 if improved else delta < 0)
        .order_by(delta.desc() if improved else delta, sa.c.entry_id)
        .limit(limit)
    )
    return [
        PairRow(entry, epoch, values or {}, _answer(ma, ea), float(a), _answer(mb, eb), float(b))
        for entry, epoch, values, ma, ea, a, mb, eb, b in session.execute(stmt)
    ]


def compare(session: Session, project_id: int, a_id: int, b_id: int, limit: int = 50) -> Comparison:
    """A against B: per-criterion pass rates and the inputs whose score went up or down."""
    a = owned(session, Experiment, project_id, a_id, "Experiment")
    b = owned(session, Experiment, project_id, b_id, "Experiment")
    if a.id == b.id:
        raise Conflict("Choose two different experiments to compare")
    sa, sb = _scores(a.id), _scores(b.id)
    delta = sb.c.score - sa.c.score
    up, down, same, matched = session.execute(
        select(
            func.sum(case((delta > 0, 1), else_=0)),
            func.sum(case((delta < 0, 1), else_=0)),
            func.sum(case((delta == 0, 1), else_=0)),
            func.count(),
        )
        .select_from(sa)
        .join(sb, and_(sb.c.entry_id == sa.c.entry_id, sb.c.epoch == sa.c.epoch))
    ).one()
    return Comparison(
        a=a,
        b=b,
        criteria=_criterion_diffs(session, a, b),
        improved=_pairs(session, sa, sb, True, limit),
        regressed=_pairs(session, sa, sb, False, limit),
        counts={
            "improved": int(up or 0),
            "regressed": int(down or 0),
            "unchanged": int(same or 0),
            "matched": int(matched),
        },
    )


# ---- N-way comparison with statistics


@dataclass
class MatrixRow:
    """One test case across the compared experiments: each one's score (None: it has no response)."""

    entry_id: int
    scores: list[float | None]
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def disagrees(self) -> bool:
        return len({s for s in self.scores if s is not None}) > 1


def _case_score(folded: comparisons.Outcomes, entry_id: int, criterion: str | None) -> float | None:
    if entry_id not in folded.responses:
        return None
    if criterion is None:
        return folded.overall(entry_id, folded.criteria) if folded.criteria else None
    return folded.score(criterion, entry_id) if criterion in folded.criteria else None


@dataclass
class CaseMatrix:
    rows: list[MatrixRow]  # the shown rows, at most `limit`
    cases: int
    disagreements: int


def case_matrix(
    session: Session, folded: list[comparisons.Outcomes], criterion: str | None, everything: bool, limit: int
) -> CaseMatrix:
    """Every test case's score in each experiment, on one criterion or all; by default only the cases
    the experiments disagree on, which are where a difference comes from."""
    entries = sorted(set().union(*(f.responses for f in folded)))
    rows = [MatrixRow(e, [_case_score(f, e, criterion) for f in folded]) for e in entries]
    disagreeing = [row for row in rows if row.disagrees]
    shown = (rows if everything else disagreeing)[:limit]
    stmt = select(Entry.id, Entry.input_values).where(Entry.id.in_([row.entry_id for row in shown]))
    values = {entry_id: v for entry_id, v in session.execute(stmt)} if shown else {}
    for row in shown:
        row.variables = values.get(row.entry_id) or {}
    return CaseMatrix(shown, len(rows), len(disagreeing))


@dataclass(frozen=True)
class CompareChoice:
    ids: list[int]  # the baseline first
    criterion: str | None = None
    everything: bool = False


@dataclass
class ComparePage:
    choices: list[tuple[int, str]]
    stats: comparisons.Comparison | None = None
    experiments: list[Experiment] = field(default_factory=list)
    matrix: CaseMatrix | None = None
    result: Comparison | None = None  # the improved and regressed inputs, for exactly two


def compare_page(session: Session, project_id: int, choice: CompareChoice, limit: int = 200) -> ComparePage:
    """The experiments to choose from and, once two to eight are chosen, their statistics, the per-case
    matrix and (for two) the inputs that improved or regressed."""
    stmt = select(Experiment.id, Experiment.name).where(Experiment.project_id == project_id)
    page = ComparePage([(i, n) for i, n in session.execute(stmt.order_by(Experiment.id.desc()).limit(500))])
    if len(choice.ids) < 2:
        return page
    folded = comparisons.load(session, project_id, choice.ids)
    page.stats = comparisons.compare_outcomes(folded)
    page.experiments = [f.experiment for f in folded]
    page.matrix = case_matrix(session, folded, choice.criterion, choice.everything, limit)
    if len(choice.ids) == 2:
        page.result = compare(session, project_id, *choice.ids)
    return page


# ---- creating from the Studio: an experiment launched, a collection uploaded


@dataclass(frozen=True)
class Launch:
    """The new-experiment form: a template, a collection, a criterion set or new criteria, a model."""

    name: str
    prompt_template_id: int
    collection_id: int
    criterion_set_id: int | None
    new_criteria: list[str]
    llm_config_id: int | None
    n_epochs: int = 1
    judge_trials: int = 1


@dataclass
class LaunchChoices:
    templates: list[PromptTemplate]
    collections: list[tuple[int, str]]
    criterion_sets: list[tuple[int, str]]
    llm_configs: list[tuple[int, str]]


def launch_choices(session: Session, project_id: int, limit: int = 500) -> LaunchChoices:
    """What the new-experiment form offers: each template's newest version, the collections, sets, models."""

    def pairs(model: Any, label: Any) -> list[tuple[int, str]]:
        stmt = select(model.id, label).where(model.project_id == project_id).order_by(label, model.id).limit(limit)
        return [(i, str(n)) for i, n in session.execute(stmt)]

    newest = [versions[0] for versions in templates_by_name(session, project_id, limit).values()]
    return LaunchChoices(
        newest,
        pairs(Collection, Collection.name),
        pairs(CriterionSet, CriterionSet.name),
        pairs(LLMConfig, LLMConfig.name),
    )


def _criterion_set_for(session: Session, project_id: int, launch: Launch) -> int:
    if launch.criterion_set_id is not None:
        return launch.criterion_set_id
    if not launch.new_criteria:
        raise Invalid("form.criteria: choose a criterion set or write at least one criterion")
    body = CriterionSetCreate(
        name=f"{launch.name} criteria", criteria=[CriterionIn(criterion_str=text) for text in launch.new_criteria]
    )
    return criteria.create_set(session, project_id, body).id


def launch(session: Session, settings: Settings, project_id: int, form: Launch) -> Job:
    """Create the experiment (and its criterion set when new criteria were written) and its first run."""
    body = ExperimentCreate(
        name=form.name,
        prompt_template_id=form.prompt_template_id,
        collection_id=form.collection_id,
        criterion_set_id=_criterion_set_for(session, project_id, form),
        llm_config_id=form.llm_config_id,
        n_epochs=form.n_epochs,
        judge_trials=form.judge_trials,
        generate=True,
    )
    experiment = experiments.create(session, settings, project_id, body)
    return runs.start_generation(session, settings, experiment, rating_mode=body.rating_mode, n_epochs=body.n_epochs)


UploadFormat = Literal["csv", "jsonl"]


def parse_upload(data: bytes, filename: str) -> list[dict[str, Any]]:
    """The rows of an uploaded file: JSONL (one object a line) or CSV (a header row, then one row per test
    case), told apart by the file name's extension."""
    if filename.lower().endswith((".jsonl", ".ndjson", ".json")):
        return collections.parse_jsonl(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"file: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise Invalid("file: the CSV has no header row naming the columns")
    rows = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise Invalid(f"file line {number}: more values than the header has columns")
        rows.append({key: value or "" for key, value in row.items()})
    return rows


def upload_collection(session: Session, project_id: int, name: str, data: bytes, filename: str) -> int:
    """A new collection holding every row of the uploaded CSV or JSONL file; its id."""
    rows = parse_upload(data, filename)
    if not rows:
        raise Invalid("file: no rows to add")
    return collections.create(session, project_id, CollectionCreate(name=name, variables=rows)).id


# ---- library pages: templates, collections, criterion sets


def templates_by_name(session: Session, project_id: int, limit: int = 500) -> dict[str, list[PromptTemplate]]:
    """Every template name with its versions, newest version first."""
    stmt = (
        select(PromptTemplate)
        .where(PromptTemplate.project_id == project_id)
        .order_by(PromptTemplate.name, PromptTemplate.version.desc())
        .limit(limit)
    )
    grouped: dict[str, list[PromptTemplate]] = {}
    for template in session.scalars(stmt):
        grouped.setdefault(template.name, []).append(template)
    return grouped


@dataclass
class CollectionPage:
    collection: Collection
    entries: Paged[Entry]


def collection_page(session: Session, project_id: int, collection_id: int, page: int, page_size: int) -> CollectionPage:
    entries = collections.list_entries(session, project_id, collection_id, page, page_size)
    return CollectionPage(collections.get(session, project_id, collection_id), entries)


def criterion_sets(session: Session, project_id: int, page: int, page_size: int) -> Paged[CriterionSet]:
    stmt = (
        select(CriterionSet)
        .where(CriterionSet.project_id == project_id)
        .options(selectinload(CriterionSet.criteria))
        .order_by(CriterionSet.name, CriterionSet.id)
    )
    return paginate(session, stmt, page, page_size)
