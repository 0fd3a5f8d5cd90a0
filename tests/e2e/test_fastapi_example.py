"""examples/fastapi_app.py (the guide's Pattern 3) served by uvicorn, as a subprocess, against a whole Assay stack.

The app gets a fresh project's `ELLUMINATE_BASE_URL`/`ELLUMINATE_API_KEY` like a user who exported them, and
runs from an empty folder (`--app-dir examples`). Two POST /evaluate calls with the same prompt and different
test cases: the second must reuse the template and its generated criteria. Expected pass rates follow the fake
model's verdict rule (fakellm/README.md): a response fails a criterion exactly when its text contains "fail"
(or the criterion contains "[no]"); answers echo the prompt, so a test case mentioning "fail" fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Rest, Stack, free_port, wait_http
from tests.e2e.sdk_venvs import PROXY_VARS
from tests.e2e.test_examples import count, project

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROMPT = "Explain {{topic}} simply."


def start_app(user_env: dict[str, str], cwd: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """uvicorn examples/fastapi_app.py:app on a free port, run from `cwd`; returns it once it answers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PROXY_VARS and not k.startswith("ELLUMINATE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(user_env, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "fastapi_app:app",
                "--app-dir",
                str(EXAMPLES),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/openapi.json", timeout=60, proc=proc)
    except (RuntimeError, TimeoutError) as exc:
        stop_app(proc)
        raise RuntimeError(
            f"uvicorn did not serve the app ({exc}); needs fastapi and uvicorn\n{log_path.read_text()}"
        ) from exc
    except BaseException:
        stop_app(proc)
        raise
    return proc, url


def stop_app(proc: subprocess.Popen) -> int:
    """SIGTERM (uvicorn's graceful shutdown: the app's shutdown hook runs), SIGKILL after 20 s; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture
def app(stack: Stack, tmp_path: Path) -> Iterator[tuple[Rest, str, Path]]:
    stack.fake.configure({})
    rest, env = project(stack, "Example FastAPI")
    log_path = tmp_path / "uvicorn.log"
    cwd = tmp_path / "cwd"  # empty
    cwd.mkdir()
    proc, url = start_app(env, cwd, log_path)
    try:
        yield rest, url, log_path
    finally:
        returncode = stop_app(proc)
        log = log_path.read_text()
        # uvicorn re-raises the SIGTERM after its graceful shutdown, so it may end with -SIGTERM.
        assert returncode in (0, -signal.SIGTERM), f"uvicorn exited {returncode}\n{log}"
        assert "Application shutdown complete." in log and "Finished server process" in log, log
        assert "Traceback" not in log, log


def evaluate(url: str, test_case: dict[str, str]) -> dict[str, object]:
    res = requests.post(f"{url}/evaluate", params={"prompt": PROMPT}, json=test_case, timeout=300)
    assert res.status_code == 200, res.text
    body = res.json()
    assert set(body) == {"experiment_id", "pass_rate"}, body
    assert type(body["experiment_id"]) is int, body
    assert type(body["pass_rate"]) is float and 0.0 <= body["pass_rate"] <= 1.0, body
    return body


def the_criterion_set(rest: Rest) -> dict:
    sets = rest.get("criterion_sets").json()["items"]
    assert [s["name"] for s in sets] == ["API Template"], sets
    return sets[0]


@pytest.mark.timeout(600)
def test_fastapi_evaluate_twice(app: tuple[Rest, str, Path]) -> None:
    rest, url, log_path = app
    assert "Application startup complete." in log_path.read_text()

    first = evaluate(url, {"topic": "recursion"})
    assert first["pass_rate"] == 1.0

    # After the first call: one template, one criterion set named after it, generated criteria.
    templates = rest.get("prompt_templates").json()["items"]
    assert [(t["name"], t["version"]) for t in templates] == [("API Template", 1)], templates
    criterion_set = the_criterion_set(rest)
    criteria = rest.get(f"criteria?criterion_set_id={criterion_set['id']}").json()["items"]
    assert criteria and not any("[no]" in c["criterion_str"].lower() for c in criteria), criteria

    # Same prompt, a test case the fake model's answer fails on: every rating NO.
    second = evaluate(url, {"topic": "a failing build"})
    assert second["pass_rate"] == 0.0
    assert second["experiment_id"] != first["experiment_id"]

    # The second call reused the template (still one version) and the criteria (same set, same criteria).
    templates = rest.get("prompt_templates").json()["items"]
    assert [(t["id"], t["name"], t["version"]) for t in templates] == [(templates[0]["id"], "API Template", 1)]
    assert the_criterion_set(rest)["id"] == criterion_set["id"]
    again = rest.get(f"criteria?criterion_set_id={criterion_set['id']}").json()["items"]
    assert [(c["id"], c["criterion_str"]) for c in again] == [(c["id"], c["criterion_str"]) for c in criteria]

    # Two experiments, one per call, each on its own one-entry collection, the shared template and set.
    experiments = {e["id"]: e for e in rest.get("experiments").json()["items"]}
    assert set(experiments) == {first["experiment_id"], second["experiment_id"]}
    assert len({e["name"] for e in experiments.values()}) == 2
    for experiment in experiments.values():
        assert experiment["name"].startswith("Eval "), experiment["name"]
        assert experiment["prompt_template"]["id"] == templates[0]["id"]
        assert experiment["criterion_set"]["id"] == criterion_set["id"]
        assert count(rest, f"responses?experiment_id={experiment['id']}") == 1
    collections = rest.get("collections").json()["items"]
    assert len(collections) == 2 and all(c["name"].startswith("Test ") for c in collections), collections
    for collection in collections:
        assert count(rest, f"collections/{collection['id']}/entries") == 1
