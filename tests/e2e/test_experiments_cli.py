"""`assay experiments ...` and `assay collections import` against the whole stack, through REST only: what
they print (with --json) agrees with the REST API, and cancel, retry and watch change what the API then says."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Rest, Stack

pytestmark = pytest.mark.e2e


def assay(stack: Stack, key: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "ASSAY_API_KEY": key, "ASSAY_BASE_URL": stack.base_url, "ASSAY_CONFIG": str(tmp / "none")}
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=180)


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def project(stack: Stack) -> tuple[str, Rest, dict[str, int]]:
    """Two templates over one collection: B says 'fail' on one entry more than A (the fake judge's NO)."""
    stack.fake.configure({"latency_ms": 0})
    project_id, key = stack.new_project(f"Experiments CLI {time.monotonic_ns()}")
    rest = Rest(stack.base_url, key, project_id)
    ids = {}
    for name, content in (("A", "Say {{a}}."), ("B", "Say {{b}}.")):
        ids[name] = rest.post(
            "prompt_templates", json={"name": name, "messages": [{"role": "user", "content": content}]}
        ).json()["id"]
    criteria = [{"criterion_str": "Is it on topic?", "label": "topic"}, {"criterion_str": "Is it short?"}]
    ids["set"] = rest.post("criterion_sets", json={"name": "Checks", "criteria": criteria}).json()["id"]
    rows = [{"a": "x", "b": "x fail"}, {"a": "y", "b": "y"}, {"a": "z", "b": "z fail"}, {"a": "w fail", "b": "w"}]
    ids["rows"] = rest.post("collections", json={"name": "Rows", "variables": rows}).json()["id"]
    return key, rest, ids


def start(rest: Rest, ids: dict[str, int], name: str, template: str, **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "prompt_template_id": ids[template],
        "collection_id": ids["rows"],
        "criterion_set_id": ids["set"],
        "generate": True,
        **extra,
    }
    created = rest.post("experiments", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def model(rest: Rest, stack: Stack, name: str) -> int:
    body = {"name": name, "llm_model_name": name, "llm_base_url": stack.fake.base_url, "api_key": "sk-fake"}
    return rest.post("llm_configs", json=body).json()["id"]


def test_watch_list_show_compare_and_export(stack: Stack, project: tuple[str, Rest, dict[str, int]], tmp_path: Path):
    key, rest, ids = project
    a, b = start(rest, ids, "Run A", "A"), start(rest, ids, "Run B", "B")
    for exp in (a, b):
        watched = as_json(assay(stack, key, tmp_path, "experiments", "watch", str(exp["id"]), "--json"))
        assert watched["state"] == "SUCCESS"
        assert watched["experiment"]["results"] == rest.get(f"experiments/{exp['id']}").json()["results"]

    listed = as_json(assay(stack, key, tmp_path, "experiments", "list", "--json"))
    by_id = {e["id"]: e for e in listed}
    assert by_id[a["id"]]["state"] == "ended" and by_id[a["id"]]["pass_rate"] == 0.75
    assert by_id[b["id"]]["pass_rate"] == 0.5
    assert [e["id"] for e in listed][:2] == [b["id"], a["id"]]  # newest first

    shown = as_json(assay(stack, key, tmp_path, "experiments", "show", str(a["id"]), "--json"))
    assert shown["results"] == rest.get(f"experiments/{a['id']}").json()["results"]
    text = assay(stack, key, tmp_path, "experiments", "show", str(a["id"])).stdout
    assert "Run A" in text and "topic" in text and "75.0%" in text

    compared = as_json(assay(stack, key, tmp_path, "experiments", "compare", str(a["id"]), str(b["id"]), "--json"))
    assert [e["id"] for e in compared["experiments"]] == [a["id"], b["id"]]
    assert compared["criteria"] == [
        {"criterion": "topic", "pass_rates": [0.75, 0.5]},
        {"criterion": "Is it short?", "pass_rates": [0.75, 0.5]},
    ]
    table = assay(stack, key, tmp_path, "experiments", "compare", str(a["id"]), str(b["id"])).stdout
    assert "#" + str(a["id"]) + " Run A" in table and "50.0%" in table

    out = tmp_path / "a.jsonl"
    done = assay(stack, key, tmp_path, "experiments", "export", str(a["id"]), "--format", "jsonl", "-o", str(out))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4 and all(len(line["ratings"]) == 2 for line in lines)
    missing = assay(stack, key, tmp_path, "experiments", "export", "2147483000")
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr


def test_cancel_stops_a_hanging_run(stack: Stack, project: tuple[str, Rest, dict[str, int]], tmp_path: Path):
    key, rest, ids = project
    stack.fake.configure({"latency_ms": 0, "models": {"hang-model": {"faults": {"hang": 1.0}}}})
    try:
        exp = start(rest, ids, "Hanging", "A", llm_config_id=model(rest, stack, "hang-model"))
        cancelled = as_json(assay(stack, key, tmp_path, "experiments", "cancel", str(exp["id"]), "--json"))
        assert cancelled["state"] == "REVOKED"
        assert rest.get(f"experiments/{exp['id']}").json()["generation_task_id"] is None
        listed = as_json(assay(stack, key, tmp_path, "experiments", "list", "--json", "--name", "Hanging"))
        assert [(e["id"], e["state"]) for e in listed] == [(exp["id"], "ended")]
        again = assay(stack, key, tmp_path, "experiments", "cancel", str(exp["id"]))
        assert again.returncode != 0 and "HTTP 409" in again.stderr
    finally:
        stack.fake.configure({"latency_ms": 0})
        stack.fake.reset()


def test_retry_regenerates_only_the_failed_responses(
    stack: Stack, project: tuple[str, Rest, dict[str, int]], tmp_path: Path
):
    key, rest, ids = project
    stack.fake.configure({"latency_ms": 0, "models": {"flaky-model": {"faults": {"401": 1.0}}}})
    exp = start(rest, ids, "Flaky", "A", llm_config_id=model(rest, stack, "flaky-model"))
    first = assay(stack, key, tmp_path, "experiments", "watch", str(exp["id"]), "--json")
    failed = json.loads(first.stdout)["experiment"]["results"]["num_failed_responses"]
    assert failed == 4, first.stdout
    stack.fake.configure({"latency_ms": 0})
    retried = as_json(assay(stack, key, tmp_path, "experiments", "retry", str(exp["id"]), "--json"))
    assert retried["state"] == "SUCCESS"
    assert retried["experiment"]["results"]["num_failed_responses"] == 0
    assert rest.get(f"experiments/{exp['id']}").json()["results"]["mean_all_ratings"]["yes"] == 0.75
    nothing = assay(stack, key, tmp_path, "experiments", "retry", str(exp["id"]))
    assert nothing.returncode == 0 and "no failed responses to retry" in nothing.stdout


def test_collections_import_is_idempotent(stack: Stack, project: tuple[str, Rest, dict[str, int]], tmp_path: Path):
    key, rest, _ids = project
    path = tmp_path / "questions.csv"
    path.write_text("question,expected\nWhat is 2+2?,4\nCapital of France?,Paris\n")
    first = as_json(assay(stack, key, tmp_path, "collections", "import", str(path), "--json"))
    assert (first["name"], first["created"], first["added"], first["rows"]) == ("questions", True, 2, 2)
    path.write_text(path.read_text() + "Largest planet?,Jupiter\n")
    second = as_json(assay(stack, key, tmp_path, "collections", "import", str(path), "--json"))
    assert (second["id"], second["created"], second["added"], second["rows"]) == (first["id"], False, 1, 3)
    entries = rest.get(f"collections/{first['id']}/entries").json()["items"]
    assert sorted(e["input_values"]["expected"] for e in entries) == ["4", "Jupiter", "Paris"]


def test_eval_runs_on_an_imported_collection_by_name(
    stack: Stack, project: tuple[str, Rest, dict[str, int]], tmp_path: Path
):
    key, rest, _ids = project
    path = tmp_path / "faq.jsonl"
    path.write_text('{"question": "Opening hours?"}\n{"question": "Why did my order fail?"}\n')
    imported = as_json(assay(stack, key, tmp_path, "collections", "import", str(path), "--name", "FAQ", "--json"))
    (tmp_path / "faq.yaml").write_text(
        "name: FAQ check\nprompts: [{id: p, text: 'Answer: {{question}}'}]\n"
        "tests: {collection: FAQ}\ncriteria: ['Is it helpful?']\n"
    )
    collections_before = rest.get("collections").json()["count"]
    done = assay(stack, key, tmp_path, "eval", str(tmp_path / "faq.yaml"), "-o", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    (cell,) = json.loads((tmp_path / "r.json").read_text())["experiments"]
    experiment = rest.get(f"experiments/{cell['experiment_id']}").json()
    assert experiment["collection"]["id"] == imported["id"]
    assert (cell["responses"], cell["pass_rate"]) == (2, 0.5)  # the fake judge fails the answer saying "fail"
    assert rest.get("collections").json()["count"] == collections_before
    (tmp_path / "missing.yaml").write_text(
        (tmp_path / "faq.yaml").read_text().replace("{collection: FAQ}", "{collection: Nope}")
    )
    missing = assay(stack, key, tmp_path, "eval", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and "tests.collection: no collection named 'Nope'" in missing.stderr
