"""Evaluator criteria through the whole stack: a plugin installed with pip (PromptLab's LengthEvaluator from
examples/), built-ins and the LLM judge in one criterion set, read back through the `elluminate` SDK; and
evaluators that raise or hang, which fail only their own ratings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest
from elluminate import Client
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Rest, Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = {
    "assay-length-evaluator": ROOT / "examples" / "length_evaluator",
    "assay-test-evaluators": ROOT / "tests" / "e2e" / "evaluator_plugins",
}
STACK_ENV = {"ASSAY_EVALUATOR_TIMEOUT_SECONDS": "2"}


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def evaluator_plugins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Install the plugins into this interpreter's environment, which the stack's API and workers run in;
    built from copies so nothing is written into the repository, and uninstalled afterwards."""
    tmp = tmp_path_factory.mktemp("plugins")
    copies = [str(shutil.copytree(path, tmp / path.name)) for path in PLUGINS.values()]
    ours = [name for name in PLUGINS if not _installed(name)]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", *copies], check=True, timeout=600)
    yield
    if ours:
        subprocess.run([*pip, "uninstall", "--quiet", "--yes", *ours], check=True, timeout=120)


@pytest.fixture(scope="module")
def stack(evaluator_plugins: None, stack: Stack) -> Stack:
    """The module's stack, started only once the plugins are installed, so its processes find them."""
    return stack


@pytest.fixture
def project(stack: Stack) -> tuple[int, str]:
    stack.fake.configure({})
    stack.fake.reset()
    return stack.new_project(f"Evaluators {time.monotonic_ns()}")


def _setup(client: Client, rest: Rest, rows: list[dict[str, str]], criteria: list[dict[str, Any]]) -> tuple[Any, ...]:
    template = client.create_prompt_template(name="Question", messages="{{question}}")
    collection = client.create_collection(name="Questions")
    collection.add_many(variables=rows)
    created = rest.post("criterion_sets", json={"name": "Mixed", "criteria": criteria})
    assert created.status_code == 201, created.text
    return template, collection, client.get_criterion_set(name="Mixed")


