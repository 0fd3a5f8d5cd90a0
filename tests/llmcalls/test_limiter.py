"""Concurrency limits: across processes on Redis, crash recovery, adaptation to 429s, and local."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from fakellm import FakeLLM
from llmcalls import ErrorKind, LLMCallError, LocalLimiter, ModelSpec, RedisLimiter, chat
from llmcalls.errors import LimiterUnavailable

from .conftest import REDIS_URL, RecordedSleep

Run = Callable[..., Any]
Spec = Callable[..., ModelSpec]
# Every wait here is bounded well below this; a hang should fail fast with a stack dump.
pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "hello"}]
WORKER = Path(__file__).with_name("limiter_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def worker(*args: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def first_line(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The process's first line of output, or an assertion error if none comes in time."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    assert readable, f"no output from the worker within {timeout} s"
    return process.stdout.readline().strip()


@pytest.mark.parametrize("keep", ["0", "0.05"], ids=["released-at-once", "released-leases-kept"])
def test_limit_holds_across_processes(fake: FakeLLM, redis_key: str, keep: str) -> None:
    fake.configure(latency_ms=200)
    shares = [7, 7, 6]
    with ExitStack() as stack:
        processes = [
            stack.enter_context(worker("calls", fake.base_url, REDIS_URL, redis_key, "4", str(share), keep))
            for share in shares
        ]
        for process in processes:
            assert first_line(process) == "ready"
        for process in processes:  # all three start calling together
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        succeeded = [int(process.communicate(timeout=60)[0].strip()) for process in processes]

    assert succeeded == shares
    stats = fake.stats()
    assert stats["by_status"] == {"200": 20}
    assert 2 <= stats["max_in_flight"] <= 4


def test_killed_holder_frees_its_slot_after_the_lease_ttl(redis_key: str, run: Run) -> None:
    async def blocked_then_free(holder: subprocess.Popen[str]) -> None:
        limiter = RedisLimiter(REDIS_URL, redis_key, 1, lease_ttl=1.0)
        try:
            assert await limiter.holders() == 1
            # Longer than the TTL: the live holder keeps renewing its lease, so the slot stays taken.
            with pytest.raises(TimeoutError):
                async with limiter.slot(timeout=2.0):
                    pass
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            async with limiter.slot(timeout=10.0):
                assert await limiter.holders() == 1
            assert await limiter.holders() == 0
        finally:
            await limiter.aclose()

    with worker("hold", REDIS_URL, redis_key, "1", "1.0") as holder:
        assert first_line(holder) == "held"
        run(blocked_then_free(holder))


@pytest.mark.parametrize("keep", [0.0, 3600.0], ids=["released-at-once", "released-leases-kept"])
def test_429_halves_the_shared_limit_and_successes_restore_it(
    fake: FakeLLM, spec: Spec, redis_key: str, run: Run, recorded_sleep: RecordedSleep, keep: float
) -> None:
    fake.configure(schedule={"1": "429"}, retry_after=7)

    async def scenario() -> list[int]:
        limiter = RedisLimiter(REDIS_URL, redis_key, 4, recover_after=2, keep_released=keep)
        other_worker = RedisLimiter(REDIS_URL, redis_key, 4, recover_after=2)
        try:
            seen = [await other_worker.effective_limit()]
            await chat(spec(), HELLO, limiter=limiter, sleep=recorded_sleep)  # 429, then success
            seen.append(await other_worker.effective_limit())
            await chat(spec(), HELLO, limiter=limiter)
            seen.append(await other_worker.effective_limit())
            return seen
        finally:
            await limiter.aclose()
            await other_worker.aclose()

    assert run(scenario()) == [4, 2, 3]
    assert len(recorded_sleep.waits) == 1 and recorded_sleep.waits[0] >= 7  # the 429's Retry-After


async def assert_only_one_slot(limiter: RedisLimiter) -> None:
    async with limiter.slot(timeout=10):
        with pytest.raises(TimeoutError):
            async with limiter.slot(timeout=0.3):
                pass


def test_lowered_limit_is_enforced(redis_key: str, run: Run) -> None:
    async def scenario() -> None:
        limiter = RedisLimiter(REDIS_URL, redis_key, 2, cooldown=0.0)
        try:
            await limiter.on_rate_limit()
            assert await limiter.effective_limit() == 1
            await limiter.on_rate_limit()
            assert await limiter.effective_limit() == 1  # never below one
            await assert_only_one_slot(limiter)
        finally:
            await limiter.aclose()

    run(scenario())


def test_429_burst_cuts_the_limit_once(redis_key: str, run: Run) -> None:
    async def scenario() -> int:
        limiter = RedisLimiter(REDIS_URL, redis_key, 8, cooldown=60.0)
        try:
            await asyncio.gather(*(limiter.on_rate_limit() for _ in range(4)))
            return await limiter.effective_limit()
        finally:
            await limiter.aclose()

    assert run(scenario()) == 4


def test_cancelled_holder_releases_its_slot(redis_key: str, run: Run) -> None:
    async def scenario() -> int:
        limiter = RedisLimiter(REDIS_URL, redis_key, 1)
        try:
            entered = asyncio.Event()

            async def hold() -> None:
                async with limiter.slot():
                    entered.set()
                    await asyncio.sleep(3600)

            task = asyncio.create_task(hold())
            await asyncio.wait_for(entered.wait(), 10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return await limiter.holders()
        finally:
            await limiter.aclose()

    assert run(scenario()) == 0


@contextlib.asynccontextmanager
async def keeper_and_other(redis_key: str, keep: float) -> AsyncIterator[tuple[RedisLimiter, RedisLimiter]]:
    """A limiter of one slot that keeps released leases, having used its slot once, and another
    process's limiter of the same key."""
    mine = RedisLimiter(REDIS_URL, redis_key, 1, keep_released=keep)
    other_process = RedisLimiter(REDIS_URL, redis_key, 1)
    try:
        async with mine.slot():
            pass
        yield mine, other_process
    finally:
        await mine.aclose()
        await other_process.aclose()


