"""The compose file, the Procfile, the Dockerfile and the Kubernetes manifests agree with the CLI they call."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ASSAY_ROLES = {"migrate", "api", "worker", "sweeper"}


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    # .ci/run installs Debian's docker-compose and fails the run on any skip, so CI always validates.
    pytest.skip("docker-compose is not installed (apt-get install docker-compose)")


def _compose_config(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on a copy of the compose file beside `folder`'s .env, as an operator runs it."""
    shutil.copy(ROOT / "docker-compose.yml", folder / "docker-compose.yml")
    return subprocess.run([*_compose_command(), *extra, "config"], capture_output=True, text=True, cwd=folder)


@pytest.fixture
def compose(tmp_path: Path) -> dict[str, Any]:
    """The compose file resolved with the documented setup: .env from .env.example plus a secret key."""
    env_file = (ROOT / ".env.example").read_text() + "ASSAY_SECRET_KEY=a-long-random-value-for-the-test\n"
    (tmp_path / ".env").write_text(env_file)
    out = _compose_config(tmp_path, "--profile", "fake-model")
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)["services"]


def test_compose_has_every_service_and_no_flower(compose: dict[str, Any]) -> None:
    assert set(compose) == {"redis", "postgres", "fake-llm", *ASSAY_ROLES}


def test_compose_migrates_only_in_the_migrate_service(compose: dict[str, Any]) -> None:
    assert compose["migrate"]["command"] == ["assay", "migrate"]
    for role in ASSAY_ROLES - {"migrate"}:
        assert compose[role]["environment"]["ASSAY_AUTO_MIGRATE"] == "false"
        assert compose[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_passes_the_env_file_and_the_secret_key(compose: dict[str, Any]) -> None:
    for role in ASSAY_ROLES:
        environment = compose[role]["environment"]
        assert environment["ASSAY_SECRET_KEY"] == "a-long-random-value-for-the-test"
        assert environment["ASSAY_JOB_CHUNK_SIZE"] == "10"  # from .env, which Assay itself does not read


def test_compose_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    out = _compose_config(tmp_path)
    assert out.returncode != 0
    assert "set ASSAY_SECRET_KEY in .env" in out.stderr


def test_compose_health_checks_probe_the_api_readiness_and_the_worker_metrics(compose: dict[str, Any]) -> None:
    assert "http://127.0.0.1:8000/readyz" in " ".join(compose["api"]["healthcheck"]["test"])
    port = compose["worker"]["environment"]["ASSAY_WORKER_METRICS_PORT"]
    assert f"http://127.0.0.1:{port}/metrics" in " ".join(compose["worker"]["healthcheck"]["test"])


def test_every_compose_assay_command_and_setting_exists(compose: dict[str, Any]) -> None:
    for role in ASSAY_ROLES:
        command = compose[role]["command"]
        assert command[:2] == ["assay", role]
        _check_cli(command[1:])
        for name in compose[role]["environment"]:
            assert _is_setting(name), name


def test_dockerfile_runs_as_a_user_with_a_healthcheck_and_pinned_dependencies() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert any(line.startswith("USER ") and line != "USER root" for line in lines)
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert any("pip install -c constraints.txt" in line for line in lines)
    pinned = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pinned and all("==" in line for line in pinned)
    assert {"flask", "celery", "prometheus-client", "python-json-logger"} <= {_dist(line) for line in pinned}


def test_every_procfile_process_is_an_assay_command() -> None:
    processes = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(processes) == {"release", "web", "worker", "sweeper"}
    for command in processes.values():
        words = command.split()
        assert words[0] == "assay"
        _check_cli(words[1:2])


def _check_cli(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "cli", args[0], "--help"], check=True, capture_output=True, cwd=ROOT)


def _is_setting(name: str) -> bool:
    if name in {"DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "PROMETHEUS_MULTIPROC_DIR"}:
        return True
    return name.startswith("ASSAY_") and name.removeprefix("ASSAY_").lower() in Settings.model_fields


def _dist(line: str) -> str:
    return line.split("==")[0].lower().replace("_", "-")
