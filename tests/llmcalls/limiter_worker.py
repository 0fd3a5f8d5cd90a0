"""A separate process for the limiter tests (run as a script, not collected by pytest).

``calls BASE_URL REDIS_URL KEY LIMIT N [KEEP]``: print ``ready``, wait for a line on stdin, make N
concurrent chat calls under a RedisLimiter (keeping released leases KEEP seconds), print how many
succeeded.
``hold REDIS_URL KEY LIMIT TTL``: take one slot, print ``held``, then sleep until killed.
"""

from __future__ import annotations

import asyncio
import sys

from llmcalls import ModelSpec, RedisLimiter, chat, close_all


async def calls(base_url: str, redis_url: str, key: str, limit: int, count: int, keep: float) -> None:
    limiter = RedisLimiter(redis_url, key, limit, keep_released=keep)
    spec = ModelSpec(model="fake-model", base_url=base_url, api_key="x", max_connections=50)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    messages = [{"role": "user", "content": "hi"}]
    results = await asyncio.gather(*(chat(spec, messages, limiter=limiter) for _ in range(count)))
    print(sum(result.content.startswith("Fake answer") for result in results), flush=True)
    await close_all()
    await limiter.aclose()


async def hold(redis_url: str, key: str, limit: int, ttl: float) -> None:
    limiter = RedisLimiter(redis_url, key, limit, lease_ttl=ttl)
    async with limiter.slot():
        print("held", flush=True)
        await asyncio.sleep(3600)


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "calls":
        keep = float(args[5]) if len(args) > 5 else 0.0
        asyncio.run(calls(args[0], args[1], args[2], int(args[3]), int(args[4]), keep))
    else:
        asyncio.run(hold(args[0], args[1], int(args[2]), float(args[3])))


if __name__ == "__main__":
    main(sys.argv[1:])
