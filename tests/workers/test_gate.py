"""The call gate's slow start, on a real engine loop against the fake model server: a model new to the
process gets one call until one succeeds; a model that answered the process moments ago gets every slot
at once. The first call is held open by the fake (a scheduled `hang`), so nothing here races a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from fakellm import FakeLLM
from llmcalls import ModelSpec
from services.settings import load_settings
from tests.conftest import wait_until
from workers.cache import CallCache
from workers.engine import Engine
from workers.gate import CallGate


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    settings = {"database_url": f"sqlite:///{tmp_path / 'gate.db'}", "redis_url": None, "worker_max_inflight": 8}
    running = Engine(load_settings(settings))
    yield running
    running.shutdown()


def _gate(engine: Engine) -> CallGate:
    async def refused(message: str) -> None:
        raise AssertionError(message)

    return CallGate(engine, engine.settings, CallCache(engine.db, 1, False), lambda: False, refused)


def _generate(engine: Engine, spec: ModelSpec, count: int) -> Future[list[Any]]:
    """`count` generations of one new run, started at once on the engine's loop."""
    gate = _gate(engine)

    async def run() -> list[Any]:
        messages = [{"role": "user", "content": "Say hi."}]
        return await asyncio.gather(*(gate.generate(spec, messages) for _ in range(count)))

    return asyncio.run_coroutine_threadsafe(run(), engine.loop)


def _hold_the_first_call(fake: FakeLLM) -> None:
    fake.configure({"schedule": {"1": "hang"}, "hang_seconds": 120})
    fake.reset()


def _release(fake: FakeLLM) -> None:
    fake.configure({})
    fake.reset()  # the held call answers 200


def _spec(fake: FakeLLM, model: str) -> ModelSpec:
    return ModelSpec(model, base_url=fake.base_url, api_key="sk-test", max_connections=8, max_retries=0)


def test_a_model_new_to_the_process_gets_one_call_until_one_succeeds(fake: FakeLLM, engine: Engine) -> None:
    _hold_the_first_call(fake)
    results = _generate(engine, _spec(fake, "fake-new"), 4)
    wait_until(lambda: fake.stats()["in_flight"] == 1, timeout=60)
    assert fake.stats()["calls"] == 1  # the other three wait for its answer
    _release(fake)
    assert all(error is None for _, error in results.result(timeout=60))
    assert len(fake.requests()) == 3  # sent after the release (which cleared the log of the held call)


def test_a_model_that_answered_the_process_moments_ago_gets_every_slot_at_once(fake: FakeLLM, engine: Engine) -> None:
    spec = _spec(fake, "fake-known")
    fake.configure({})
    assert all(error is None for _, error in _generate(engine, spec, 2).result(timeout=60))
    _hold_the_first_call(fake)
    results = _generate(engine, spec, 4)  # a new run of the same model: no probe
    # Three answered while the first is still held (with a probe, the others would wait for it).
    wait_until(lambda: (stats := fake.stats())["calls"] == 4 and stats["in_flight"] == 1, timeout=60)
    _release(fake)
    assert all(error is None for _, error in results.result(timeout=60))
