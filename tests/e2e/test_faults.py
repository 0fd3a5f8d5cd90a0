"""Infrastructure faults during a run cost nothing: the database's connections terminated, Redis restarted.

Real workers on real PostgreSQL and on a Redis of this module's own (the shared one is never touched).
Every check reads the database over the test's own connection, which the faults spare.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from elluminate import Client

from tests.conftest import PG_ADMIN_URL
from tests.e2e.conftest import Rest, Stack
from tests.e2e.runs import new_experiment, start_run

pytestmark = pytest.mark.e2e
STACK_OWN_REDIS = True
CRITERIA = ["A?", "B?"]


@pytest.fixture(scope="module")
def project(stack: Stack) -> tuple[int, str]:
    return stack.new_project("Faults")


@pytest.fixture
def rest(stack: Stack, project: tuple[int, str]) -> Rest:
    return Rest(stack.base_url, project[1], project[0])


@pytest.fixture
def client(stack: Stack, project: tuple[int, str]) -> Client:
    stack.fake.configure({"latency_ms": 100})
    return Client(base_url=stack.base_url, api_key=project[1])


@pytest.fixture
def admin(stack: Stack) -> Iterator[psycopg.Connection[Any]]:
    """The test's own connection to the stack's database: it terminates the others and reads outcomes."""
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as conn:
        yield conn


def _scalar(admin: psycopg.Connection[Any], sql: str, *params: Any) -> Any:
    row = admin.execute(sql, params).fetchone()
    return row[0] if row else None


def _wait_for_responses(admin: psycopg.Connection[Any], experiment_id: int, count: int) -> None:
    deadline = time.monotonic() + 120
    while _scalar(admin, "SELECT count(*) FROM responses WHERE experiment_id = %s", experiment_id) < count:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.1)


def _final_status(admin: psycopg.Connection[Any], task_id: str) -> tuple[str, str | None]:
    deadline = time.monotonic() + 300
    while (row := admin.execute("SELECT status, error_msg FROM jobs WHERE id = %s", [task_id]).fetchone())[0] in (
        "PENDING",
        "STARTED",
    ):
        assert time.monotonic() < deadline, row
        time.sleep(0.2)
    return row[0], row[1]


def _assert_complete(admin: psycopg.Connection[Any], experiment_id: int, items: int) -> None:
    """Every entry x epoch has exactly one successful response, every response x criterion exactly one
    successful rating, and no rating failed."""
    per_item = admin.execute(
        "SELECT count(*) FILTER (WHERE error IS NULL), count(*) FROM responses WHERE experiment_id = %s "
        "GROUP BY entry_id, epoch",
        [experiment_id],
    ).fetchall()
    assert len(per_item) == items and set(per_item) == {(1, 1)}
    per_response = admin.execute(
        "SELECT count(g.id) FILTER (WHERE g.error IS NULL AND g.rating IS NOT NULL), count(g.id), "
        "count(DISTINCT g.criterion_id) FROM responses r LEFT JOIN ratings g ON g.response_id = r.id "
        "WHERE r.experiment_id = %s GROUP BY r.id",
        [experiment_id],
    ).fetchall()
    assert len(per_response) == items and set(per_response) == {(len(CRITERIA),) * 3}


def test_terminated_database_connections_cost_nothing(
    stack: Stack, client: Client, rest: Rest, admin: psycopg.Connection[Any]
) -> None:
    experiment = new_experiment(client, "Terminated", 1000, CRITERIA)
    task_id = start_run(rest, experiment)
    _wait_for_responses(admin, experiment.id, 10)
    terminated = []
    for _ in range(4):
        terminated.append(
            _scalar(
                admin,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
        )
        time.sleep(random.uniform(0.5, 1.2))
    # Every round hit live connections of a job still running: the faults landed mid-run.
    assert all(terminated) and _scalar(admin, "SELECT status FROM jobs WHERE id = %s", task_id) == "STARTED"
    assert _final_status(admin, task_id) == ("SUCCESS", None)
    _assert_complete(admin, experiment.id, 1000)


def test_database_unreachable_for_10_s_mid_run_costs_nothing(
    stack: Stack, client: Client, rest: Rest, admin: psycopg.Connection[Any]
) -> None:
    """What a PostgreSQL restart does to the workers, on this test's database alone: every connection
    dropped and none accepted for 10 s (longer than the chunk leases, so they are given up and taken
    over once it is back)."""
    experiment = new_experiment(client, "Unreachable", 300, CRITERIA)
    task_id = start_run(rest, experiment)
    _wait_for_responses(admin, experiment.id, 10)
    database = _scalar(admin, "SELECT current_database()")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as server:  # a database cannot lock itself out
        try:
            server.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
            server.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [database, admin.info.backend_pid],
            )
            assert _scalar(admin, "SELECT status FROM jobs WHERE id = %s", task_id) == "STARTED"
            time.sleep(10)
        finally:
            server.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
    assert _final_status(admin, task_id) == ("SUCCESS", None)
    _assert_complete(admin, experiment.id, 300)


def test_redis_restarted_mid_run_costs_nothing(
    stack: Stack, client: Client, rest: Rest, admin: psycopg.Connection[Any]
) -> None:
    assert stack.redis is not None
    experiment = new_experiment(client, "Redis restart", 200, CRITERIA)
    task_id = start_run(rest, experiment)
    _wait_for_responses(admin, experiment.id, 10)
    stack.redis.kill()
    # Submitted while Redis is down: its run messages cannot be sent, and it runs once Redis is back.
    late = new_experiment(client, "Submitted while Redis is down", 20, CRITERIA)
    late_task_id = start_run(rest, late)
    assert _scalar(admin, "SELECT status FROM jobs WHERE id = %s", task_id) == "STARTED"
    time.sleep(5)
    stack.redis.start()
    assert _final_status(admin, task_id) == ("SUCCESS", None)
    assert _final_status(admin, late_task_id) == ("SUCCESS", None)
    _assert_complete(admin, experiment.id, 200)
    _assert_complete(admin, late.id, 20)
