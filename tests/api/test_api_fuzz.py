"""A bounded schemathesis run over the served spec with a valid project key: every operation, a few
generated requests each (valid and invalid), and no server error, no response outside its documented
schema and no undocumented status. Bounded so it takes a few minutes on two cores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from fakellm import FakeLLM
from tests.conftest import ProjectHandle, fake_host, make_project

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Target:
    app: Flask
    project_id: int
    key: str


@pytest.fixture
def fuzz_target(sqlite_template: Path, tmp_path: Path, fake_llm: FakeLLM) -> Iterator[Target]:
    path = tmp_path / "fuzz.db"
    shutil.copyfile(sqlite_template, path)
    config = {
        "database_url": f"sqlite:///{path}",
        "auto_migrate": False,
        "llm_base_url": fake_llm.base_url,
        "llm_allowed_hosts": fake_host(fake_llm),
        "llm_model": "fake-model",
        "openai_api_key": "sk-test",
        "rate_limit": "",
    }
    app = create_app(config)
    project = make_project(app, "Fuzz")
    _seed(project, fake_llm)
    yield Target(app, project.id, project.key)
    app.extensions["assay_db"].dispose()


def _seed(project: ProjectHandle, fake_llm: FakeLLM) -> None:
    """Row 1 of every resource, so requests aimed at id 1 reach the handlers' real work, not only a 404."""
    messages = [{"role": "user", "content": "Say {{x}}"}]
    template = project.post("prompt_templates", json={"name": "T", "messages": messages}).get_json()
    collection = project.post("collections", json={"name": "C", "variables": [{"x": "a"}, {"x": "b"}]}).get_json()
    criteria = [
        {"criterion_str": "Is it short?"},
        {"criterion_str": "A number?", "evaluator": "regex", "params": {"pattern": "\\d"}},
    ]
    criterion_set = project.post("criterion_sets", json={"name": "S", "criteria": criteria}).get_json()
    config = project.post(
        "llm_configs", json={"name": "L", "llm_model_name": "fake-model", "llm_base_url": fake_llm.base_url}
    )
    experiment = {
        "name": "E",
        "prompt_template_id": template["id"],
        "collection_id": collection["id"],
        "criterion_set_id": criterion_set["id"],
        "llm_config_id": config.get_json()["id"],
    }
    assert project.post("experiments", json=experiment).status_code == 201


def _aim_at_seeded_rows(case: schemathesis.Case, target: Target) -> None:
    for name in case.path_parameters or {}:
        if name == "project_id":
            case.path_parameters[name] = target.project_id
        elif name.endswith("_id") and name != "task_id":
            case.path_parameters[name] = 1


# One hypothesis run per operation (schemathesis' own pytest plugin does not load under pytest 9).
FUZZ_SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,  # the same requests every run
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _fuzz(operation: schemathesis.APIOperation, target: Target) -> None:
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        _aim_at_seeded_rows(case, target)
        case.call_and_validate(headers={"X-API-Key": target.key}, checks=CHECKS)

    run()


def test_no_server_error_and_only_documented_answers(fuzz_target: Target) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v0/openapi.json", fuzz_target.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    failures = []
    for operation in operations:
        try:
            _fuzz(operation, fuzz_target)
        except Exception as exc:  # noqa: BLE001 - every operation's failure is reported together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
