"""The model layer through the whole platform: cluster-wide limits, faults, the judge's failures and
fallbacks, generated criteria and inputs, and the cache. Timings come from the fake server's own log."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
from elluminate import AsyncClient, Client
from elluminate.exceptions import ConflictError

from fakellm import verdict
from tests.e2e.conftest import Rest, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(stack: Stack) -> tuple[int, str]:
    stack.fake.configure({})
    stack.fake.reset()
    return stack.new_project(f"LLM {time.monotonic_ns()}")


def _experiment(client: Client, n: int, criteria: list[str], llm_config: Any = None, name: str = "E") -> Any:
    template = client.create_prompt_template(name=f"{name} template", messages="Tell me about {{topic}}.")
    collection = client.create_collection(name=f"{name} cases")
    collection.add_many(variables=[{"topic": f"topic {i} {'fail' if i % 4 == 0 else 'ok'}"} for i in range(n)])
    criterion_set = client.create_criterion_set(name=f"{name} criteria", criteria=criteria)
    return client.run_experiment(
        name=name, prompt_template=template, collection=collection, criterion_set=criterion_set, llm_config=llm_config
    )


def _config(client: Client, stack: Stack, model: str, **fields: Any) -> Any:
    return client.create_llm_config(
        name=model, llm_model_name=model, api_key="sk-test", llm_base_url=stack.fake.base_url, **fields
    )


def _max_overlap(requests: list[dict[str, Any]]) -> int:
    edges = sorted([(r["started_at"], 1) for r in requests] + [(r["ended_at"], -1) for r in requests])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def test_max_connections_holds_across_three_workers(stack: Stack, project: tuple[int, str]) -> None:
    stack.start_worker("w3")
    stack.fake.configure({"latency_ms": 150})
    client = Client(base_url=stack.base_url, api_key=project[1])
    config = _config(client, stack, "fake-limited", max_connections=4)
    experiment = _experiment(client, 60, ["Ok?"], config, "Limited")
    assert len(experiment.rated_responses) == 60
    limited = [r for r in stack.fake.requests() if r["model"] == "fake-limited"]
    assert len(limited) == 60
    assert _max_overlap(limited) <= 4


def test_after_the_first_success_generations_use_every_connection(stack: Stack, project: tuple[int, str]) -> None:
    # Slow start sends one generation until one succeeds; the items queued behind it must then all go at once.
    stack.fake.configure({"latency_ms": 150})
    client = Client(base_url=stack.base_url, api_key=project[1])
    config = _config(client, stack, "fake-eight", max_connections=8)
    _experiment(client, 40, ["Ok?"], config, "Wide")
    generations = [r for r in stack.fake.requests() if r["model"] == "fake-eight" and r["kind"] == "generate"]
    assert len(generations) == 40
    assert _max_overlap(generations) >= 6


def test_transient_faults_are_retried_until_every_item_is_done(stack: Stack, project: tuple[int, str]) -> None:
    faults = {"429": 0.1, "500": 0.1, "hang": 0.1}
    # On top of 30% random faults, the first three requests (the run's first generation, which goes alone)
    # meet one fault of each kind for certain.
    schedule = {"1": "500", "2": "429", "3": "hang"}
    stack.fake.configure(
        {"retry_after": 1, "hang_seconds": 30, "models": {"fake-flaky": {"faults": faults, "schedule": schedule}}}
    )
    client = Client(base_url=stack.base_url, api_key=project[1])
    config = _config(client, stack, "fake-flaky", max_retries=8, timeout=2)
    experiment = _experiment(client, 20, ["Ok?"], config, "Flaky")
    assert experiment.results.num_failed_responses == 0
    assert len(experiment.rated_responses) == 20 and all(len(r.ratings) == 1 for r in experiment.rated_responses)
    statuses = {r["status"] for r in stack.fake.requests() if r["model"] == "fake-flaky"}
    assert {429, 500, 499} <= statuses  # 499: the client gave up on a hang


def test_retry_after_delays_the_retry(stack: Stack, project: tuple[int, str]) -> None:
    stack.fake.configure({"retry_after": 2, "schedule": {"1": "429"}})
    client = Client(base_url=stack.base_url, api_key=project[1])
    _experiment(client, 1, ["Ok?"], _config(client, stack, "fake-ra"), "RetryAfter")
    first, second = [r for r in stack.fake.requests() if r["model"] == "fake-ra"][:2]
    assert first["status"] == 429
    assert second["started_at"] - first["ended_at"] >= 2.0 - 0.05  # slack: clock resolution


def test_a_model_that_always_fails_marks_items_failed_after_its_attempts(
    stack: Stack, project: tuple[int, str]
) -> None:
    stack.fake.configure({"models": {"fake-down": {"faults": {"500": 1.0}}}})
    client = Client(base_url=stack.base_url, api_key=project[1])
    experiment = _experiment(client, 6, ["Ok?"], _config(client, stack, "fake-down", max_retries=2), "Down")
    assert experiment.results.num_failed_responses == 6
    assert all(r.error and "500" in r.error for r in experiment.rated_responses)
    assert len([r for r in stack.fake.requests() if r["model"] == "fake-down"]) == 6 * 3


def test_unparseable_judge_answers_are_failed_ratings_not_no(stack: Stack, project: tuple[int, str]) -> None:
    stack.fake.configure({"judge_junk": True})
    client = Client(base_url=stack.base_url, api_key=project[1])
    experiment = _experiment(client, 4, ["Ok?", "Clear?"], name="Junk")
    assert [r.ratings for r in experiment.rated_responses] == [[], [], [], []]
    results = experiment.results
    assert results.num_rated_responses == 0
    assert results.mean_all_ratings.yes == 0.0 and results.mean_all_ratings.no == 0.0
    assert (
        Rest(stack.base_url, project[1], project[0])
        .get(f"experiments/{experiment.id}")
        .json()["results"]["num_failed_ratings"]
        == 8
    )


def test_a_server_refusing_json_schema_still_yields_correct_ratings(stack: Stack, project: tuple[int, str]) -> None:
    stack.fake.configure({"refuse_json_schema": True})
    client = Client(base_url=stack.base_url, api_key=project[1])
    experiment = _experiment(client, 8, ["Ok?", "Strict? [no]"], name="Fallback")
    for response in experiment.rated_responses:
        assert len(response.ratings) == 2
        for rating in response.ratings:
            assert rating.rating.value == verdict(response.response_str, rating.criterion.criterion_str)


def test_generated_criteria_and_inputs_through_the_sdk(stack: Stack, project: tuple[int, str]) -> None:
    client = Client(base_url=stack.base_url, api_key=project[1])
    template = client.create_prompt_template(name="Gen", messages="Write about {{topic}} for {{audience}}.")
    criteria = template.generate_criteria()
    assert criteria and all(c.criterion_str for c in criteria)
    with pytest.raises(ConflictError):
        template.generate_criteria()
    assert client.get_criterion_set(name="Gen").id == client.get_prompt_template(id=template.id).criterion_set_id
    collection = client.create_collection(name="Gen cases")
    entry = collection.generate_variables(template)
    assert set(entry.input_values) == {"topic", "audience"}

    async def flow() -> None:
        async with AsyncClient(base_url=stack.base_url, api_key=project[1]) as aclient:
            atemplate = await aclient.get_prompt_template(name="Gen")
            again, generated = await atemplate.aget_or_generate_criteria()
            assert not generated and [c.id for c in again] == [c.id for c in criteria]

    asyncio.run(flow())


def test_cache_reuses_answers_within_a_project_only(stack: Stack, project: tuple[int, str]) -> None:
    rest = Rest(stack.base_url, project[1], project[0])
    client = Client(base_url=stack.base_url, api_key=project[1])
    template = client.create_prompt_template(name="Cached", messages="Explain {{topic}}.")
    collection = client.create_collection(name="Cached cases")
    collection.add_many(variables=[{"topic": f"t{i}"} for i in range(10)])
    criterion_set = client.create_criterion_set(name="Cached criteria", criteria=["Ok?"])
    body = {
        "name": "Cached",
        "prompt_template_id": template.id,
        "collection_id": collection.id,
        "criterion_set_id": criterion_set.id,
        "use_cache": True,
    }
    experiment_id = rest.post("experiments", json=body).json()["id"]
    experiment = client.get_experiment(id=experiment_id)
    experiment.run()
    first = experiment.results.mean_all_ratings
    calls = stack.fake.stats()["calls"]
    again = client.get_experiment(id=rest.post("experiments", json={**body, "name": "Cached again"}).json()["id"])
    again.run()  # an experiment runs once: a second one with the same inputs
    assert stack.fake.stats()["calls"] == calls, "the second run should not reach the model"
    assert again.results.mean_all_ratings == first and len(again.rated_responses) == 10

    other_id, other_key = stack.new_project(f"Other {time.monotonic_ns()}")
    other = Client(base_url=stack.base_url, api_key=other_key)
    t2 = other.create_prompt_template(name="Cached", messages="Explain {{topic}}.")
    c2 = other.create_collection(name="Cached cases")
    c2.add_many(variables=[{"topic": f"t{i}"} for i in range(10)])
    s2 = other.create_criterion_set(name="Cached criteria", criteria=["Ok?"])
    other_rest = Rest(stack.base_url, other_key, other_id)
    other_exp = other_rest.post(
        "experiments", json={**body, "prompt_template_id": t2.id, "collection_id": c2.id, "criterion_set_id": s2.id}
    ).json()
    other.get_experiment(id=other_exp["id"]).run()
    assert stack.fake.stats()["calls"] == calls + 20


def test_retry_failed_regenerates_exactly_the_failed_items(stack: Stack, project: tuple[int, str]) -> None:
    stack.fake.configure({"models": {"fake-flaky-once": {"faults": {"500": 1.0}}}})
    client = Client(base_url=stack.base_url, api_key=project[1])
    config = _config(client, stack, "fake-flaky-once", max_retries=0)
    experiment = _experiment(client, 5, ["Ok?"], config, "Retry")
    assert experiment.results.num_failed_responses == 5
    failed_ids = {r.id for r in experiment.rated_responses}
    stack.fake.configure({})
    before = len([r for r in stack.fake.requests() if r["model"] == "fake-flaky-once"])
    experiment.retry_failed()
    assert experiment.results.num_failed_responses == 0 and experiment.results.num_rated_responses == 5
    assert all(r.error is None and len(r.ratings) == 1 for r in experiment.rated_responses)
    assert not failed_ids & {r.id for r in experiment.rated_responses}
    after = len([r for r in stack.fake.requests() if r["model"] == "fake-flaky-once"])
    assert after - before == 5
    experiment.retry_failed()  # nothing failed: no task, nothing called
    assert len([r for r in stack.fake.requests() if r["model"] == "fake-flaky-once"]) == after


def test_scattered_judge_refusals_fail_those_ratings_not_the_batch(stack: Stack, project: tuple[int, str]) -> None:
    """The failure streak that stops a job on a bad key counts consecutive failures only: a judge
    success in between resets it (before, only a generation did, so a ratings batch failed whole)."""
    client = Client(base_url=stack.base_url, api_key=project[1])
    experiment = _experiment(client, 30, ["Ok?", "Clear?"], name="Scattered")
    rest = Rest(stack.base_url, project[1], project[0])
    ids = [r["id"] for r in rest.get(f"responses?experiment_id={experiment.id}").json()["items"]]
    # Request numbers count from the reset: every third rating is refused, 20 of 60 (at least 10 on
    # whichever worker process runs more of them, twice the streak limit).
    stack.fake.reset()
    stack.fake.configure({"schedule": {str(n): "401" for n in range(2, 60, 3)}})
    task_id = rest.post("ratings/batches", json={"prompt_response_ids": ids}).json()
    deadline = time.time() + 60
    while (status := rest.get(f"ratings/batches/{task_id}").json())["status"] in ("PENDING", "STARTED"):
        assert time.time() < deadline, status
        time.sleep(0.2)
    assert status["status"] == "SUCCESS", status
    ratings = [g for r in rest.get(f"responses?experiment_id={experiment.id}").json()["items"] for g in r["ratings"]]
    assert len(ratings) == 60 - 20


def test_a_worker_keeps_one_redis_pool_however_many_models_it_calls(stack: Stack, project: tuple[int, str]) -> None:
    """Each model and key has its own cluster-wide limit, but they share the process's Redis pool:
    before, every limiter kept its own idle connections for as long as the worker lived."""
    redis_url = stack.env["REDIS_URL"]
    db = int(redis_url.rsplit("/", 1)[1])
    server = redis.Redis.from_url(redis_url)

    def connections() -> int:
        return sum(1 for c in server.client_list() if int(c["db"]) == db)

    client = Client(base_url=stack.base_url, api_key=project[1])
    _experiment(client, 8, ["Ok?"], _config(client, stack, "fake-model", max_connections=4), "Pool 0")
    before = connections()
    for i in range(1, 11):
        config = client.create_llm_config(
            name=f"pool {i}", llm_model_name="fake-model", api_key=f"sk-{i}", llm_base_url=stack.fake.base_url
        )
        _experiment(client, 8, ["Ok?"], config, f"Pool {i}")
    grown = connections() - before
    server.close()
    assert grown < 5, f"{grown} more Redis connections after ten more models"
