"""Server-sent events for job progress: JSON `data:` in every event, comment keep-alives, closed
right after the terminal event. No database connection is held between events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, current_app

from models.db import Database
from models.orm import Job
from services import runs
from services.states import TERMINAL_STATES

KEEPALIVE_SECONDS = 15.0


def event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def stream(poll: Callable[[Any], dict[str, Any]], interval: float) -> Response:
    """Stream `poll(session)` payloads: each change is an event; silence is broken by comments."""
    database: Database = current_app.extensions["assay_db"]

    def generate() -> Iterator[str]:
        yield ": stream open\n\n"
        last, last_sent = None, time.monotonic()
        while True:
            with database.session() as session:
                payload = poll(session)
            if payload != last or payload.get("logs_delta"):
                yield event(payload)
                last, last_sent = payload, time.monotonic()
            elif time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            if payload.get("state", payload["status"]) in TERMINAL_STATES:
                return
            time.sleep(interval)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)


def experiment_stream(job_id: str, interval: float) -> Response:
    """An experiment job's real state, progress and new log lines (REST and Studio streams alike)."""
    cursor = {"value": 0}

    def poll(session: Any) -> dict[str, Any]:
        job = session.get_one(Job, job_id)
        payload = runs.experiment_status(session, job, for_sdk=False, log_cursor=cursor["value"])
        cursor["value"] = payload.pop("log_cursor")
        return payload

    return stream(poll, interval)
