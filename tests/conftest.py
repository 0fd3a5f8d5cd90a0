"""Shared fixtures: an app per test on a clean database (SQLite and PostgreSQL), projects with keys."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, text

from api import create_app
from fakellm.testing import FakeLLM
from models.db import Database
from models.orm import Base
from services import auth as auth_service


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    """With ASSAY_NO_SKIPS=1 (set by .ci/run) a skipped test fails the run: required tests must run."""
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("ASSAY_NO_SKIPS") == "1" and skipped:
        terminalreporter.write_line(f"{len(skipped)} test(s) skipped, but ASSAY_NO_SKIPS=1 requires every test to run")
        terminalreporter._session.exitstatus = pytest.ExitCode.TESTS_FAILED  # type: ignore[attr-defined]


PG_ADMIN_URL = os.environ.get("ASSAY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# One database per test run, so concurrent runs on one machine never see each other's rows.
PG_TEST_DB = os.environ.get("ASSAY_TEST_PG_DB", f"assay_test_{os.getpid()}")


def _pg_url(db: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy, which is much cheaper than migrating again."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def create_pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return _pg_url(name)


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Database]:
    """The PostgreSQL test database, created and migrated once per run, dropped at the end."""
    db = Database(create_pg_database(PG_TEST_DB))
    db.migrate()
    yield db
    db.dispose()
    drop_pg_database(PG_TEST_DB)


def _truncate_all(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database for one test, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "assay.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    db: Database = request.getfixturevalue("pg_database")
    _truncate_all(db)
    return db.url


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    """One fake OpenAI-compatible server for the whole run (the API tests' default model and judge too)."""
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def fake(fake_llm: FakeLLM) -> FakeLLM:
    """The shared fake server with the default config and zeroed counters."""
    fake_llm.configure()
    fake_llm.reset()
    return fake_llm


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def fake_host(fake_llm: FakeLLM) -> str:
    """The fake model's `host:port`, for ASSAY_LLM_ALLOWED_HOSTS."""
    return urlsplit(fake_llm.base_url).netloc


@pytest.fixture
def app(database_url: str, fake_llm: FakeLLM) -> Iterator[Flask]:
    fake_llm.configure({})
    app = create_app(
        {
            "database_url": database_url,
            "auto_migrate": False,
            "page_size": 5,
            "llm_base_url": fake_llm.base_url,
            # The fake model is on loopback, which the outbound policy refuses unless allowed.
            "llm_allowed_hosts": fake_host(fake_llm),
            "llm_model": "fake-model",
            "openai_api_key": "sk-test",
        }
    )
    yield app
    app.extensions["assay_db"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class ProjectHandle:
    """A project with its key, and helpers that call its routes with the right credentials."""

    client: FlaskClient
    id: int
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    def url(self, path: str) -> str:
        return f"/api/v0/projects/{self.id}/{path.lstrip('/')}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(self.url(path), method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.call("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)


def make_project(app: Flask, name: str) -> ProjectHandle:
    database: Database = app.extensions["assay_db"]
    with database.session() as session:
        project = auth_service.create_project(session, name)
        key = auth_service.create_api_key(session, project.id)
        project_id = project.id
    return ProjectHandle(app.test_client(), project_id, key)


@pytest.fixture
def project(app: Flask) -> ProjectHandle:
    return make_project(app, "Project A")


@pytest.fixture
def other_project(app: Flask) -> ProjectHandle:
    return make_project(app, "Project B")


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block, in order."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
