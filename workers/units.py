"""Units of work on the workers' database, retried across transient faults.

A unit is `fn(session, *args)` in one transaction. When the connection dies under it (a server
restart, a failover, `pg_terminate_backend`, a full pool), the transaction is rolled back, the dead
connection leaves the pool and the whole unit runs again on a fresh one, with backoff, for up to a
bound. Every unit the workers run is safe to repeat: writes insert-or-ignore on the unique keys
that make results exactly-once, and a repeated claim finds the lease it already took.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from models.db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_PAUSE = 2.0


def is_transient(exc: BaseException) -> bool:
    """A fault of the connection, not of the work: running the same unit again can succeed."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | PendingRollbackError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def pause(attempt: int) -> float:
    """Full-jitter exponential backoff before retry `attempt` (1-based), at most `MAX_PAUSE` seconds."""
    return random.uniform(0.05, min(MAX_PAUSE, 0.1 * 2**attempt))


class Units:
    """Runs units of work on `database`, retrying transient faults for up to `bound` seconds."""

    def __init__(self, database: Database, bound: float) -> None:
        self.database = database
        self.bound = bound

    def run(self, fn: Callable[..., T], args: tuple[Any, ...], bound: float | None = None) -> T:
        """`fn(session, *args)` in one transaction, again on a fresh connection after a transient fault."""
        return self.retrying(lambda: self._once(fn, args), getattr(fn, "__name__", "unit"), bound)

    def _once(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self.database.session() as session:
            return fn(session, *args)

    def retrying(self, attempt: Callable[[], T], name: str, bound: float | None = None) -> T:
        """`attempt()`, repeated after transient database faults until `bound` seconds have passed."""
        deadline = time.monotonic() + (self.bound if bound is None else bound)
        tries = 0
        while True:
            try:
                return attempt()
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() >= deadline:
                    raise
                tries += 1
                log.warning("database fault in %s (attempt %d), retrying on a fresh connection: %s", name, tries, exc)
                time.sleep(min(pause(tries), max(0.0, deadline - time.monotonic())))
