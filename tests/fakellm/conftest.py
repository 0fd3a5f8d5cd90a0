"""Fixtures: one fake server per test session, reset and reconfigured before every test."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import openai
import pytest

# The repo root holds the `fakellm` package; make it importable however pytest was started.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from fakellm import FakeLLM  # noqa: E402

T = TypeVar("T")
Scenario = Callable[[openai.AsyncOpenAI], Awaitable[T]]


def make_client(base_url: str, timeout: float = 30.0) -> openai.AsyncOpenAI:
    """A real OpenAI client pointed at the fake, without retries or proxies."""
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key="x",
        max_retries=0,
        timeout=timeout,
        http_client=openai.DefaultAsyncHttpxClient(trust_env=False, timeout=timeout),
    )


@pytest.fixture
def run(fake: FakeLLM) -> Callable[..., object]:
    """``run(scenario, timeout=30)``: await ``scenario(client)`` on a fresh loop with a fresh client."""

    def runner(scenario: Scenario[T], timeout: float = 30.0) -> T:
        async def main() -> T:
            async with make_client(fake.base_url, timeout) as client:
                return await scenario(client)

        return asyncio.run(main())

    return runner