def test_a_kept_lease_serves_the_next_call_and_still_counts_against_the_limit(redis_key: str, run: Run) -> None:
    async def scenario() -> None:
        async with keeper_and_other(redis_key, keep=3600) as (mine, other_process):
            assert await other_process.holders() == 1  # kept for this process's next call
            with pytest.raises(TimeoutError):
                async with other_process.slot(timeout=0.3):
                    pass
            async with mine.slot(timeout=0.3):  # the kept lease, not a second one
                assert await other_process.holders() == 1
            await mine.aclose()  # gives kept leases back
            assert await other_process.holders() == 0
            async with other_process.slot(timeout=10):
                pass

    run(scenario())


def test_a_kept_lease_no_call_takes_goes_back_to_every_process(redis_key: str, run: Run) -> None:
    async def scenario() -> None:
        async with keeper_and_other(redis_key, keep=0.05) as (mine, other_process):
            async with other_process.slot(timeout=30):  # waits at most the keeping time
                assert await mine.holders() == 1

    run(scenario())


def test_a_lease_goes_back_to_redis_after_its_reuses(redis_key: str, run: Run) -> None:
    async def scenario() -> list[int]:
        limiter = RedisLimiter(REDIS_URL, redis_key, 1, keep_released=3600, max_reuses=2)
        try:
            seen = []
            for _ in range(2):
                async with limiter.slot(timeout=1):
                    pass
                seen.append(await limiter.holders())
            return seen
        finally:
            await limiter.aclose()

    assert run(scenario()) == [1, 0]


def test_a_429_gives_kept_leases_back_and_the_lowered_limit_holds(redis_key: str, run: Run) -> None:
    async def scenario() -> None:
        limiter = RedisLimiter(REDIS_URL, redis_key, 2, keep_released=3600)
        try:
            both = asyncio.Event()
            entered = 0

            async def hold() -> None:
                nonlocal entered
                async with limiter.slot(timeout=10):
                    entered += 1
                    if entered == 2:
                        both.set()
                    await both.wait()

            await asyncio.gather(hold(), hold())
            assert await limiter.holders() == 2  # both kept
            await limiter.on_rate_limit()
            assert await limiter.effective_limit() == 1
            await assert_only_one_slot(limiter)
        finally:
            await limiter.aclose()

    run(scenario())


