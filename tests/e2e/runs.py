"""Experiments on a running stack, for the job tests: set them up, start them, read their outcome."""

from __future__ import annotations

import time
from typing import Any

from elluminate import Client
from sqlalchemy import Engine, create_engine

from tests.e2e.conftest import Rest, Stack


def new_collection(client: Client, name: str, n: int) -> object:
    collection = client.create_collection(name=name)
    collection.add_many(variables=[{"topic": f"topic {i} {'fail' if i % 3 == 0 else 'pass'}"} for i in range(n)])
    return collection


def new_experiment(client: Client, name: str, n: int, criteria: list[str] | None = None) -> Any:
    """A new experiment of `n` test cases, not yet run."""
    template = client.create_prompt_template(name=name, messages=f"{name} {{{{topic}}}}.")
    collection = new_collection(client, f"{name} cases", n)
    criterion_set = client.create_criterion_set(name=f"{name} criteria", criteria=criteria or ["Ok?"])
    return client.create_experiment(
        name=f"{name} run", prompt_template=template, collection=collection, criterion_set=criterion_set
    )


def start_run(rest: Rest, experiment: Any) -> str:
    """Start the experiment over REST; its task id."""
    body = {"rating_mode": "fast", "n_epochs": 1}
    return rest.post(f"experiments/{experiment.id}/run", json=body).json()["generation_task_id"]


def database_of(stack: Stack) -> Engine:
    return create_engine(stack.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))


def final_status(rest: Rest, experiment_id: int, task_id: str, timeout: float) -> dict[str, Any]:
    status_url = f"experiments/{experiment_id}/generation/{task_id}"
    deadline = time.time() + timeout
    while (status := rest.get(status_url).json())["status"] in ("PENDING", "STARTED"):
        assert time.time() < deadline, status
        time.sleep(0.2)
    return status
