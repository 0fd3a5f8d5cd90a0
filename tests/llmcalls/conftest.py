"""Fixtures: one fake model server per session (reset before each test), isolated Redis keys."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import pytest
import redis

from fakellm import FakeLLM
from llmcalls import FORMATS, ModelSpec, close_all

T = TypeVar("T")
REDIS_URL = os.environ.get("ASSAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def settled_statuses(fake: FakeLLM, timeout: float = 5.0) -> list[int]:
    """The status of every logged request, once none is still in flight (a hang-up takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = [record["status"] for record in fake.requests()]
        if None not in statuses or time.monotonic() > deadline:
            return statuses
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _forget_output_formats() -> Iterator[None]:
    yield
    FORMATS.clear()


@pytest.fixture
def transport() -> str:
    """The HTTP path of ``spec``'s calls; modules that pin down behaviour of both parametrize it."""
    return "aiohttp"


@pytest.fixture
def spec(fake: FakeLLM, transport: str) -> Callable[..., ModelSpec]:
    """``spec(**overrides)``: a ModelSpec for the fake server."""
    base = ModelSpec(model="fake-model", base_url=fake.base_url, api_key="test-key", timeout=10.0, transport=transport)

    def make(**overrides: Any) -> ModelSpec:
        return replace(base, **overrides)

    return make


@pytest.fixture
def run() -> Callable[[Awaitable[T]], T]:
    """``run(coroutine)``: run it on a fresh event loop, closing the loop's clients afterwards."""

    def runner(main: Awaitable[T]) -> T:
        async def wrapper() -> T:
            try:
                return await main
            finally:
                await close_all()

        return asyncio.run(wrapper())

    return runner


@pytest.fixture
def redis_key() -> Iterator[str]:
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"assay-test:{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


class RecordedSleep:
    """An injectable retry sleep that records the waits it is asked for instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def recorded_sleep() -> RecordedSleep:
    """A :class:`RecordedSleep` for ``chat(..., sleep=...)``."""
    return RecordedSleep()
