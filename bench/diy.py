"""The script a doubting user writes instead (the async LLM guide's pattern): AsyncOpenAI, one Semaphore, gather.

Generate a response per test case, then rate each response per criterion; nothing stored, streamed or retried.
"""

from __future__ import annotations

import asyncio
import time

from openai import AsyncOpenAI


async def _call(client: AsyncOpenAI, semaphore: asyncio.Semaphore, content: str) -> str:
    async with semaphore:
        response = await client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": content}]
        )
    return response.choices[0].message.content or ""


async def _item(client: AsyncOpenAI, semaphore: asyncio.Semaphore, topic: str, criteria: list[str]) -> list[str]:
    answer = await _call(client, semaphore, f"Explain {topic} in two sentences.")
    return await asyncio.gather(
        *(
            _call(client, semaphore, f"<criterion>{c}</criterion>\n<response>{answer}</response>\nYES or NO?")
            for c in criteria
        )
    )


async def run(base_url: str, n: int, k: int, concurrency: int) -> float:
    """Seconds for the whole job."""
    criteria = [f"Is it good in respect {j}?" for j in range(k)]
    async with AsyncOpenAI(base_url=base_url, api_key="sk-bench") as client:
        semaphore = asyncio.Semaphore(concurrency)
        started = time.perf_counter()
        await asyncio.gather(*(_item(client, semaphore, f"topic {i}", criteria) for i in range(n)))
        return time.perf_counter() - started


def run_sync(base_url: str, n: int, k: int, concurrency: int) -> float:
    return asyncio.run(run(base_url, n, k, concurrency))
