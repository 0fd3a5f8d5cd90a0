"""The `assay` command's own answers: version, and project keys listed and revoked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from models.db import Database
from services import auth as auth_service


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    from importlib.metadata import version

    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"assay, version {version('assay')}"


def test_keys_list_shows_prefixes_and_revoke_makes_a_key_stop_working(runner: CliRunner, tmp_path: Path) -> None:
    created = runner.invoke(cli, ["projects", "create", "Keys"])
    assert created.exit_code == 0, created.output
    key = re.search(r"API key \(shown once\): (\S+)", created.output).group(1)  # type: ignore[union-attr]
    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0
    key_id, project, prefix, *_ = listed.output.splitlines()[0].split("\t")
    assert project == "project 1" and prefix == f"{key[:8]}..." and key not in listed.output

    revoked = runner.invoke(cli, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert f"API key {key_id}" in revoked.output
    database = Database(f"sqlite:///{tmp_path / 'cli.db'}")
    with database.session() as session:
        assert auth_service.principal_for_key(session, key) is None
    database.dispose()
    assert runner.invoke(cli, ["keys", "list"]).output == ""


def test_revoking_an_unknown_key_is_one_clear_error(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["keys", "revoke", "42"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no API key with id 42 (see assay keys list)"