def _query(stack: Stack, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(stack.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def _job_status(stack: Stack, experiment_id: int) -> list[str]:
    return [s for (s,) in _query(stack, "SELECT status FROM jobs WHERE experiment_id = :e", e=experiment_id)]


MIXED = [
    {
        "criterion_str": "Is it between 20 and 40 characters long?",
        "evaluator": "length_evaluator",
        "params": {"min": 20, "max": 40},
    },
    {"criterion_str": "Does it mention the keyword?", "evaluator": "contains", "params": {"column": "keyword"}},
    {"criterion_str": "Does it contain a digit?", "evaluator": "regex", "params": {"pattern": r"\d"}},
    {"criterion_str": "Is it helpful?"},
]
ROWS = [
    {"question": "What is 2 plus 2?", "keyword": "plus"},
    {"question": "Name a colour.", "keyword": "red"},
    {"question": "Why do owls hoot at night, even in 1999?", "keyword": "owls"},
    {"question": "Please fail this one", "keyword": "nothing"},
]


def _expected(answer: str, keyword: str) -> list[str]:
    """What each criterion of MIXED must say about one answer (the judge: the fake model's verdict rule)."""
    checks = [20 <= len(answer) <= 40, keyword in answer, re.search(r"\d", answer) is not None]
    return ["YES" if ok else "NO" for ok in [*checks, "fail" not in answer.lower()]]


def test_plugin_builtins_and_judge_in_one_experiment(stack: Stack, project: tuple[int, str]) -> None:
    client, rest = Client(base_url=stack.base_url, api_key=project[1]), Rest(stack.base_url, project[1], project[0])
    template, collection, criterion_set = _setup(client, rest, ROWS, MIXED)
    experiment = client.run_experiment(
        name="Mixed", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    assert _job_status(stack, experiment.id) == ["SUCCESS"]
    ids = [c.id for c in criterion_set.criteria]
    assert len(experiment.rated_responses) == len(ROWS)
    expected: dict[int, list[str]] = {cid: [] for cid in ids}
    for response in experiment.rated_responses:
        answer = response.response_str
        assert answer.startswith("Fake answer to: ")
        verdicts = _expected(answer, response.prompt.template_variables.input_values["keyword"])
        assert {r.criterion.id: r.rating.value for r in response.ratings} == dict(zip(ids, verdicts, strict=True))
        for cid, verdict in zip(ids, verdicts, strict=True):
            expected[cid].append(verdict)
    means = experiment.results.mean_rating_by_criterion_id
    for cid, verdicts in expected.items():
        assert means[cid].yes == pytest.approx(verdicts.count("YES") / len(verdicts))
    assert len({means[cid].yes for cid in ids}) > 1  # the rows were chosen so the criteria disagree
    all_verdicts = sum(expected.values(), [])
    assert experiment.results.mean_all_ratings.yes == pytest.approx(all_verdicts.count("YES") / len(all_verdicts))
    assert stack.fake.stats()["by_kind"]["judge"] == len(ROWS)  # only the LLM criterion called the model
    first = _check_plugin_ratings(rest, experiment, ids[0])
    _rerate(rest, [r.id for r in experiment.rated_responses])  # a rating batch runs the evaluators too
    assert _check_plugin_ratings(rest, experiment, ids[0]).isdisjoint(first)  # new rows, same verdicts


def _rerate(rest: Rest, response_ids: list[int]) -> None:
    task_id = rest.post("ratings/batches", json={"prompt_response_ids": response_ids}).json()
    deadline = time.monotonic() + 60
    while (status := rest.get(f"ratings/batches/{task_id}").json()["status"]) not in ("SUCCESS", "FAILURE"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status == "SUCCESS"


def _check_plugin_ratings(rest: Rest, experiment: Any, criterion_id: int) -> set[int]:
    """The plugin's score (the length) and explanation are kept (the SDK's Rating has no score field);
    returns the plugin ratings' ids."""
    seen = set()
    for response in experiment.rated_responses:
        ratings = rest.get("ratings", params={"prompt_response_id": response.id}).json()["items"]
        plugin = next(r for r in ratings if r["criterion"]["id"] == criterion_id)
        length = len(response.response_str)
        assert plugin["score"] == length and plugin["reasoning"].startswith(f"{length} characters")
        assert plugin["rating"] == ("YES" if 20 <= length <= 40 else "NO")
        assert plugin["criterion"]["evaluator"] == "length_evaluator"
        assert all(r["score"] is None for r in ratings if r["criterion"]["evaluator"] is None)
        seen.add(plugin["id"])
    return seen


def test_raising_and_hanging_evaluators_fail_only_their_ratings(stack: Stack, project: tuple[int, str]) -> None:
    client, rest = Client(base_url=stack.base_url, api_key=project[1]), Rest(stack.base_url, project[1], project[0])
    criteria = [
        {"criterion_str": "Raises", "evaluator": "test_raises"},
        {"criterion_str": "Hangs", "evaluator": "test_hangs"},
        {"criterion_str": "Is it a fake answer?", "evaluator": "contains", "params": {"value": "Fake answer"}},
    ]
    rows = [{"question": f"Question {i}?", "keyword": "x"} for i in range(3)]
    template, collection, criterion_set = _setup(client, rest, rows, criteria)
    experiment = client.run_experiment(
        name="Misbehaving", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    assert _job_status(stack, experiment.id) == ["SUCCESS"]
    raises, hangs, contains = (c.id for c in criterion_set.criteria)
    assert len(experiment.rated_responses) == 3
    assert all([r.criterion.id for r in resp.ratings] == [contains] for resp in experiment.rated_responses)
    results = rest.get(f"experiments/{experiment.id}").json()["results"]
    assert results["num_failed_ratings"] == 6 and results["num_failed_responses"] == 0
    assert results["mean_rating_by_criterion_id"][str(contains)] == {"yes": 1.0, "no": 0.0}
    errors = _query(
        stack, "SELECT criterion_id, rating, error FROM ratings WHERE criterion_id IN (:a, :b)", a=raises, b=hangs
    )
    assert len(errors) == 6 and all(rating is None for _, rating, _ in errors)
    for cid, _, error in errors:
        if cid == raises:
            assert error.startswith("evaluator 'test_raises' failed: RuntimeError: boom on 'Fake answer to: Ques")
        else:
            assert error == "evaluator 'test_hangs' timed out after 2 s"
