"""Reports from a finished evaluation: the gate, JUnit XML, CSV, JSON and the self-contained HTML page."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from cli.evals import reports
from cli.evals.results import Report, cell_from_experiment
from cli.evals.spec import parse

SPEC = parse(
    """\
name: Gate
prompts: [{id: a, text: "{{q}}"}, {id: b, text: "Say {{q}}"}]
tests: {rows: [{q: x}]}
criteria:
  - {criterion: "Is it polite?", label: polite, threshold: 0.9}
  - "Is it short?"
thresholds: {overall: 0.5}
""",
    Path("gate.yaml"),
)


def experiment(eid: int, polite: float, short: float) -> dict:
    return {
        "id": eid,
        "name": f"exp {eid}",
        "results": {
            "mean_all_ratings": {"yes": (polite + short) / 2, "no": 1 - (polite + short) / 2},
            "mean_rating_by_criterion_id": {"11": {"yes": polite, "no": 1 - polite}, "12": {"yes": short, "no": 0}},
            "input_tokens_per_response": [3, 4],
            "output_tokens_per_response": [5, 6],
            "num_rated_responses": 2,
            "num_failed_responses": 0,
            "estimated_total_cost_usd": 0.25,
            "experiment_duration_seconds": 1.5,
        },
    }


def report(polite_b: float = 1.0, state_b: str = "SUCCESS") -> Report:
    cells = [
        cell_from_experiment(SPEC, "a", "default", experiment(1, 1.0, 0.5), [11, 12], "SUCCESS"),
        cell_from_experiment(SPEC, "b", "default", experiment(2, polite_b, 0.5), [11, 12], state_b),
    ]
    return Report(SPEC.name, "http://assay.test", cells)


def test_cells_read_rest_results_and_thresholds() -> None:
    cell = report().cells[0]
    assert [(c.key, c.pass_rate, c.threshold) for c in cell.criteria] == [
        ("polite", 1.0, 0.9),
        ("Is it short?", 0.5, None),
    ]
    assert (cell.pass_rate, cell.input_tokens, cell.output_tokens, cell.cost_usd) == (0.75, 7, 11, 0.25)
    assert report().passed


def test_a_criterion_below_its_threshold_fails_the_gate_and_says_why() -> None:
    failing = report(polite_b=0.5)
    assert not failing.passed
    assert failing.cells[1].failures() == ["'polite': pass rate 50.0% is below 90.0%"]


def test_a_failed_experiment_fails_the_gate() -> None:
    failing = report(state_b="TIMEOUT")
    assert not failing.passed
    assert failing.cells[1].failures()[0].startswith("the experiment ended TIMEOUT")


def test_junit_has_a_case_per_criterion_and_overall_per_experiment(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    reports.write_junit(report(polite_b=0.5), path)
    root = ET.parse(path).getroot()
    assert root.get("tests") == "6" and root.get("failures") == "1"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["a x default", "b x default"]
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("b.default", "polite")]


def test_junit_marks_every_case_of_a_failed_experiment_as_an_error(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    reports.write_junit(report(state_b="FAILURE"), path)
    suite = ET.parse(path).getroot().findall("testsuite")[1]
    assert suite.get("errors") == "3"


def test_csv_and_json_carry_the_matrix(tmp_path: Path) -> None:
    reports.write_csv(report(), tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["prompt"], r["pass_rate:polite"], r["pass_rate:Is it short?"]) for r in rows] == [
        ("a", "1.0", "0.5"),
        ("b", "1.0", "0.5"),
    ]
    reports.write_json(report(polite_b=0.0), tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is False
    assert data["experiments"][1]["criteria"][0] == {
        "key": "polite",
        "text": "Is it polite?",
        "criterion_id": 11,
        "pass_rate": 0.0,
        "threshold": 0.9,
    }


def test_html_is_self_contained_and_escapes_names(tmp_path: Path) -> None:
    bad = report(polite_b=0.5)
    bad.cells[1].prompt = "<script>alert(1)</script>"
    path = tmp_path / "r.html"
    reports.write_html(bad, path)
    html = path.read_text()
    assert "FAILED" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "50.0%" in html


def test_terminal_table_shows_every_cell() -> None:
    console = Console(width=200, record=True)
    console.print(reports.matrix_table(report(polite_b=0.5)))
    text = console.export_text()
    assert "Gate: FAILED" in text
    assert re.search(r"b\s+│\s+default\s+│\s+50\.0% ✗", text), text
