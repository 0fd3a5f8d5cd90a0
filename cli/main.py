"""`assay`: one command for the API, workers, migrations, projects, keys, tokens and the fake model."""

from __future__ import annotations

import sys
from typing import Any

import click

from models.db import Database
from services import auth as auth_service
from services.settings import load_settings


def _database() -> Database:
    settings = load_settings()
    return Database(settings.database_url, settings.sqlite_busy_timeout_ms)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="assay", prog_name="assay")
def cli() -> None:
    """Assay: a self-hosted LLM evaluation backend that speaks the elluminate REST API."""


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema (DATABASE_URL; SQLite in the user data folder by default)."""
    database = _database()
    database.migrate()
    click.echo(f"database is at the newest migration: {database.engine.url.render_as_string(hide_password=True)}")


@cli.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored provider key with the first of ASSAY_ENCRYPTION_KEYS (after adding a new one)."""
    from services import llm_configs

    with _database().session() as session:
        count = llm_configs.reencrypt_keys(session)
    click.echo(f"re-encrypted {count} provider key(s) with the current key; older keys may now be removed")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn processes")
@click.option(
    "--threads", default=64, show_default=True, type=int, help="threads per process (each SSE stream holds one)"
)
def api(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the REST API with gunicorn (gthread workers, so many SSE streams can stay open).

    Migrates first unless ASSAY_AUTO_MIGRATE=false (then a release step or `assay migrate` does)."""
    from cli.observability import prepare_metrics_dir
    from cli.server import serve

    prepare_metrics_dir()  # first: prometheus-client reads it when it is imported
    if load_settings().auto_migrate:
        _database().migrate()

    serve(host, port, workers, threads)


@cli.command()
@click.option("--concurrency", default=1, show_default=True, type=int, help="processes (each runs one event loop)")
@click.option("--loglevel", default="info", show_default=True)
@click.option("--hostname", default=None, help="Celery node name (default: assay@<host>-<pid>)")
@click.option("--metrics-port", type=int, default=None, help="serve /metrics here [ASSAY_WORKER_METRICS_PORT]")
def worker(concurrency: int, loglevel: str, hostname: str | None, metrics_port: int | None) -> None:
    """Run a Celery worker on REDIS_URL; each process runs many jobs' model calls concurrently."""
    import os
    import socket

    from cli.observability import log_worker_as_assay, prepare_metrics_dir, serve_worker_metrics, wait_for_schema
    from workers.app import create_celery

    prepare_metrics_dir()
    log_worker_as_assay()
    wait_for_schema("the worker")
    settings = load_settings()
    if port := metrics_port or settings.worker_metrics_port:
        serve_worker_metrics(port)
    name = hostname or f"assay@{socket.gethostname()}-{os.getpid()}"
    create_celery(settings).worker_main(
        [
            *(["--quiet"] if settings.log_format == "json" else []),  # no banner among the JSON lines
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--hostname={name}",
            "--queues=assay",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@cli.command()
@click.option("--interval", default=2.0, show_default=True, help="seconds between passes")
@click.option("--stale-after", default=30.0, show_default=True, help="seconds without a live lease before re-sending")
def sweeper(interval: float, stale_after: float) -> None:
    """Re-send lost job messages, take over dead workers' jobs and time out overdue jobs."""
    from cli.observability import log_as, wait_for_schema
    from workers.sweeper import run_forever

    log_as("sweeper")
    wait_for_schema("the sweeper")
    run_forever(load_settings(), interval, stale_after)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="worker processes")
def up(host: str, port: int, workers: int) -> None:
    """Run the whole stack here: API, workers, sweeper, plus embedded Redis and a fake model when unset."""
    import signal

    from cli.up import run_until_stopped

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_until_stopped(host, port, workers)


@cli.command()
@click.option("--base-url", envvar="ELLUMINATE_BASE_URL", default=None, help="a running Assay (default: start one)")
@click.option("--entries", default=8, show_default=True, type=int, help="test cases in the demo collection")
def demo(base_url: str | None, entries: int) -> None:
    """Evaluate a prompt end to end with the elluminate SDK: live progress, then a results table."""
    from cli.demo import run_demo

    sys.exit(run_demo(base_url, entries))


@cli.group()
def projects() -> None:
    """Create and list projects."""


@projects.command("create")
@click.argument("name")
@click.option("--description", default="")
@click.option("--key", "fixed_key", default=None, help="use this API key instead of a random one")
def create_project(name: str, description: str, fixed_key: str | None) -> None:
    """Create a project and print its API key (shown only this once)."""
    database = _database()
    database.migrate()
    with database.session() as session:
        project = auth_service.create_project(session, name, description)
        key = auth_service.create_api_key(session, project.id, "created by CLI", fixed_key)
        project_id = project.id
    click.echo(f"project {project_id} {name!r} created")
    click.echo(f"API key (shown once): {key}")


@projects.command("list")
def list_projects() -> None:
    """List every project with its id."""
    from sqlalchemy import select

    from models.orm import Project

    with _database().session() as session:
        for project in session.scalars(select(Project).order_by(Project.id)):
            click.echo(f"{project.id}\t{project.name}")


@cli.group()
def keys() -> None:
    """Project API keys."""


@keys.command("create")
@click.option("--project", "project_id", required=True, type=int)
@click.option("--name", default="")
def create_key(project_id: int, name: str) -> None:
    """Create another API key for a project and print it once."""
    from models.orm import Project

    with _database().session() as session:
        if session.get(Project, project_id) is None:
            raise click.ClickException(f"project {project_id} not found")
        key = auth_service.create_api_key(session, project_id, name)
    click.echo(f"API key (shown once): {key}")


@keys.command("list")
@click.option("--project", "project_id", type=int, default=None, help="only this project's keys")
def list_keys(project_id: int | None) -> None:
    """List keys: id, project, first characters, name, creation time (the keys themselves are not stored)."""
    with _database().session() as session:
        for key in auth_service.api_keys(session, project_id):
            created = f"{key.created_at:%Y-%m-%d %H:%M}"
            click.echo(f"{key.id}\tproject {key.project_id}\t{key.prefix}...\t{key.name}\t{created}")


@keys.command("revoke")
@click.argument("key_id", type=int)
def revoke_key(key_id: int) -> None:
    """Delete a key by its id (see `assay keys list`); requests and Studio logins with it stop working."""
    with _database().session() as session:
        key = auth_service.revoke_api_key(session, key_id)
        if key is None:
            raise click.ClickException(f"no API key with id {key_id} (see assay keys list)")
        click.echo(f"API key {key_id} ({key.prefix}...) of project {key.project_id} revoked")


@cli.group()
def tokens() -> None:
    """Organization tokens (Authorization: Bearer; the SDK then needs project_id)."""


@tokens.command("create")
@click.option("--name", default="")
def create_token(name: str) -> None:
    """Create a token for the default organization and print it once."""
    database = _database()
    database.migrate()
    with database.session() as session:
        token = auth_service.create_org_token(session, auth_service.default_organization(session).id, name)
    click.echo(f"token (shown once): {token}")


def _mount_optional(group: click.Group, module: str, attr: str, name: str) -> None:
    import importlib

    command: Any = getattr(importlib.import_module(module), attr)
    group.add_command(command, name)


_mount_optional(cli, "fakellm.cli", "fake_llm", "fake-llm")
_mount_optional(cli, "cli.evals.command", "eval_command", "eval")
_mount_optional(cli, "cli.experiments", "experiments", "experiments")
_mount_optional(cli, "cli.collections", "collections", "collections")
