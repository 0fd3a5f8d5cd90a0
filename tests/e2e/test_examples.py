"""The scripts in examples/ run unchanged, as subprocesses, against a whole Assay stack.

Every script gets a fresh project and only `ELLUMINATE_BASE_URL`/`ELLUMINATE_API_KEY`, like a user who
exported them. The 1.5.2 scripts run with this interpreter (the test extra pins `elluminate==1.5.2`); the
0.7.x batch scripts run in their own virtual environments (tests/e2e/sdk_venvs.py), from an empty temporary
folder (0.7.x's `load_dotenv(override=True)` must find no `.env`) and without proxy variables.

Expected numbers follow the fake model's verdict rule (fakellm/README.md): a response fails a criterion
exactly when its text contains "fail"; answers echo the prompt, so a test case mentioning "fail" fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.conftest import Rest, Stack
from tests.e2e.sdk_venvs import PROXY_VARS, sdk_python

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BATCH_SEED = ROOT.parent / "shared" / "seeds" / "elluminate-batch-operations.txt"


@pytest.fixture(autouse=True)
def fake_defaults(stack: Stack) -> None:
    stack.fake.configure({})


def project(stack: Stack, name: str) -> tuple[Rest, dict[str, str]]:
    """A fresh project: a REST helper for checks and the environment a user would export."""
    project_id, key = stack.new_project(name)
    return Rest(stack.base_url, key, project_id), {"ELLUMINATE_BASE_URL": stack.base_url, "ELLUMINATE_API_KEY": key}


def run_example(
    script: str,
    user_env: dict[str, str],
    python: str = sys.executable,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run examples/<script> from an empty folder; assert it exits 0 and return its output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PROXY_VARS and not k.startswith("ELLUMINATE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(user_env, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory(prefix="assay-example-") as cwd:
        result = subprocess.run(
            [python, str(EXAMPLES / script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    assert result.returncode == 0, f"{script} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


def count(rest: Rest, path: str) -> int:
    res = rest.get(path)
    assert res.status_code == 200, res.text
    return res.json()["count"]


def test_async_complete_workflow(stack: Stack) -> None:
    rest, env = project(stack, "Example complete workflow")
    out = lines(run_example("async_complete_workflow.py", env))
    generated = int(re.fullmatch(r"Generated (\d+) criteria:", out[0]).group(1))  # type: ignore[union-attr]
    assert generated >= 1
    assert "Collection 'Concepts' has 5 test cases" in out
    assert any(re.fullmatch(r"Ran 3 experiments concurrently in [\d.]+s", line) for line in out)
    # 1 of the 5 concepts mentions "fail": 4/5 of all ratings are YES.
    assert [line for line in out if "pass rate" in line] == [f"Concurrent Run {i}: 80.0% pass rate" for i in (1, 2, 3)]
    assert out[-1].startswith("Best: Concurrent Run ")
    experiments = rest.get("experiments").json()["items"]
    assert sorted(e["name"] for e in experiments) == [f"Concurrent Run {i}" for i in (1, 2, 3)]
    assert len({e["criterion_set"]["id"] for e in experiments}) == 1  # the template's generated criteria
    for experiment in experiments:
        assert count(rest, f"responses?experiment_id={experiment['id']}") == 5


def test_async_basic_usage(stack: Stack) -> None:
    rest, env = project(stack, "Example basic usage")
    out = lines(run_example("async_basic_usage.py", env))
    assert out == ["Completed: My Experiment", "Created template: My Manual Template (version 1)"]
    assert sorted(t["name"] for t in rest.get("prompt_templates").json()["items"]) == [
        "My Manual Template",
        "My Template",
    ]


def test_pattern1_ab_test(stack: Stack) -> None:
    _, env = project(stack, "Example A/B")
    assert lines(run_example("pattern1_ab_test.py", env)) == ["A: 100.0%", "B: 100.0%"]


def test_pattern2_batch_collections(stack: Stack) -> None:
    rest, env = project(stack, "Example batch collections")
    assert lines(run_example("pattern2_batch_collections.py", env)) == [
        "Experiment 1 on Collection 1: 100.0%",
        "Experiment 2 on Collection 2: 100.0%",
        "Experiment 3 on Collection 3: 50.0%",  # "a failing build"
    ]
    assert count(rest, "experiments") == 3


@pytest.mark.timeout(900)
def test_semaphore_limit(stack: Stack) -> None:
    rest, env = project(stack, "Example semaphore")
    out = lines(run_example("semaphore_limit.py", env, timeout=800))
    assert out == [f"Exp {i}: 100.0%" for i in range(20)] + ["Completed 20 experiments, at most 5 at a time"]
    experiments = rest.get("experiments").json()["items"]
    assert len(experiments) == 20 and all(e["results"]["num_rated_responses"] == 2 for e in experiments)


def test_stream_experiment(stack: Stack) -> None:
    # Model latency, so the run (three calls deep, a generation alone first) lasts several of the example's
    # 0.5 s polls and the stream shows it in progress. The "Started" line is written with the STARTED state
    # and never streamed with an older one, so the example, which prints the lines of STARTED events, shows it.
    stack.fake.configure({"latency_ms": 500})
    _, env = project(stack, "Example stream experiment")
    out = lines(run_example("stream_experiment.py", env))
    percents = [float(m.group(1)) for line in out if (m := re.fullmatch(r"Progress: ([\d.]+)%", line))]
    assert percents and percents == sorted(percents) and all(0 <= p <= 100 for p in percents)
    counts = [line for line in out if line.startswith(("Generated: ", "Rated: "))]
    assert counts and all(re.fullmatch(r"(Generated|Rated): \d+/10", line) for line in counts)
    assert any(line.startswith("Log: Started: 10 item(s)") for line in out)
    assert out[-3:] == ["✅ Complete!", "Rated responses: 10", "Pass rate: 100.0%"]


def test_stream_batch_rate(stack: Stack) -> None:
    _, env = project(stack, "Example stream batch rate")
    out = lines(run_example("stream_batch_rate.py", env))
    assert "Rated 3 responses" in out
    assert out[-3:] == [
        "'Fake answer to: Describe rivers.': YES, YES",
        "'Fake answer to: Describe mountains.': YES, YES",
        "'Fake answer to: Describe a failed launch.': NO, NO",
    ]


def test_error_handling(stack: Stack) -> None:
    _, env = project(stack, "Example errors")
    out = lines(run_example("error_handling.py", env))
    assert out[0] == "ConflictError: template 'Existing' already exists, getting it"
    assert re.fullmatch(r"Template: Existing \(id \d+, version 1\)", out[1])
    assert out[2:] == ["Experiment not found"]


@pytest.mark.parametrize(("script", "name"), [("migration_sync.py", "Sync"), ("migration_async.py", "Async")])
def test_migration(stack: Stack, script: str, name: str) -> None:
    rest, env = project(stack, f"Example migration {name}")
    # "a failing test" fails every criterion: 2 of 3 responses pass.
    assert lines(run_example(script, env)) == [f"{name} Experiment: 66.7% pass rate"]
    assert count(rest, "experiments") == 1


def check_batch_output(result: subprocess.CompletedProcess[str]) -> None:
    """The seed prints, per response, the answer and then a criterion and a rating per criterion."""
    out = lines(result)
    responses = [i for i, line in enumerate(out) if line.startswith("Response: ")]
    assert len(responses) == 2, result.stdout
    assert {re.match(r"Response: Fake answer to: Explain why (\w+)'s", out[i]).group(1) for i in responses} == {  # type: ignore[union-attr]
        "Python",
        "JavaScript",
    }
    per_response = [out[a:b] for a, b in zip(responses, [*responses[1:], len(out)], strict=True)]
    n_criteria = sum(line.startswith("Criteria: ") for line in per_response[0])
    assert n_criteria >= 1
    for block in per_response:
        criteria = [line for line in block if line.startswith("Criteria: ")]
        ratings = [line for line in block if line.startswith("Rating: ")]
        assert len(criteria) == len(ratings) == n_criteria, block
        assert all(line.endswith("YES") for line in ratings), ratings  # no answer mentions "fail"


def check_batch_state(rest: Rest) -> None:
    """One of each resource the seed gets-or-creates; the experiment holds one response per test case."""
    for path in ("prompt_templates", "collections", "criterion_sets", "experiments"):
        assert count(rest, path) == 1, path
    experiment = rest.get("experiments").json()["items"][0]
    assert experiment["name"] == "Programming Quirks Analysis"
    collection = rest.get("collections").json()["items"][0]
    assert count(rest, f"collections/{collection['id']}/entries") == 2
    assert count(rest, f"responses?experiment_id={experiment['id']}") == 2


@pytest.mark.timeout(1800)
def test_batch_operations_070_verbatim_twice(stack: Stack) -> None:
    if BATCH_SEED.exists():  # the seed page sits beside the repository in the workspace and in CI
        seed = BATCH_SEED.read_text()
        block = seed[seed.index("from dotenv import load_dotenv") : seed.index('print(f"Rating: {rating.rating}\\n")')]
        assert (EXAMPLES / "batch_operations_070.py").read_text() == block + 'print(f"Rating: {rating.rating}\\n")\n'
    python = sdk_python("0.7.0")
    rest, env = project(stack, "Example batch 0.7.0")
    for _ in range(2):  # the second run takes the 409 / get_or_create paths of every resource
        check_batch_output(run_example("batch_operations_070.py", env, python=python))
        check_batch_state(rest)


@pytest.mark.timeout(1800)
def test_batch_operations_073_twice(stack: Stack) -> None:
    python = sdk_python("0.7.3")
    rest, env = project(stack, "Example batch 0.7.3")
    for _ in range(2):
        check_batch_output(run_example("batch_operations_073.py", env, python=python))
        check_batch_state(rest)
    # Why there are two files: 0.7.3 dropped `prompt_template=` from generate_many.
    _, env = project(stack, "Example batch 0.7.0 code on 0.7.3")
    with pytest.raises(AssertionError, match="unexpected keyword argument 'prompt_template'"):
        run_example("batch_operations_070.py", env, python=python)
