"""`assay eval FILE.yaml`: run a declared evaluation and gate on its thresholds (exit 1 when one fails)."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console

from cli.evals import reports, runner
from cli.evals.spec import SpecError, load, schema
from cli.rest import Assay, configured_key, configured_url

EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2


def _outputs(paths: tuple[str, ...]) -> list[Path]:
    out = [Path(p) for p in paths]
    for path in out:
        if reports.writer_for(path) is None:
            raise click.BadParameter(f"{path}: use .json, .csv, .xml (JUnit) or .html", param_hint="--output")
    return out


def _embedded(stack: ExitStack, console: Console, workers: int) -> Assay:
    from cli.demo import local_key
    from cli.up import free_port
    from cli.up import stack as start_stack

    console.print("No --base-url, ASSAY_BASE_URL or config file: starting Assay here (it stops afterwards).")
    base_url, _children = stack.enter_context(start_stack("127.0.0.1", free_port(), workers=workers))
    return Assay(base_url, configured_key() or local_key())


@click.command("eval")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--base-url", default=None, help="a running Assay (default: $ASSAY_BASE_URL, the config file, or start one)"
)
@click.option("-o", "--output", "outputs", multiple=True, help="write a report: .json, .csv, .xml (JUnit), .html")
@click.option("--check", is_flag=True, help="only validate the file")
@click.option("--schema", "print_schema", is_flag=True, help="print the file format's JSON Schema and exit")
@click.option("--workers", default=1, show_default=True, help="worker processes of a stack started here")
def eval_command(
    file: Path | None, base_url: str | None, outputs: tuple[str, ...], check: bool, print_schema: bool, workers: int
) -> None:
    """Run the evaluation declared in FILE: every prompt x model as an experiment, live progress, a results
    matrix, and exit code 1 when a threshold fails (a CI gate)."""
    if print_schema:
        click.echo(json.dumps(schema(), indent=2))
        return
    if file is None:
        raise click.UsageError("Missing argument 'FILE'.")
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)  # a CI log is wide; 80 columns would fold the matrix
    try:
        spec = load(file)
    except SpecError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if check:
        click.echo(f"{file}: valid ({len(spec.prompts)} prompt(s) x {len(spec.models)} model(s))")
        return
    paths = _outputs(outputs)
    with ExitStack() as stack:
        url = configured_url(base_url)
        api = Assay.connect(url) if url else _embedded(stack, console, workers)
        report = runner.evaluate(api, spec, console)
    console.print(reports.matrix_table(report))
    for cell in report.cells:
        console.print(f"{cell.prompt} x {cell.model}: {cell.studio_url(report.base_url)}", soft_wrap=True)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        reports.writer_for(path)(report, path)  # type: ignore[misc]
        console.print(f"wrote {path}")
    for cell in report.cells:
        for reason in cell.failures():
            console.print(f"[red]FAIL[/red] {cell.prompt} x {cell.model}: {reason}")
    sys.exit(0 if report.passed else EXIT_GATE_FAILED)
