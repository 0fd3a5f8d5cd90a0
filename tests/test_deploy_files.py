"""The compose file, the Procfile, the Dockerfile and the Kubernetes manifests agree with the CLI they call."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("deploy_validate", ROOT / "deploy" / "validate.py")
validate = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(validate)  # type: ignore[union-attr]
ASSAY_ROLES = {"migrate", "api", "worker", "sweeper"}


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    # .ci/run installs Debian's docker-compose and fails the run on any skip, so CI always validates.
    pytest.skip("docker-compose is not installed (apt-get install docker-compose)")


@pytest.fixture
def compose() -> dict[str, Any]:
    """The compose file resolved with the documented setup: .env from .env.example plus a secret key."""
    _compose_command()
    out = validate.compose_config(validate.documented_env(), "--profile", "fake-model")
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
        assert environment["ASSAY_SECRET_KEY"] == "a-long-random-value-for-the-check"
        assert environment["ASSAY_JOB_CHUNK_SIZE"] == "10"  # from .env, which Assay itself does not read


def test_compose_refuses_to_start_without_a_secret_key() -> None:
    _compose_command()
    out = validate.compose_config((ROOT / ".env.example").read_text())
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


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for _, doc in validate.manifests()}


def _container(manifests: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    resource = manifests[name]
    (container,) = resource["spec"]["template"]["spec"]["containers"]
    return container


def test_kubernetes_manifests_validate_against_the_kubernetes_and_keda_schemas() -> None:
    documents = validate.manifests()
    assert validate.problems(documents + (validate.rendered() or [])) == []
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in documents}
    assert {("Deployment", "assay-api"), ("Service", "assay-api"), ("Deployment", "assay-worker")} <= kinds
    assert {("Deployment", "assay-sweeper"), ("Job", "assay-migrate"), ("ScaledObject", "assay-worker")} <= kinds
    assert {("ConfigMap", "assay-config"), ("Secret", "assay-secrets")} <= kinds


def test_the_validator_names_a_misspelt_field(manifests: dict[str, dict[str, Any]]) -> None:
    api = copy.deepcopy(manifests["Deployment/assay-api"])
    api["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    scaled = copy.deepcopy(manifests["ScaledObject/assay-worker"])
    scaled["spec"]["maxReplicas"] = 3
    found = validate.problems([("api.yaml", api), ("scaledobject.yaml", scaled)])
    assert any("'livenesProbe' was unexpected" in line and line.startswith("api.yaml") for line in found)
    assert any("'maxReplicas' was unexpected" in line for line in found)


def test_kubernetes_probes_and_commands(manifests: dict[str, dict[str, Any]]) -> None:
    api = _container(manifests, "Deployment/assay-api")
    assert (api["livenessProbe"]["httpGet"]["path"], api["readinessProbe"]["httpGet"]["path"]) == (
        "/healthz",
        "/readyz",
    )
    worker = _container(manifests, "Deployment/assay-worker")
    config = manifests["ConfigMap/assay-config"]["data"]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert worker["ports"] == [{"name": "metrics", "containerPort": int(config["ASSAY_WORKER_METRICS_PORT"])}]
    assert config["ASSAY_AUTO_MIGRATE"] == "false"
    assert _container(manifests, "Job/assay-migrate")["command"] == ["assay", "migrate"]
    for name in ("Deployment/assay-api", "Deployment/assay-worker", "Deployment/assay-sweeper"):
        command = _container(manifests, name)["command"]
        assert command[0] == "assay"
        _check_cli(command[1:])
    assert all(_is_setting(name) for name in {**config, **manifests["Secret/assay-secrets"]["stringData"]})


def test_workers_scale_on_the_run_queue_and_the_free_chunks_the_api_reports(
    manifests: dict[str, dict[str, Any]],
) -> None:
    from services import cluster

    scaled = manifests["ScaledObject/assay-worker"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "assay-worker"
    triggers = {trigger["type"]: trigger["metadata"] for trigger in scaled["triggers"]}
    assert triggers["redis"]["listName"] == cluster.QUEUE
    assert _metric_names(triggers["prometheus"]["query"]) == {"assay_free_chunks"}


def test_grafana_dashboard_plots_only_metrics_assay_serves() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "assay-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = set().union(*(_metric_names(expr) for expr in exprs))
    assert used and used <= _served_metric_names(), used - _served_metric_names()
    assert {"assay_model_calls_total", "assay_free_chunks", "assay_http_requests_total"} <= used


def _metric_names(expr: str) -> set[str]:
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in re.findall(r"\bassay_[a-z_]+", expr)}


def _served_metric_names() -> set[str]:
    from services import metrics

    names = {"assay_jobs", "assay_queue_depth", "assay_free_chunks"}  # metrics.ClusterCollector's
    for value in vars(metrics).values():
        if hasattr(value, "_name") and hasattr(value, "_type"):
            names.add(value._name + ("_total" if value._type == "counter" else ""))
    return names


def test_every_setting_is_documented_in_the_readme_and_env_example() -> None:
    readme, example = (ROOT / "README.md").read_text(), (ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias.choices[0] if field.validation_alias else f"ASSAY_{name.upper()}"  # type: ignore[union-attr]
        assert f"| `{variable}` |" in readme, variable
        assert re.search(rf"^#? ?{variable}=", example, re.MULTILINE), variable
