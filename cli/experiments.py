"""`assay experiments`: list, show, watch, cancel, retry, export and compare experiments over REST."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli.evals.reports import pct, seconds
from cli.evals.runner import Display, Run, watch
from cli.rest import Assay

base_url_option = click.option(
    "--base-url", default=None, help="the Assay (default: $ASSAY_BASE_URL or the config file)"
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")


def _console() -> Console:
    return Console(highlight=False)


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def state_of(experiment: dict[str, Any]) -> str:
    """running, failed, ended or not run: the experiment resource does not say how a run other than a
    failed one ended (cancelled, timed out); its job's status does, while its task id is known."""
    if experiment.get("generation_task_id"):
        return "running"
    if experiment.get("has_internal_error"):
        return "failed"
    return "ended" if experiment.get("results") else "not run"


def _rate(experiment: dict[str, Any]) -> float | None:
    results = experiment.get("results") or {}
    return results["mean_all_ratings"]["yes"] if results.get("num_rated_responses") else None


@click.group()
def experiments() -> None:
    """Experiments of the key's project, read and driven through the REST API."""


@experiments.command("list")
@base_url_option
@json_option
@click.option("--name", default=None, help="only names containing this text")
@click.option("--limit", default=50, show_default=True, help="newest first, at most this many")
def list_command(base_url: str | None, as_json: bool, name: str | None, limit: int) -> None:
    """List experiments, newest first, with their state and pass rate."""
    api = Assay.connect(base_url)
    filters = {"experiment_name_search": name} if name else {}
    found = []
    for item in api.pages("experiments", **filters):
        found.append(item)
        if len(found) >= limit:
            break
    if as_json:
        _emit_json([_summary(e) for e in found])
        return
    table = Table("id", "name", "state", "pass rate", "created")
    for e in found:
        table.add_row(str(e["id"]), e["name"], state_of(e), pct(_rate(e)), e["created_at"][:19])
    _console().print(table)


def _summary(experiment: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": experiment["id"],
        "name": experiment["name"],
        "state": state_of(experiment),
        "pass_rate": _rate(experiment),
        "generation_task_id": experiment.get("generation_task_id"),
        "created_at": experiment["created_at"],
    }


@experiments.command("show")
@click.argument("experiment_id", type=int)
@base_url_option
@json_option
def show_command(experiment_id: int, base_url: str | None, as_json: bool) -> None:
    """One experiment: its resources, pass rate per criterion, tokens, cost and duration."""
    experiment = Assay.connect(base_url).get(f"experiments/{experiment_id}")
    if as_json:
        _emit_json(experiment)
        return
    _print_experiment(_console(), experiment)


def criterion_rates(experiment: dict[str, Any]) -> list[tuple[str, float | None]]:
    """(label or text, pass rate) for every criterion of the experiment's set, in the set's order."""
    by_id = (experiment.get("results") or {}).get("mean_rating_by_criterion_id") or {}
    rates = []
    for c in experiment["criterion_set"].get("criteria") or []:
        mean = by_id.get(str(c["id"]))
        rates.append((c.get("label") or c["criterion_str"], mean["yes"] if mean else None))
    return rates


def _print_experiment(console: Console, e: dict[str, Any]) -> None:
    template = e.get("prompt_template") or {}
    model = (e.get("llm_config") or {}).get("name") or "default model"
    console.print(f"[bold]#{e['id']} {e['name']}[/bold]  ({state_of(e)})")
    console.print(f"template: {template.get('name')} v{template.get('version')}  collection: {e['collection']['name']}")
    console.print(f"criteria: {e['criterion_set']['name']}  model: {model}  epochs: {e.get('n_epochs') or 1}")
    table = Table("criterion", "pass rate")
    for key, rate in criterion_rates(e):
        table.add_row(key, pct(rate))
    table.add_row("[bold]all criteria[/bold]", pct(_rate(e)))
    console.print(table)
    r = e.get("results") or {}
    console.print(
        f"responses: {r.get('num_rated_responses', 0)} rated, {r.get('num_failed_responses', 0)} failed, "
        f"{r.get('num_failed_ratings', 0)} failed ratings; tokens in/out: "
        f"{sum(r.get('input_tokens_per_response') or [])}/{sum(r.get('output_tokens_per_response') or [])}; "
        f"cost: ${r.get('estimated_total_cost_usd') or 0:.4f}; "
        f"duration: {seconds(r.get('experiment_duration_seconds'))}"
    )


def _follow(api: Assay, experiment: dict[str, Any], task_id: str, console: Console) -> dict[str, Any]:
    model = (experiment.get("llm_config") or {}).get("name") or "default"
    template = (experiment.get("prompt_template") or {}).get("name") or "template"
    run = Run(template, model, experiment["id"], task_id, experiment["name"])
    watch(api, [run], Display(console))
    return api.get(f"experiments/{experiment['id']}") | {"_state": run.state, "_error": run.error}


def _finish(console: Console, experiment: dict[str, Any], as_json: bool) -> None:
    ended = "FAILURE" if experiment.get("has_internal_error") else "SUCCESS"
    state, error = experiment.pop("_state", ended), experiment.pop("_error", None)
    if as_json:
        _emit_json({"state": state, "error": error, "experiment": experiment})
    else:
        _print_experiment(console, experiment)
        if state != "SUCCESS":
            console.print(f"[red]The run ended {state}[/red]: {error or ''}")
    sys.exit(0 if state == "SUCCESS" else 1)


