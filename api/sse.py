"""Server-sent events for job progress: JSON `data:` in every event, comment keep-alives, closed
right after the terminal event. No database connection is held between events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Response, current_app

from models.db import Database
from models.orm import Job
from services import runs
from services.states import TERMINAL_STATES

KEEPALIVE_SECONDS = 15.0
# A shared read of a job is reused by its other streams while younger than this (or their interval).
MAX_STALE_SECONDS = 0.5
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def stream(poll: Callable[[Any], dict[str, Any]], interval: float) -> Response:
    """Stream `poll(session)` payloads: each change is an event; silence is broken by comments."""
    database: Database = current_app.extensions["assay_db"]

    def read() -> dict[str, Any]:
        with database.session() as session:
            return poll(session)

    return Response(_events(read, interval), mimetype="text/event-stream", headers=HEADERS)


def _events(read: Callable[[], dict[str, Any]], interval: float) -> Iterator[str]:
    yield ": stream open\n\n"
    last, last_sent = None, time.monotonic()
    while True:
        payload = read()
        if payload != last or payload.get("logs_delta"):
            yield event(payload)
            last, last_sent = payload, time.monotonic()
        elif time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        if payload.get("state", payload["status"]) in TERMINAL_STATES:
            return
        time.sleep(interval)


def experiment_stream(job_id: str, interval: float) -> Response:
    """An experiment job's real state, progress and new log lines (REST and Studio streams alike). Every
    stream of this process that follows the job shares one read of it per interval."""
    database: Database = current_app.extensions["assay_db"]

    def generate() -> Iterator[str]:
        opened = time.monotonic()
        with _following(job_id) as watch:
            seen = 0

            def read() -> dict[str, Any]:
                nonlocal seen
                status, new_lines, seen = watch.read(database, interval, seen, not_before=opened)
                return {**status, "logs_delta": new_lines or None}

            yield from _events(read, interval)

    return Response(generate(), mimetype="text/event-stream", headers=HEADERS)


class JobWatch:
    """One experiment job as the streams of this process see it: its status, read from the database at
    most once per polling interval however many streams follow it, and its log so far (as the deltas
    read), from which each stream takes what it has not sent yet."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.streams = 0
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._status: dict[str, Any] = {}
        self._deltas: list[str] = []
        self._cursor = 0

    def read(
        self, database: Database, interval: float, seen: int, not_before: float = float("-inf")
    ) -> tuple[dict[str, Any], str, int]:
        """The status, the log after the first `seen` deltas, and how many deltas there are now.

        The status is from a read at `not_before` (a `time.monotonic()` value) or later: a stream opened
        after a change (a page reloaded after its cancel) must not start with what other streams read before.
        """
        with self._lock:  # the streams that ask meanwhile wait for this read instead of making their own
            stale = time.monotonic() - self._read_at >= min(interval, MAX_STALE_SECONDS)
            if stale or self._read_at < not_before:
                with database.session() as session:
                    job = session.get_one(Job, self.job_id)
                    status = runs.experiment_status(session, job, for_sdk=False, log_cursor=self._cursor)
                self._cursor = status.pop("log_cursor")
                if delta := status.pop("logs_delta"):
                    self._deltas.append(delta)
                self._status, self._read_at = status, time.monotonic()
            return self._status, "".join(self._deltas[seen:]), len(self._deltas)


_watches: dict[str, JobWatch] = {}
_watches_lock = threading.Lock()


@contextmanager
def _following(job_id: str) -> Iterator[JobWatch]:
    with _watches_lock:
        watch = _watches.setdefault(job_id, JobWatch(job_id))
        watch.streams += 1
    try:
        yield watch
    finally:
        with _watches_lock:
            watch.streams -= 1
            if watch.streams == 0:
                del _watches[job_id]
