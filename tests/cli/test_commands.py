"""The commands' own checks, before any request: exit codes and messages a terminal user or a CI job sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.experiments import compare
from cli.main import cli

GOOD = "name: Demo\nprompts: [{id: p, text: 'Explain {{topic}}.'}]\ntests: {rows: [{topic: AI}]}\ncriteria: ['Ok?']\n"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for var in ("ASSAY_BASE_URL", "ELLUMINATE_BASE_URL", "ASSAY_API_KEY", "ELLUMINATE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ASSAY_CONFIG", str(tmp_path / "config.toml"))
    return CliRunner()


def test_check_accepts_a_good_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text(GOOD)
    done = runner.invoke(cli, ["eval", "--check", str(tmp_path / "e.yaml")])
    assert done.exit_code == 0 and "valid (1 prompt(s) x 1 model(s))" in done.output


def test_a_bad_file_exits_2_naming_line_and_field(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text(GOOD + "epochs: many\n")
    done = runner.invoke(cli, ["eval", str(tmp_path / "e.yaml")])
    assert done.exit_code == 2
    assert "e.yaml:5: epochs: 'many' is not of type 'integer'" in done.output


def test_schema_prints_the_published_schema(runner: CliRunner) -> None:
    done = runner.invoke(cli, ["eval", "--schema"])
    assert json.loads(done.output)["title"].startswith("Assay evaluation file")


def test_an_unknown_report_extension_is_refused_before_running(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text(GOOD)
    done = runner.invoke(cli, ["eval", str(tmp_path / "e.yaml"), "--base-url", "http://127.0.0.1:9", "-o", "r.pdf"])
    assert done.exit_code == 2 and "use .json, .csv, .xml (JUnit) or .html" in done.output


def test_the_key_comes_from_the_config_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('base_url = "http://127.0.0.1:9"\n')
    done = runner.invoke(cli, ["experiments", "list"])
    assert done.exit_code == 2 and "No API key: set ASSAY_API_KEY" in done.output
    (tmp_path / "config.toml").write_text('base_url = "http://127.0.0.1:9"\napi_key = "ak_x"\n')
    done = runner.invoke(cli, ["experiments", "list"])
    assert done.exit_code == 2 and "Cannot reach http://127.0.0.1:9" in done.output


def test_compare_needs_two_experiments(runner: CliRunner) -> None:
    done = runner.invoke(cli, ["experiments", "compare", "1", "--base-url", "http://127.0.0.1:9"])
    assert done.exit_code == 2 and "at least two experiment ids" in done.output


def experiment(eid: int, criteria: list[tuple[int, str, float]], **extra: float) -> dict:
    return {
        "id": eid,
        "name": f"e{eid}",
        "criterion_set": {"criteria": [{"id": cid, "criterion_str": text, "label": None} for cid, text, _ in criteria]},
        "results": {
            "mean_all_ratings": {"yes": 0.5, "no": 0.5},
            "mean_rating_by_criterion_id": {str(cid): {"yes": y, "no": 1 - y} for cid, _, y in criteria},
            "num_rated_responses": 2,
            **extra,
        },
    }


def test_compare_matches_criteria_by_text_across_sets_and_keeps_extra_statistics() -> None:
    a = experiment(1, [(10, "Polite?", 1.0), (11, "Short?", 0.5)], p_value=0.03)
    b = experiment(2, [(20, "Short?", 0.25), (21, "New?", 0.0)])
    result = compare([a, b])
    assert result["criteria"] == [
        {"criterion": "Polite?", "pass_rates": [1.0, None]},
        {"criterion": "Short?", "pass_rates": [0.5, 0.25]},
        {"criterion": "New?", "pass_rates": [None, 0.0]},
    ]
    assert result["experiments"][0]["extra"] == {"p_value": 0.03}
