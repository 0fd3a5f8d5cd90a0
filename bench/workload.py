"""Workloads over REST: set up an experiment of N entries and K criteria, run it, time it to SUCCESS."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class Api:
    base_url: str
    project_id: int
    key: str

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v0/projects/{self.project_id}/{path}"

    def post(self, path: str, **kwargs: Any) -> Any:
        res = requests.post(self.url(path), headers={"X-API-Key": self.key}, timeout=120, **kwargs)
        res.raise_for_status()
        return res.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        res = requests.get(self.url(path), headers={"X-API-Key": self.key}, timeout=120, **kwargs)
        res.raise_for_status()
        return res.json()


@dataclass
class Setup:
    template_id: int
    collection_id: int
    criterion_set_id: int


def prepare(api: Api, name: str, n: int, k: int) -> Setup:
    template = api.post(
        "prompt_templates",
        json={"name": name, "messages": [{"role": "user", "content": "Explain {{topic}} in two sentences."}]},
    )
    collection = api.post("collections", json={"name": name})
    rows = "\n".join(json.dumps({"topic": f"{name} topic {i}"}) for i in range(n))
    api.post(f"collections/{collection['id']}/entries/batches", files={"file": ("v.jsonl", rows, "application/jsonl")})
    criteria = [{"criterion_str": f"Is it good in respect {j}?"} for j in range(k)]
    criterion_set = api.post("criterion_sets", json={"name": name, "criteria": criteria})
    return Setup(template["id"], collection["id"], criterion_set["id"])


def start(api: Api, name: str, setup: Setup, llm_config_id: int | None = None) -> tuple[int, str]:
    body = {
        "name": name,
        "prompt_template_id": setup.template_id,
        "collection_id": setup.collection_id,
        "criterion_set_id": setup.criterion_set_id,
        "llm_config_id": llm_config_id,
        "generate": True,
        "rating_mode": "fast",
    }
    experiment = api.post("experiments", json=body)
    return experiment["id"], experiment["generation_task_id"]


def wait(api: Api, experiment_id: int, task_id: str, poll: float = 0.02) -> dict[str, Any]:
    while True:
        status = api.get(f"experiments/{experiment_id}/generation/{task_id}")
        if status["status"] in ("SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"):
            if status["status"] != "SUCCESS":
                raise RuntimeError(f"experiment {experiment_id} ended {status}")
            return status
        time.sleep(poll)


def run_timed(api: Api, name: str, setup: Setup, llm_config_id: int | None = None) -> float:
    """Seconds from submitting the experiment to its SUCCESS."""
    started = time.perf_counter()
    experiment_id, task_id = start(api, name, setup, llm_config_id)
    wait(api, experiment_id, task_id)
    return time.perf_counter() - started
