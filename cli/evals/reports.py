"""The results as a terminal table and as files: JSON, CSV, JUnit XML and a self-contained HTML page."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jinja2
from rich.table import Table

from cli.evals.results import Cell, Report


def pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _mark(text: str, passed: bool) -> str:
    return text if passed else f"[bold red]{text} ✗[/bold red]"


def matrix_table(report: Report) -> Table:
    """Prompt x model rows: pass rate per criterion and overall, tokens, cost, duration, state."""
    table = Table(title=f"{report.name}: {'PASSED' if report.passed else 'FAILED'}", title_justify="left")
    for heading in ("prompt", "model", *report.criteria_keys, "all criteria"):
        table.add_column(heading, overflow="fold", justify="left" if heading in ("prompt", "model") else "right")
    for heading in ("tokens in/out", "cost", "duration", "state"):
        table.add_column(heading, justify="right")
    for cell in report.cells:
        table.add_row(*_row(cell))
    return table


def _row(cell: Cell) -> list[str]:
    rates = [_mark(pct(c.pass_rate), c.passed) for c in cell.criteria]
    return [
        cell.prompt,
        cell.model,
        *rates,
        _mark(pct(cell.pass_rate), cell.overall_passed),
        f"{cell.input_tokens}/{cell.output_tokens}",
        f"${cell.cost_usd:.4f}",
        seconds(cell.duration_seconds),
        _mark(cell.state, cell.succeeded),
    ]


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


CSV_FIELDS = ["prompt", "model", "experiment_id", "state", "pass_rate", "threshold", "passed"]


def write_csv(report: Report, path: Path) -> None:
    """One row per prompt x model; one column per criterion's pass rate."""
    keys = report.criteria_keys
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        extra = ["responses", "failed_responses", "input_tokens", "output_tokens", "cost_usd", "duration_seconds"]
        writer.writerow([*CSV_FIELDS, *(f"pass_rate:{k}" for k in keys), *extra])
        for cell in report.cells:
            head = [
                cell.prompt,
                cell.model,
                cell.experiment_id,
                cell.state,
                cell.pass_rate,
                cell.threshold,
                cell.passed,
            ]
            rates = [c.pass_rate for c in cell.criteria]
            writer.writerow([*head, *rates, *(getattr(cell, name) for name in extra)])


def write_junit(report: Report, path: Path) -> None:
    """One test suite per prompt x model; one test case per criterion plus one for all criteria."""
    suites = ET.Element("testsuites", name=report.name)
    for cell in report.cells:
        suite = ET.SubElement(suites, "testsuite", name=f"{cell.prompt} x {cell.model}")
        cases = [(c.key, c.pass_rate, c.threshold, c.passed) for c in cell.criteria]
        cases.append(("all criteria", cell.pass_rate, cell.threshold, cell.overall_passed))
        for name, rate, threshold, passed in cases:
            _case(suite, cell, name, rate, threshold, passed)
        _count(suite)
    _count(suites)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _case(suite: ET.Element, cell: Cell, name: str, rate: float | None, threshold: float | None, ok: bool) -> None:
    classname = f"{cell.prompt}.{cell.model}"
    case = ET.SubElement(suite, "testcase", name=name, classname=classname, time=f"{cell.duration_seconds or 0:.3f}")
    ET.SubElement(case, "system-out").text = f"pass rate {pct(rate)}; experiment {cell.experiment_id}"
    if not cell.succeeded:
        ET.SubElement(case, "error", message=f"experiment ended {cell.state}").text = cell.error or ""
    elif not ok:
        ET.SubElement(case, "failure", message=f"pass rate {pct(rate)} is below the threshold {pct(threshold)}")


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))


def write_html(report: Report, path: Path) -> None:
    """One page, styles inline, nothing loaded from anywhere: it can be kept as a CI artifact."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["pct"] = pct
    environment.filters["seconds"] = seconds
    source = resources.files("cli.evals").joinpath("report.html.j2").read_text(encoding="utf-8")
    prompts = list(dict.fromkeys(c.prompt for c in report.cells))
    models = list(dict.fromkeys(c.model for c in report.cells))
    grid = {(c.prompt, c.model): c for c in report.cells}
    html = environment.from_string(source).render(report=report, prompts=prompts, models=models, grid=grid)
    path.write_text(html, encoding="utf-8")


WRITERS: dict[str, Callable[[Report, Path], None]] = {
    ".json": write_json,
    ".csv": write_csv,
    ".xml": write_junit,
    ".html": write_html,
}


def writer_for(path: Path) -> Callable[[Report, Path], None] | None:
    return WRITERS.get(path.suffix.lower())
