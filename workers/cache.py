"""Cached model calls for one job: a hit returns the stored answer without reaching the provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from llmcalls import ChatResult, ModelSpec, Verdict
from services import llm_cache

Db = Callable[..., Awaitable[Any]]
"""Runs `fn(session, *args)` as a unit of work (`Engine.db`)."""

FREE = {"duration": 0.0, "input_cost": 0.0, "output_cost": 0.0}


class CallCache:
    def __init__(self, db: Db, project_id: int, enabled: bool) -> None:
        self.db = db
        self.project_id = project_id
        self.enabled = enabled
        self.hits = 0

    async def chat(
        self, spec: ModelSpec, messages: list[dict[str, Any]], epoch: int, call: Callable[[], Awaitable[ChatResult]]
    ) -> ChatResult:
        return await self._cached(ChatResult, spec, "chat", [messages, epoch], call)

    async def verdict(self, spec: ModelSpec, payload: list[Any], call: Callable[[], Awaitable[Verdict]]) -> Verdict:
        return await self._cached(Verdict, spec, "judge", payload, call)

    async def _cached(
        self, kind: type, spec: ModelSpec, name: str, payload: Any, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        if not self.enabled:
            return await call()
        key = llm_cache.cache_key(self.project_id, name, spec, payload)
        stored = await self.db(llm_cache.lookup, key, self.project_id)
        if stored is not None:
            self.hits += 1
            return kind(**{**stored, **FREE})
        result = await call()
        await self.db(llm_cache.store, key, self.project_id, dataclasses.asdict(result))
        return result
