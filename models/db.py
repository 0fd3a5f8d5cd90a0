"""Engine and session factory. One `Database` per process, created explicitly, never at import."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Insert, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


T = TypeVar("T")


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    # WAL plus a busy timeout let the API and several workers write side by side.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # pysqlite's implicit BEGIN is deferred; IMMEDIATE takes the write lock up front and so
        # avoids upgrade deadlocks (SQLITE_BUSY without waiting) between concurrent writers.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, sqlite_busy_timeout_ms: int = 30_000, pre_ping: bool = True) -> Engine:
    """Create an engine; for SQLite also create the file's folder and enable WAL. `pre_ping=False` saves
    a round trip per checkout, for callers that retry a unit on a dead connection (`workers.units`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _tune_sqlite(engine, sqlite_busy_timeout_ms)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=10, max_overflow=20)


class Database:
    """Owns the engine and hands out sessions; `session()` is one unit of work with one commit."""

    def __init__(self, url: str, sqlite_busy_timeout_ms: int = 30_000, pre_ping: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url, sqlite_busy_timeout_ms, pre_ping)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command

        command.upgrade(alembic_config(self.url), "head")

    def schema_problem(self) -> str | None:
        """Why the schema is not usable by this code (not migrated, or behind), or None when it is at head.

        Raises SQLAlchemyError when the database does not answer."""
        from sqlalchemy import inspect, text

        with self.engine.connect() as conn:
            migrated = inspect(conn).has_table("alembic_version")
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() if migrated else []
        head = migration_head()
        if head in current:
            return None
        return f"schema at {', '.join(current) or 'nothing'}, newest migration is {head}: run `assay migrate`"

    def dispose(self) -> None:
        self.engine.dispose()


@functools.cache
def migration_head() -> str:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() or ""


def in_batches(ids: Sequence[T], size: int = 1000) -> Iterator[Sequence[T]]:
    """`ids` in slices short enough for one IN list each (PostgreSQL takes at most 65,535 parameters)."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def insert_ignoring_conflicts(session: Session, model: Any, *unique: str) -> Insert:
    """A Core INSERT into `model`'s table that skips rows clashing on the `unique` columns.

    One statement instead of a savepoint around an ORM insert: what the workers need when a worker
    that took over a chunk may have stored the same row a moment earlier.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model.__table__).on_conflict_do_nothing(index_elements=list(unique))


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