@experiments.command("watch")
@click.argument("experiment_id", type=int)
@base_url_option
@json_option
def watch_command(experiment_id: int, base_url: str | None, as_json: bool) -> None:
    """Follow a running experiment live until it ends (exit 1 unless it succeeded), then show it."""
    api = Assay.connect(base_url)
    console = Console(highlight=False, stderr=as_json)
    experiment = api.get(f"experiments/{experiment_id}")
    task_id = experiment.get("generation_task_id")
    if task_id:
        experiment = _follow(api, experiment, task_id, console)
    _finish(console, experiment, as_json)


@experiments.command("cancel")
@click.argument("experiment_id", type=int)
@base_url_option
@json_option
def cancel_command(experiment_id: int, base_url: str | None, as_json: bool) -> None:
    """Cancel the running job: no new model call starts; finished work is kept."""
    status = Assay.connect(base_url).post(f"experiments/{experiment_id}/cancel")
    if as_json:
        _emit_json(status)
    else:
        click.echo(f"experiment {experiment_id}: {status.get('state') or status['status']}")


@experiments.command("retry")
@click.argument("experiment_id", type=int)
@base_url_option
@json_option
@click.option("--no-watch", is_flag=True, help="start the retry and return at once")
def retry_command(experiment_id: int, base_url: str | None, as_json: bool, no_watch: bool) -> None:
    """Generate again exactly the failed responses (and rate them), then follow the run."""
    api = Assay.connect(base_url)
    console = Console(highlight=False, stderr=as_json)
    experiment = api.post(f"experiments/{experiment_id}/retry-failed", {})
    task_id = experiment.get("generation_task_id")
    if not task_id:
        console.print(f"experiment {experiment_id}: no failed responses to retry")
    elif no_watch:
        console.print(f"experiment {experiment_id}: retrying (task {task_id})")
    else:
        experiment = _follow(api, experiment, task_id, console)
    _finish(console, experiment, as_json)


@experiments.command("export")
@click.argument("experiment_id", type=int)
@base_url_option
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.File("wb"), default="-", help="file to write (default: stdout)")
def export_command(experiment_id: int, base_url: str | None, fmt: str, output: Any) -> None:
    """Every response with its variables, prompt, answer, error and each criterion's verdict and reasoning."""
    Assay.connect(base_url).download(f"experiments/{experiment_id}/export", output, format=fmt)


@experiments.command("compare")
@click.argument("experiment_ids", type=int, nargs=-1, required=True)
@base_url_option
@json_option
def compare_command(experiment_ids: tuple[int, ...], base_url: str | None, as_json: bool) -> None:
    """Pass rates per criterion of two or more experiments side by side (criteria matched by label or text)."""
    if len(experiment_ids) < 2:
        raise click.UsageError("compare needs at least two experiment ids")
    api = Assay.connect(base_url)
    found = [api.get(f"experiments/{i}") for i in experiment_ids]
    comparison = compare(found)
    if as_json:
        _emit_json(comparison)
        return
    _console().print(_comparison_table(comparison))


def compare(found: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of criteria (the union, in first-seen order) with each experiment's pass rate, and totals."""
    rates = [dict(criterion_rates(e)) for e in found]
    keys = list(dict.fromkeys(k for r in rates for k in r))
    return {
        "experiments": [_compared(e) for e in found],
        "criteria": [{"criterion": k, "pass_rates": [r.get(k) for r in rates]} for k in keys],
    }


def _compared(e: dict[str, Any]) -> dict[str, Any]:
    r = e.get("results") or {}
    extra = {k: v for k, v in r.items() if k not in _KNOWN_RESULTS and not isinstance(v, list | dict)}
    return {
        "id": e["id"],
        "name": e["name"],
        "pass_rate": _rate(e),
        "responses": r.get("num_rated_responses", 0),
        "failed_responses": r.get("num_failed_responses", 0),
        "input_tokens": sum(r.get("input_tokens_per_response") or []),
        "output_tokens": sum(r.get("output_tokens_per_response") or []),
        "cost_usd": r.get("estimated_total_cost_usd") or 0.0,
        "duration_seconds": r.get("experiment_duration_seconds"),
        "extra": extra,
    }


# Result fields shown in their own rows; any other scalar the server adds (statistics) is listed as is.
_KNOWN_RESULTS = frozenset(
    {
        "num_rated_responses",
        "num_failed_responses",
        "estimated_total_cost_usd",
        "experiment_duration_seconds",
        "std_all_ratings",
        "mean_duration_seconds",
        "mean_input_tokens",
        "mean_output_tokens",
        "mean_reasoning_tokens",
        "num_failed_ratings",
        "completed_epochs",
        "estimated_input_cost_usd",
        "estimated_output_cost_usd",
    }
)


def _comparison_table(comparison: dict[str, Any]) -> Table:
    exps = comparison["experiments"]
    table = Table("criterion", *(f"#{e['id']} {e['name']}" for e in exps))
    for row in comparison["criteria"]:
        table.add_row(row["criterion"], *(pct(rate) for rate in row["pass_rates"]))
    table.add_row("[bold]all criteria[/bold]", *(pct(e["pass_rate"]) for e in exps), end_section=True)
    table.add_row("responses (failed)", *(f"{e['responses']} ({e['failed_responses']})" for e in exps))
    table.add_row("tokens in/out", *(f"{e['input_tokens']}/{e['output_tokens']}" for e in exps))
    table.add_row("cost", *(f"${e['cost_usd']:.4f}" for e in exps))
    table.add_row("duration", *(seconds(e["duration_seconds"]) for e in exps))
    for key in dict.fromkeys(k for e in exps for k in e["extra"]):
        table.add_row(key, *(str(e["extra"].get(key, "")) for e in exps))
    return table
