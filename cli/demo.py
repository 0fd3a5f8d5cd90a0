"""`assay demo`: the main job end to end through the official elluminate SDK, with live progress.

It uses a running Assay (`--base-url` / `ELLUMINATE_BASE_URL`, or one already answering on port 8000),
or starts the whole stack itself and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from typing import Any

import click

from cli.up import local_database
from services import auth as auth_service

DEFAULT_URL = "http://127.0.0.1:8000"
TOPICS = [
    "photosynthesis",
    "black holes",
    "inflation",
    "vaccines",
    "recursion",
    "plate tectonics",
    "supply and demand",
    "the immune system",
    "neural networks",
    "climate feedback loops",
]
CRITERIA = [
    "Does the answer explain the topic correctly?",
    "Is it understandable for the audience?",
    "Is it at most three sentences long?",
]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/api/v0/openapi.json", timeout=2)
        return True
    except OSError:  # nothing there, or not an Assay (no spec): the demo starts its own on a free port
        return False


def local_key() -> str:
    """A key for a demo project, made through the local database (the one the stack uses)."""
    database = local_database()
    try:
        with database.session() as session:
            project = auth_service.first_project(session) or auth_service.create_project(session, "Default")
            key = auth_service.create_api_key(session, project.id, "assay demo")
    finally:
        database.dispose()
    click.echo(f"Made API key {key} for project {project.id} in {database.engine.url.render_as_string()}")
    return key


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _refusal(base_url: str, key: str, key_source: str) -> str | None:
    """One line saying why the demo cannot use the server at `base_url` with `key`, or None."""
    if _status(f"{base_url}/healthz") != 200 or _status(f"{base_url}/api/v0/openapi.json") != 200:
        return f"{base_url} is not an Assay server (no /healthz or /api/v0/openapi.json); pass --base-url of one"
    if _status(f"{base_url}/api/v0/projects", {"X-API-Key": key}) == 401:
        return (
            f"The Assay at {base_url} refused {key_source}: it is another Assay than this machine's database; "
            "set ELLUMINATE_API_KEY to one of its keys, or pass --base-url of another server"
        )
    return None


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else 0
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


async def _evaluate(base_url: str, key: str, entries: int) -> Any:
    from elluminate import AsyncClient
    from elluminate.streaming import TaskStatus

    async with AsyncClient(base_url=base_url, api_key=key) as client:
        template, _ = await client.get_or_create_prompt_template(
            name="Assay demo", messages="Explain {{topic}} to {{audience}} in at most three sentences."
        )
        collection, _ = await client.get_or_create_collection(name="Assay demo topics")
        if collection.variables_count == 0:
            rows = [{"topic": t, "audience": "a curious teenager"} for t in (TOPICS * 10)[:entries]]
            await collection.aadd_many(variables=rows)
        criterion_set, _ = await client.get_or_create_criterion_set(
            name="Assay demo criteria", defaults={"criteria": CRITERIA}
        )
        click.echo(
            f"Running '{template.name}' over {max(entries, collection.variables_count)} test cases "
            f"against {len(CRITERIA)} criteria ..."
        )
        result = None
        async for event in client.stream_experiment(
            name=f"Assay demo {time.strftime('%Y-%m-%d %H:%M:%S')}",
            prompt_template=template,
            collection=collection,
            criterion_set=criterion_set,
            polling_interval=0.2,
        ):
            if event.progress is not None:
                p = event.progress
                click.echo(
                    f"\r  generated {_bar(p.responses_generated, p.total_responses)}  "
                    f"rated {_bar(p.responses_rated, p.total_responses)}",
                    nl=False,
                )
            if event.status == TaskStatus.SUCCESS:
                result = event.result
            elif event.is_failure:
                click.echo(f"\nThe experiment ended {event.status.value}: {event.error_msg}")
                return None
        click.echo("")
        return result


def _print_results(experiment: Any) -> None:
    results = experiment.results
    names = {c.id: c.criterion_str for c in experiment.criterion_set.criteria}
    responses = experiment.rated_responses
    model = next(
        (
            r.generation_metadata.llm_model_config.llm_model_name
            for r in responses
            if r.generation_metadata and r.generation_metadata.llm_model_config
        ),
        "unknown",
    )
    click.echo(f"\nResults of '{experiment.name}' (model: {model})")
    click.echo(f"  {'criterion':<52} pass rate")
    for cid, mean in results.mean_rating_by_criterion_id.items():
        click.echo(f"  {names.get(cid, str(cid))[:50]:<52} {mean.yes:6.1%}")
    click.echo(f"  {'all criteria':<52} {results.mean_all_ratings.yes:6.1%}")
    click.echo(
        f"responses: {len(responses)} (failed: {results.num_failed_responses}); "
        f"tokens in/out per response: {results.mean_input_tokens:.0f}/{results.mean_output_tokens:.0f}; "
        f"estimated cost: ${results.estimated_total_cost_usd:.4f}; "
        f"duration: {results.experiment_duration_seconds or 0.0:.1f} s"
    )
    if model.startswith("fake-"):
        click.echo("(built-in fake model: canned answers and a rule-based judge; set OPENAI_API_KEY for a real one)")


def run_demo(base_url: str | None, entries: int) -> int:
    """Run the demo; returns the process exit code."""
    with ExitStack() as stack:
        if base_url is None and _answers(DEFAULT_URL):
            base_url = DEFAULT_URL
        if base_url is None:
            from cli.up import free_port
            from cli.up import stack as start_stack

            click.echo("No Assay is running: starting one for the demo (it stops afterwards).")
            base_url, _children = stack.enter_context(start_stack("127.0.0.1", free_port(), workers=1))
        click.echo(f"Using the Assay at {base_url}")
        given = os.environ.get("ELLUMINATE_API_KEY")
        key = given or local_key()
        source = "ELLUMINATE_API_KEY" if given else "a key made in this machine's database"
        if problem := _refusal(base_url, key, source):
            click.echo(problem, err=True)
            return 1
        experiment = asyncio.run(_evaluate(base_url, key, entries))
        if experiment is None:
            return 1
        _print_results(experiment)
        return 0
