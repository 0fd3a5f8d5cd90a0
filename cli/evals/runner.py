"""Run an evaluation: one experiment per prompt x model on the cluster, watched live in the terminal."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from cli.evals.resources import Resources, ensure_all
from cli.evals.results import Cell, Report, cell_from_experiment
from cli.evals.spec import EvalSpec, Model, Prompt
from cli.rest import Assay

TERMINAL = frozenset({"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"})
# Job log lines that tell of a retried model call or a wait imposed by the provider.
RETRY_LINE = re.compile(r"retr(y|ied|ies)", re.IGNORECASE)
WAIT_LINE = re.compile(r"429|rate.?limit|retry-after", re.IGNORECASE)
POLL_SECONDS = 0.5
RESULTS_EVERY = 3.0


@dataclass
class Run:
    """One experiment being watched."""

    prompt_id: str
    model_id: str
    experiment_id: int
    task_id: str | None
    name: str
    state: str = "PENDING"
    error: str | None = None
    log_cursor: int = 0
    retries: int = 0
    waits: int = 0
    failed: int = 0
    generated: int = 0
    rated: int = 0
    total: int | None = None
    task: TaskID | None = None
    last_results: float = field(default=0.0)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def label(self) -> str:
        return f"{self.prompt_id} x {self.model_id}"


def start(api: Assay, spec: EvalSpec, ids: Resources, stamp: str) -> list[Run]:
    """Create and start every experiment (generation begins at once on the cluster)."""
    return [_start_one(api, spec, ids, prompt, model, stamp) for prompt in spec.prompts for model in spec.models]


def _start_one(api: Assay, spec: EvalSpec, ids: Resources, prompt: Prompt, model: Model, stamp: str) -> Run:
    name = f"{spec.name} / {prompt.id} / {model.id} / {stamp}"
    body: dict[str, Any] = {
        "name": name,
        "description": spec.description,
        "prompt_template_id": ids.templates[prompt.id],
        "collection_id": ids.collection_id,
        "criterion_set_id": ids.criterion_set_id,
        "llm_config_id": ids.llm_configs[model.id],
        "generate": True,
        "rating_mode": spec.rating_mode,
        "n_epochs": spec.epochs,
    }
    if spec.time_limit_seconds:
        body["time_limit_seconds"] = spec.time_limit_seconds
    created = api.post("experiments", body)
    return Run(prompt.id, model.id, created["id"], created.get("generation_task_id"), name)


def poll(api: Assay, run: Run) -> list[str]:
    """Advance `run` from its job's status; returns the new log lines."""
    if run.task_id is None:
        run.state = "SUCCESS"
        return []
    status = api.get(f"experiments/{run.experiment_id}/generation/{run.task_id}", log_cursor=run.log_cursor)
    run.state = status.get("state") or status["status"]
    run.error = status.get("error_msg")
    run.generated = status.get("completed_responses") or 0
    run.rated = status.get("completed_ratings") or 0
    run.total = status.get("total_responses") or run.total
    run.log_cursor = status.get("log_cursor") or run.log_cursor
    lines = (status.get("logs_delta") or "").splitlines()
    run.retries += sum(1 for line in lines if RETRY_LINE.search(line))
    run.waits += sum(1 for line in lines if WAIT_LINE.search(line))
    return lines


def refresh_failed(api: Assay, run: Run) -> None:
    """Failed generations and ratings so far (the status carries no such count; the results do)."""
    results = api.get(f"experiments/{run.experiment_id}").get("results") or {}
    run.failed = results.get("num_failed_responses", 0) + results.get("num_failed_ratings", 0)
    run.last_results = time.monotonic()


class Display:
    """Rich progress: one line per experiment (generated, rated, failed, retries and waits, ETA)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
        )

    def add(self, run: Run) -> None:
        run.task = self.progress.add_task(run.label, total=None, detail="queued")

    def update(self, run: Run, lines: list[str]) -> None:
        for line in lines:
            self.console.print(f"[dim]{run.label}:[/dim] {line}", markup=True, highlight=False)
        detail = f"generated {run.generated}  rated {run.rated}  failed {run.failed}"
        if run.retries or run.waits:
            detail += f"  retries {run.retries}  waits {run.waits}"
        if run.done:
            detail += f"  [bold]{run.state}[/bold]"
        assert run.task is not None
        self.progress.update(run.task, total=run.total, completed=run.rated, detail=detail)

    @contextmanager
    def live(self) -> Iterator[Display]:
        with self.progress:
            yield self


def watch(api: Assay, runs: list[Run], display: Display) -> None:
    """Follow every run until each ends (Ctrl-C cancels the ones still running)."""
    for run in runs:
        display.add(run)
    try:
        with display.live():
            _follow(api, runs, display)
    except KeyboardInterrupt:
        cancel(api, runs)
        display.console.print("Interrupted: the running experiments were cancelled.")
        raise


def _follow(api: Assay, runs: list[Run], display: Display) -> None:
    while not all(run.done for run in runs):
        for run in (r for r in runs if not r.done):
            lines = poll(api, run)
            if run.done or time.monotonic() - run.last_results >= RESULTS_EVERY:
                refresh_failed(api, run)
            display.update(run, lines)
        time.sleep(POLL_SECONDS)


def collect(api: Assay, spec: EvalSpec, ids: Resources, runs: list[Run]) -> Report:
    cells = [_cell(api, spec, ids, run) for run in runs]
    return Report(spec.name, api.base_url, cells)


def _cell(api: Assay, spec: EvalSpec, ids: Resources, run: Run) -> Cell:
    experiment = api.get(f"experiments/{run.experiment_id}")
    cell = cell_from_experiment(spec, run.prompt_id, run.model_id, experiment, ids.criterion_ids, run.state)
    cell.error = run.error
    return cell


def cancel(api: Assay, runs: list[Run]) -> None:
    for run in runs:
        if not run.done:
            api.post(f"experiments/{run.experiment_id}/cancel")


def evaluate(api: Assay, spec: EvalSpec, console: Console) -> Report:
    """Create or reuse the resources, run every experiment, and read the results."""
    ids = ensure_all(api, spec)
    runs = start(api, spec, ids, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {secrets.token_hex(2)}")
    console.print(
        f"Running {len(runs)} experiment(s) of '{spec.name}' on {api.base_url} "
        f"({len(spec.prompts)} prompt(s) x {len(spec.models)} model(s), {len(spec.criteria)} criteria)"
    )
    watch(api, runs, Display(console))
    return collect(api, spec, ids, runs)