def test_local_limiter_bounds_concurrency(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(latency_ms=50)

    async def scenario() -> None:
        limiter = LocalLimiter(3)
        await asyncio.gather(*(chat(spec(), HELLO, limiter=limiter) for _ in range(12)))

    run(scenario())
    stats = fake.stats()
    assert stats["by_status"] == {"200": 12}
    assert 1 <= stats["max_in_flight"] <= 3


def test_local_limiter_adapts(fake: FakeLLM, spec: Spec, run: Run, recorded_sleep: RecordedSleep) -> None:
    fake.configure(schedule={"1": "429"})

    async def scenario() -> list[int]:
        limiter = LocalLimiter(4, recover_after=1)
        await chat(spec(), HELLO, limiter=limiter, sleep=recorded_sleep)
        after_429_and_one_success = await limiter.effective_limit()
        await chat(spec(), HELLO, limiter=limiter)
        return [after_429_and_one_success, await limiter.effective_limit()]

    assert run(scenario()) == [3, 4]


def test_limiters_reject_a_zero_limit() -> None:
    with pytest.raises(ValueError):
        LocalLimiter(0)
    with pytest.raises(ValueError):
        RedisLimiter(REDIS_URL, "unused", 0)


def test_slot_wait_ends_at_its_timeout_even_with_a_socket_timeout(redis_key: str, run: Run) -> None:
    # Regression: on Python 3.11, redis-py's read timeout used to absorb the cancellation that
    # asyncio.timeout() sends, so waiters polled forever. The wait must not depend on it.
    async def scenario() -> int:
        client = Redis.from_url(REDIS_URL, socket_timeout=5.0)
        limiter = RedisLimiter(client, redis_key, 1)
        timeouts = 0
        try:
            async with limiter.slot():
                for _ in range(50):
                    with contextlib.suppress(TimeoutError):
                        async with limiter.slot(timeout=0.02):
                            pass
                    timeouts += 1
        finally:
            await client.aclose()
        return timeouts

    assert run(scenario()) == 50


def test_chat_gives_up_when_no_slot_frees_in_time(fake: FakeLLM, spec: Spec, redis_key: str, run: Run) -> None:
    async def scenario() -> None:
        limiter = RedisLimiter(REDIS_URL, redis_key, 1)
        try:
            async with limiter.slot():
                await chat(spec(total_timeout=0.5), HELLO, limiter=limiter)
        finally:
            await limiter.aclose()

    with pytest.raises(LLMCallError) as caught:
        run(scenario())

    assert (caught.value.kind, caught.value.attempts) == (ErrorKind.TIMEOUT, 1)
    assert fake.stats()["calls"] == 0  # nothing was sent while every slot was taken


def test_hundreds_of_waiters_in_one_process_queue_instead_of_failing(redis_key: str, run: Run) -> None:
    """More waiters than Redis connections: they wait their turn (before: 'Too many connections')."""

    async def scenario() -> int:
        limiter = RedisLimiter(REDIS_URL, redis_key, 4)
        peak = current = 0

        async def hold() -> None:
            nonlocal peak, current
            async with limiter.slot(timeout=60):
                current += 1
                peak = max(peak, current)
                await asyncio.sleep(0.01)
                current -= 1

        try:
            await asyncio.gather(*(hold() for _ in range(300)))
        finally:
            await limiter.aclose()
        return peak

    assert run(scenario()) == 4


def test_an_unreachable_limiter_is_a_retried_connection_failure_not_a_crash(
    fake: FakeLLM, spec: Spec, run: Run, recorded_sleep: RecordedSleep
) -> None:
    """A Redis blip fails the call after its retries like any connection failure (the job goes on);
    before, the RedisError escaped the retry loop and failed the whole job."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]

    async def scenario() -> None:
        limiter = RedisLimiter(f"redis://127.0.0.1:{closed}/0", "assay:test:down", 4)
        try:
            await limiter.on_rate_limit()  # the adaptive limit is advice: no error either
            await chat(spec(max_retries=2), HELLO, limiter=limiter, sleep=recorded_sleep)
        finally:
            await limiter.aclose()

    with pytest.raises(LLMCallError) as caught:
        run(scenario())

    assert (caught.value.kind, caught.value.attempts) == (ErrorKind.CONNECTION, 3)
    assert "limiter's Redis did not answer" in str(caught.value)
    assert fake.stats()["calls"] == 0


def test_a_slot_waits_for_a_redis_that_comes_back_within_the_outage_bound(redis_key: str, run: Run) -> None:
    from cli.up import free_port, redis_server_binary

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"

    async def scenario() -> bool:
        limiter = RedisLimiter(url, redis_key, 1, outage=60.0)
        server: subprocess.Popen[bytes] | None = None
        try:
            # Held in a name: a slot's context manager that is garbage-collected gives its lease back.
            slot = limiter.slot()
            waiting = asyncio.create_task(slot.__aenter__())
            await asyncio.sleep(0.5)  # the acquire is failing against a port nobody listens on yet
            assert not waiting.done()
            binary = str(redis_server_binary())
            server = subprocess.Popen([binary, "--port", str(port), "--save", ""], stdout=subprocess.DEVNULL)
            await waiting
            held = await limiter.holders() == 1
            await slot.__aexit__(None, None, None)
            return held
        finally:
            await limiter.aclose()
            if server is not None:
                server.kill()
                server.wait()

    assert run(scenario()) is True


def test_past_the_outage_bound_a_slot_fails_saying_how_long_it_waited(run: Run) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]

    async def scenario() -> None:
        limiter = RedisLimiter(f"redis://127.0.0.1:{closed}/0", "assay:test:down", 1, outage=0.3)
        try:
            async with limiter.slot():
                pass
        finally:
            await limiter.aclose()

    with pytest.raises(LimiterUnavailable, match=r"did not answer for assay:test:down within 0.3 s"):
        run(scenario())
