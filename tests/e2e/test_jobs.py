"""Experiments and batches on real workers over real Redis, against the fake model server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from elluminate import AsyncClient, Client
from elluminate.schemas import RatingMode
from elluminate.streaming import TaskStatus
from sqlalchemy import text

from fakellm import verdict
from tests.e2e.conftest import Rest, Stack
from tests.e2e.runs import database_of, final_status, new_collection, new_experiment, start_run

pytestmark = pytest.mark.e2e

CRITERIA = ["Is it accurate?", "Is it helpful?", "Is it strict? [no]"]


@pytest.fixture(scope="module")
def project(stack: Stack) -> tuple[int, str]:
    return stack.new_project("Jobs")


@pytest.fixture(scope="module")
def client_key(project: tuple[int, str]) -> str:
    return project[1]


@pytest.fixture
def rest(stack: Stack, project: tuple[int, str]) -> Rest:
    return Rest(stack.base_url, project[1], project[0])


@pytest.fixture
def client(stack: Stack, client_key: str) -> Client:
    stack.fake.configure({})
    return Client(base_url=stack.base_url, api_key=client_key)


def test_run_experiment_exact_aggregates(client: Client) -> None:
    template = client.create_prompt_template(name="Agg", messages="Explain {{topic}}.")
    collection = new_collection(client, "Agg cases", 12)
    criterion_set = client.create_criterion_set(name="Agg criteria", criteria=CRITERIA)
    experiment = client.run_experiment(
        name="Agg run", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    responses = experiment.rated_responses
    assert len(responses) == 12 and all(len(r.ratings) == 3 for r in responses)
    expected = {c.id: [verdict(r.response_str, c.criterion_str) for r in responses] for c in criterion_set.criteria}
    for response in responses:
        for rating in response.ratings:
            assert rating.rating.value == verdict(response.response_str, rating.criterion.criterion_str)
            assert rating.reasoning
    results = experiment.results
    all_verdicts = [v for vs in expected.values() for v in vs]
    assert results.mean_all_ratings.yes == pytest.approx(all_verdicts.count("YES") / len(all_verdicts))
    for cid, verdicts in expected.items():
        assert results.mean_rating_by_criterion_id[cid].yes == pytest.approx(verdicts.count("YES") / 12)
    assert results.num_rated_responses == 12 and results.num_failed_responses == 0
    assert results.mean_input_tokens > 0 and len(results.output_tokens_per_response) == 12


def test_stream_experiment_and_batch_rate(stack: Stack, client_key: str) -> None:
    async def flow() -> None:
        async with AsyncClient(base_url=stack.base_url, api_key=client_key) as client:
            template = await client.create_prompt_template(name="Stream", messages="Describe {{topic}}.")
            collection = await client.create_collection(name="Stream cases")
            await collection.aadd_many(variables=[{"topic": f"t{i}"} for i in range(20)])
            events = []
            async for event in client.stream_experiment(
                name="Stream run",
                prompt_template=template,
                collection=collection,
                criteria=["Is it clear?"],
                polling_interval=0.1,
            ):
                events.append(event)
            assert events[-1].status == TaskStatus.SUCCESS
            progress = [e.progress for e in events if e.progress is not None]
            assert progress and all(p.total_responses == 20 for p in progress)
            assert progress[-1].responses_rated == 20
            assert "Started" in "".join(e.logs_delta or "" for e in events)
            experiment = events[-1].result
            assert len(experiment.rated_responses) == 20
            batch = [
                e
                async for e in client.stream_batch_rate(
                    prompt_responses=experiment.rated_responses, rating_mode=RatingMode.DETAILED
                )
            ]
            assert batch[-1].status == TaskStatus.SUCCESS and len(batch[-1].result) == 20

    asyncio.run(flow())


def test_provider_rejecting_every_call_fails_the_job_quickly(stack: Stack, client: Client, rest: Rest) -> None:
    stack.fake.configure({"models": {"always-401": {"faults": {"401": 1.0}}}})
    config = client.create_llm_config(
        name="bad key", llm_model_name="always-401", api_key="sk-bad", llm_base_url=stack.fake.base_url
    )
    template = client.create_prompt_template(name="Bad", messages="Say {{topic}}.")
    collection = new_collection(client, "Bad cases", 40)
    criterion_set = client.create_criterion_set(name="Bad criteria", criteria=["Ok?"])
    before = stack.fake.stats()["calls"]
    experiment = client.run_experiment(
        name="Bad run", prompt_template=template, collection=collection, criterion_set=criterion_set, llm_config=config
    )
    assert experiment.generation_task_id is None
    calls = stack.fake.stats()["calls"] - before
    assert calls < 40, f"{calls} calls: the job should stop after a few identical failures"
    assert rest.get(f"experiments/{experiment.id}").json()["has_internal_error"] is True


def test_cancel_stops_model_calls_and_sdk_run_returns(stack: Stack, client: Client, rest: Rest) -> None:
    stack.fake.configure({"latency_ms": 300})
    experiment = new_experiment(client, "Cancel", 200)
    finished: dict[str, float] = {}
    runner = threading.Thread(target=lambda: (experiment.run(), finished.setdefault("at", time.time())))
    runner.start()
    while rest.get(f"responses?experiment_id={experiment.id}").json()["count"] < 5:
        time.sleep(0.1)
    cancelled_at = time.time()
    res = rest.post(f"experiments/{experiment.id}/cancel")
    assert res.status_code == 200 and res.json()["status"] == "REVOKED"
    runner.join(timeout=15)
    assert not runner.is_alive() and finished["at"] - cancelled_at < 10
    time.sleep(2.5)
    late = [r for r in stack.fake.requests() if r["started_at"] > cancelled_at + 2.0]
    assert late == [], f"{len(late)} model calls started more than 2 s after the cancel"


def test_sigkill_of_a_worker_loses_and_repeats_nothing(stack: Stack, client: Client, rest: Rest) -> None:
    stack.fake.configure({"latency_ms": 60})
    stack.fake.reset()
    experiment = new_experiment(client, "Crash", 200, ["A?", "B?"])
    task_id = start_run(rest, experiment)
    status_url = f"experiments/{experiment.id}/generation/{task_id}"
    engine = database_of(stack)
    holders = text("SELECT DISTINCT split_part(lease_owner, ':', 2) FROM job_chunks WHERE job_id = :j AND NOT done")
    held_by: set[str] = set()
    deadline = time.time() + 60
    # Kill once a fifth is done and both workers hold unfinished chunks.
    while (done_before_kill := rest.get(status_url).json()["completed_responses"]) < 40 or len(held_by) < 2:
        assert time.time() < deadline, held_by
        with engine.connect() as conn:
            held_by = {pid for (pid,) in conn.execute(holders, {"j": task_id}) if pid}
        time.sleep(0.05)
    stack.kill_worker(stack.workers[0])
    killed_at = time.time()
    stack.start_worker("w3")
    assert final_status(rest, experiment.id, task_id, 120)["status"] == "SUCCESS"
    with engine.connect() as conn:
        per_item = conn.execute(
            text("SELECT entry_id, epoch, count(*) FROM responses WHERE experiment_id = :e GROUP BY entry_id, epoch"),
            {"e": experiment.id},
        ).all()
        ratings = conn.execute(
            text(
                "SELECT r.id, count(g.id) FROM responses r LEFT JOIN ratings g ON g.response_id = r.id "
                "WHERE r.experiment_id = :e GROUP BY r.id"
            ),
            {"e": experiment.id},
        ).all()
    engine.dispose()
    assert len(per_item) == 200 and all(n == 1 for *_, n in per_item)
    assert all(n == 2 for _, n in ratings)
    generation_calls = [r for r in stack.fake.requests() if r["kind"] == "generate"]
    # Only an item whose call had started and whose answer was not yet stored at the kill can be generated
    # again, and only once: the repeats are at most the calls started before the kill less the responses
    # stored before it (read just before the kill, so no more than were stored at it).
    started_before_kill = [r for r in generation_calls if r["started_at"] <= killed_at]
    assert len(generation_calls) - 200 <= len(started_before_kill) - done_before_kill


def test_a_job_that_cannot_start_fails_instead_of_staying_queued(stack: Stack, client: Client, rest: Rest) -> None:
    stack.fake.configure({})
    experiment = new_experiment(client, "Broken", 3)
    experiment.run()
    # Queue the finished job again as a row no worker can read (params no longer an object): the scouts
    # find it, and starting it raises the same error every time.
    engine = database_of(stack)
    with engine.begin() as conn:
        job_id = conn.execute(text("SELECT id FROM jobs WHERE experiment_id = :e"), {"e": experiment.id}).scalar_one()
        job = {"j": job_id}
        conn.execute(text("UPDATE jobs SET status = 'PENDING', params = '[]', finished_at = NULL WHERE id = :j"), job)
        conn.execute(text("UPDATE job_chunks SET done = false, lease_owner = NULL WHERE job_id = :j"), job)
        conn.execute(text("UPDATE experiments SET generation_task_id = :j WHERE id = :e"), {**job, "e": experiment.id})
    engine.dispose()
    status = final_status(rest, experiment.id, job_id, 30)  # before: PENDING for ever, retried every second
    assert status["status"] == "FAILURE"
    assert "internal error while starting the job" in status["error_msg"]
    assert rest.get(f"experiments/{experiment.id}").json()["has_internal_error"] is True


def test_a_chunk_whose_workers_keep_dying_fails_the_job(stack: Stack, client: Client, rest: Rest) -> None:
    stack.fake.configure({"latency_ms": 200})
    experiment = new_experiment(client, "Poison", 300)
    task_id = start_run(rest, experiment)
    # Give a chunk no worker has reached yet the history of one whose worker died five times running it.
    engine = database_of(stack)
    with engine.begin() as conn:
        poisoned = conn.execute(
            text(
                "UPDATE job_chunks SET attempts = 5, lease_owner = 'dead-host:1:x', "
                "lease_expires_at = now() - interval '1 minute' WHERE id = (SELECT id FROM job_chunks "
                "WHERE job_id = :j AND lease_owner IS NULL AND NOT done ORDER BY position DESC LIMIT 1) "
                "RETURNING position"
            ),
            {"j": task_id},
        ).scalar_one()
    engine.dispose()
    status = final_status(rest, experiment.id, task_id, 60)
    assert status["status"] == "FAILURE"
    assert f"chunk {poisoned} was started 5 times" in status["error_msg"]


def test_retry_failed_completes_failed_responses_failed_and_missing_ratings(
    stack: Stack, client: Client, rest: Rest
) -> None:
    # Half the generations fail (no retries) and every judge answer is unreadable: failed responses, and
    # failed ratings on every response that succeeded.
    stack.fake.configure({"judge_junk": True, "models": {"fake-gen-flaky": {"faults": {"500": 0.5}}}})
    config = client.create_llm_config(
        name="flaky",
        llm_model_name="fake-gen-flaky",
        api_key="sk-test",
        llm_base_url=stack.fake.base_url,
        max_retries=0,
    )
    template = client.create_prompt_template(name="Complete", messages="Say {{topic}}.")
    collection = new_collection(client, "Complete cases", 30)
    criterion_set = client.create_criterion_set(name="Complete criteria", criteria=["Ok?", "Clear?"])
    experiment = client.run_experiment(
        name="Complete run",
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
        llm_config=config,
    )
    listed = rest.get(f"responses?experiment_id={experiment.id}").json()["items"]
    failed = [r["id"] for r in listed if r["error"]]
    kept = {r["id"] for r in listed if not r["error"]}
    assert failed and kept and experiment.results.num_failed_responses == len(failed)
    assert _failed_ratings(rest, experiment.id) == 2 * len(kept)
    criterion_set.add_criterion("Is it short?")  # a live criterion no response has a rating for yet
    assert rest.call("PATCH", f"responses/{failed[0]}", json={"annotation": "look at this"}).status_code == 200
    stack.fake.configure({})

    refused = rest.post(f"experiments/{experiment.id}/retry-failed", json={})
    assert refused.status_code == 409 and str(failed[0]) in refused.json()["detail"]
    experiment.retry_failed(discard_annotations=True)

    assert experiment.results.num_failed_responses == 0 and len(experiment.rated_responses) == 30
    assert kept <= {r.id for r in experiment.rated_responses}  # the successful responses were not regenerated
    for response in experiment.rated_responses:
        assert sorted(r.criterion.criterion_str for r in response.ratings) == ["Clear?", "Is it short?", "Ok?"]
    ratings = [g for r in rest.get(f"responses?experiment_id={experiment.id}").json()["items"] for g in r["ratings"]]
    assert len(ratings) == 90 and _failed_ratings(rest, experiment.id) == 0
    calls = stack.fake.stats()["calls"]
    experiment.retry_failed()  # nothing is missing: no task, no model call
    assert experiment.generation_task_id is None and stack.fake.stats()["calls"] == calls


def _failed_ratings(rest: Rest, experiment_id: int) -> int:
    return rest.get(f"experiments/{experiment_id}").json()["results"]["num_failed_ratings"]
