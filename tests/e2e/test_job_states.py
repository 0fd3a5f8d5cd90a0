"""REVOKED, REJECTED and TIMEOUT as the official SDK meets them: its blocking loops return (they end only on
SUCCESS or FAILURE, so Assay reports these as FAILURE plus the real `state`), and streams carry the real state."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from elluminate import AsyncClient, Client
from elluminate.streaming import TaskStatus
from sqlalchemy import text

from tests.e2e.conftest import Rest, Stack
from tests.e2e.runs import database_of

pytestmark = pytest.mark.e2e

# A small queue limit and a short default time limit make both states quick to reach.
STACK_ENV = {"ASSAY_MAX_ACTIVE_JOBS_PER_PROJECT": "2", "ASSAY_JOB_TIME_LIMIT_SECONDS": "3"}


@pytest.fixture
def project(stack: Stack) -> tuple[int, str]:
    stack.fake.configure({"latency_ms": 700})
    return stack.new_project(f"States {time.monotonic_ns()}")


def _setup(client: Client, n: int) -> tuple[object, object, object]:
    template = client.create_prompt_template(name="T", messages="Say {{topic}}.")
    collection = client.create_collection(name="C")
    collection.add_many(variables=[{"topic": f"t{i}"} for i in range(n)])
    criterion_set = client.create_criterion_set(name="S", criteria=["Ok?"])
    return template, collection, criterion_set


def _ended(stack: Stack, experiment_name: str) -> tuple[str, str]:
    """The state and message the job of the named experiment ended with (read from the job table)."""
    engine = database_of(stack)
    query = text(
        "SELECT j.status, j.error_msg FROM jobs j JOIN experiments e ON e.id = j.experiment_id WHERE e.name = :n"
    )
    with engine.connect() as conn:
        status, error_msg = conn.execute(query, {"n": experiment_name}).one()
    engine.dispose()
    return status, error_msg


def test_timeout_ends_sync_run_and_stream_shows_it(stack: Stack, project: tuple[int, str]) -> None:
    stack.fake.configure({"latency_ms": 2000})  # a generation and a rating take longer than the 3 s limit
    client = Client(base_url=stack.base_url, api_key=project[1])
    template, collection, criterion_set = _setup(client, 30)
    experiment = client.run_experiment(
        name="Slow", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    # The blocking run returned because the job timed out (the SDK sees it as FAILURE), not because it finished.
    assert _ended(stack, "Slow") == ("TIMEOUT", "TIMEOUT: the job ran past its time limit of 3 s")
    rest = Rest(stack.base_url, project[1], project[0])
    assert rest.get(f"experiments/{experiment.id}").json()["generation_task_id"] is None

    async def run_async_and_stream() -> list[TaskStatus]:
        async with AsyncClient(base_url=stack.base_url, api_key=project[1]) as aclient:
            await aclient.run_experiment(
                name="Slow async", prompt_template=template, collection=collection, criterion_set=criterion_set
            )
            assert _ended(stack, "Slow async")[0] == "TIMEOUT"
            return [
                e.status
                async for e in aclient.stream_experiment(
                    name="Slow stream",
                    prompt_template=template,
                    collection=collection,
                    criterion_set=criterion_set,
                    polling_interval=0.2,
                )
            ]

    statuses = asyncio.run(run_async_and_stream())
    assert statuses[-1] == TaskStatus.TIMEOUT


def test_rejection_when_the_queue_is_full(stack: Stack, project: tuple[int, str]) -> None:
    client = Client(base_url=stack.base_url, api_key=project[1])
    template, collection, criterion_set = _setup(client, 30)
    rest = Rest(stack.base_url, project[1], project[0])
    for i in range(2):
        body = {
            "name": f"Busy {i}",
            "prompt_template_id": template.id,
            "collection_id": collection.id,
            "criterion_set_id": criterion_set.id,
            "generate": True,
        }
        assert rest.post("experiments", json=body).status_code == 201
    started = time.monotonic()
    rejected = client.run_experiment(
        name="Rejected", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    assert time.monotonic() - started < 10 and rejected.rated_responses == []

    async def run_async_and_stream() -> list[TaskStatus]:
        async with AsyncClient(base_url=stack.base_url, api_key=project[1]) as aclient:
            begun = time.monotonic()
            await aclient.run_experiment(
                name="Rejected async", prompt_template=template, collection=collection, criterion_set=criterion_set
            )
            assert time.monotonic() - begun < 10
            return [
                e.status
                async for e in aclient.stream_experiment(
                    name="Rejected stream",
                    prompt_template=template,
                    collection=collection,
                    criterion_set=criterion_set,
                    polling_interval=0.2,
                )
            ]

    assert asyncio.run(run_async_and_stream()) == [TaskStatus.REJECTED]
    task_id = rest.post(
        "experiments",
        json={
            "name": "Rejected rest",
            "prompt_template_id": template.id,
            "collection_id": collection.id,
            "criterion_set_id": criterion_set.id,
            "generate": True,
        },
    ).json()["generation_task_id"]
    experiment_id = rest.get("experiments", params={"experiment_name": "Rejected rest"}).json()["items"][0]["id"]
    status = rest.get(f"experiments/{experiment_id}/generation/{task_id}").json()
    assert status["status"] == "REJECTED" and "queued or running jobs" in status["error_msg"]
    sdk_view = rest.get(f"experiments/{experiment_id}/generation/{task_id}", headers={"SDK-Version": "1.5.2"})
    assert sdk_view.json()["status"] == "FAILURE" and sdk_view.json()["state"] == "REJECTED"
    assert sdk_view.json()["error_msg"].startswith("REJECTED")


def test_cancel_ends_async_run_and_stream(stack: Stack, project: tuple[int, str]) -> None:
    client = Client(base_url=stack.base_url, api_key=project[1])
    template, collection, criterion_set = _setup(client, 30)
    rest = Rest(stack.base_url, project[1], project[0])

    def cancel_when_running(name: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = rest.get("experiments", params={"experiment_name": name}).json()["items"]
            if items and items[0]["generation_task_id"]:
                assert rest.post(f"experiments/{items[0]['id']}/cancel").status_code == 200
                return
            time.sleep(0.1)

    async def flow() -> list[TaskStatus]:
        async with AsyncClient(base_url=stack.base_url, api_key=project[1]) as aclient:
            canceller = threading.Thread(target=cancel_when_running, args=("Cancel async",))
            canceller.start()
            await aclient.run_experiment(
                name="Cancel async", prompt_template=template, collection=collection, criterion_set=criterion_set
            )
            canceller.join()
            canceller = threading.Thread(target=cancel_when_running, args=("Cancel stream",))
            canceller.start()
            statuses = [
                e.status
                async for e in aclient.stream_experiment(
                    name="Cancel stream",
                    prompt_template=template,
                    collection=collection,
                    criterion_set=criterion_set,
                    polling_interval=0.2,
                )
            ]
            canceller.join()
            return statuses

    statuses = asyncio.run(flow())
    # The blocking run returned because of the cancel, not because the run finished.
    assert _ended(stack, "Cancel async") == ("REVOKED", "REVOKED: cancelled by the user")
    assert statuses[-1] == TaskStatus.REVOKED
