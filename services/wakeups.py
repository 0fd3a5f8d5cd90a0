"""Wake-ups: a new job's id published on Redis once its row is committed, so the scheduler of every
worker process joins it at once instead of at its next scout.

A wake-up is only a hint. The run messages still go through Celery and the scouts still find every job
with free chunks, so a wake-up lost to a Redis fault costs the wait for one of those, nothing else.
The channel is named after the Redis database: PUBLISH reaches every database of a server, and stacks
sharing a server (the test suite's, the benchmarks') must not wake each other's workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis
from redis.asyncio import Redis

from services import heartbeat

log = logging.getLogger(__name__)


def channel(redis_url: str) -> str:
    db = redis.connection.parse_url(redis_url).get("db", 0)
    return f"assay:jobs:new:{db}"


def publish(redis_url: str | None, job_id: str) -> None:
    """Wake every listening worker for `job_id` (a committed job); a Redis fault is only logged."""
    if not redis_url:
        return
    try:
        heartbeat.client(redis_url).publish(channel(redis_url), job_id)
    except redis.RedisError as exc:
        log.warning("could not publish the wake-up for job %s (workers find it by scouting): %s", job_id, exc)


async def listen(redis_url: str, on_job: Callable[[str], None], retry_seconds: float = 1.0) -> None:
    """Call `on_job(job_id)` for every wake-up, subscribing again after a Redis fault, until cancelled."""
    while True:
        client = Redis.from_url(redis_url, socket_connect_timeout=1)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel(redis_url))
                async for message in pubsub.listen():
                    on_job(message["data"].decode())
        except (redis.RedisError, OSError) as exc:
            log.warning("wake-ups unavailable (jobs are found by scouting meanwhile): %s", exc)
        finally:
            await client.aclose()
        await asyncio.sleep(retry_seconds)
