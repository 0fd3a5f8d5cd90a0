"""Units of work survive a connection that dies under them, and only that."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from models.db import Database
from workers.units import Units


class ConnectionDies:
    """A unit whose first `failures` runs lose their connection mid-transaction."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0

    def __call__(self, session: Any, value: int) -> int:
        self.runs += 1
        session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        if self.runs <= self.failures:
            raise OperationalError("INSERT", {}, Exception("terminating connection due to administrator command"))
        return value


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'units.db'}")
    with db.session() as session:
        session.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    return db


def _rows(database: Database) -> list[int]:
    with database.session() as session:
        return list(session.scalars(text("SELECT v FROM t")))


def test_a_unit_whose_connection_died_runs_again_and_commits_once(database: Database) -> None:
    unit = ConnectionDies(failures=2)
    assert Units(database, bound=30).run(unit, (7,)) == 7
    assert unit.runs == 3 and _rows(database) == [7]  # the failed runs were rolled back


def test_past_the_bound_the_fault_is_raised(database: Database) -> None:
    unit = ConnectionDies(failures=1)
    with pytest.raises(OperationalError):
        Units(database, bound=0).run(unit, (7,))
    assert unit.runs == 1 and _rows(database) == []


def test_a_deterministic_error_is_not_retried(database: Database) -> None:
    Units(database, bound=30).run(ConnectionDies(0), (1,))
    duplicate = ConnectionDies(0)
    with pytest.raises(IntegrityError):
        Units(database, bound=30).run(duplicate, (1,))
    assert duplicate.runs == 1
