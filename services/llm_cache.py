"""The opt-in cache of model answers: an identical call in the same project returns the stored answer.

The key covers the project, the model and endpoint, a hash of the provider key, the messages, every
sampling parameter and the epoch, so one project never receives another's answers and epochs stay
independent samples.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.orm import LLMCacheEntry


def cache_key(project_id: int, kind: str, spec: Any, payload: Any) -> str:
    identity = {
        "project": project_id,
        "kind": kind,
        "model": spec.model,
        "base_url": spec.base_url,
        "key": hashlib.sha256((spec.api_key or "").encode()).hexdigest(),
        "params": [spec.temperature, spec.top_p, spec.max_tokens, spec.reasoning_effort, spec.system_message],
        "payload": payload,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def lookup(session: Session, key: str, project_id: int) -> dict[str, Any] | None:
    """The stored answer (and one more hit counted), or None."""
    row = session.scalar(select(LLMCacheEntry).where(LLMCacheEntry.key == key, LLMCacheEntry.project_id == project_id))
    if row is None:
        return None
    session.execute(update(LLMCacheEntry).where(LLMCacheEntry.key == key).values(hits=LLMCacheEntry.hits + 1))
    return row.value


def store(session: Session, key: str, project_id: int, value: dict[str, Any]) -> None:
    try:
        with session.begin_nested():
            session.add(LLMCacheEntry(key=key, project_id=project_id, value=value))
    except IntegrityError:
        pass  # another worker stored the same call first; either answer is fine
