"""Wake-ups reach the listeners of their own Redis database, and a listener outlives a Redis fault."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

import redis

from services import wakeups

REDIS = os.environ.get("ASSAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]


async def _until(condition: Callable[[], object]) -> None:
    """Poll without blocking the loop the listener runs on (callers bound the wait)."""
    while not condition():
        await asyncio.sleep(0.01)


def _subscribed(client: redis.Redis, url: str) -> bool:
    return bool(client.pubsub_numsub(wakeups.channel(url))[0][1])


async def _listen_until(url: str, expected: int, publish: list[tuple[str, str]]) -> list[str]:
    """Listen on `url`, publish `publish` ((url, job id) pairs) once subscribed, return what arrived."""
    heard: list[str] = []
    listener = asyncio.create_task(wakeups.listen(url, heard.append, retry_seconds=0.05))
    client = redis.Redis.from_url(url)
    try:
        async with asyncio.timeout(10):
            await _until(lambda: _subscribed(client, url))
            for target, job_id in publish:
                wakeups.publish(target, job_id)
            await _until(lambda: len(heard) >= expected)
            await asyncio.sleep(0.1)  # anything that should not have arrived has had its chance
    finally:
        listener.cancel()
    return heard


def test_a_wake_up_reaches_the_listeners_of_its_database_only() -> None:
    mine, other = f"{REDIS}/11", f"{REDIS}/12"
    heard = asyncio.run(_listen_until(mine, 2, [(other, "job-elsewhere"), (mine, "job-a"), (mine, "job-b")]))
    assert heard == ["job-a", "job-b"]


def test_publishing_without_redis_is_only_logged(caplog) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    wakeups.publish(f"redis://127.0.0.1:{port}/0", "job-a")
    wakeups.publish(None, "job-a")  # no Redis configured: nothing to do
    assert "could not publish the wake-up for job job-a" in caplog.text


def test_a_listener_subscribes_again_after_its_connection_is_killed() -> None:
    url = f"{REDIS}/13"

    async def scenario() -> list[str]:
        heard: list[str] = []
        listener = asyncio.create_task(wakeups.listen(url, heard.append, retry_seconds=0.05))
        client = redis.Redis.from_url(url)
        try:
            async with asyncio.timeout(10):
                await _until(lambda: _subscribed(client, url))
                for peer in client.client_list():  # what a Redis restart does to the subscriber
                    if peer["db"] == "13" and int(peer["sub"]):
                        client.client_kill_filter(_id=peer["id"])
                await _until(lambda: _subscribed(client, url))
                wakeups.publish(url, "job-after-the-fault")
                await _until(lambda: heard)
        finally:
            listener.cancel()
        return heard

    assert asyncio.run(scenario()) == ["job-after-the-fault"]
