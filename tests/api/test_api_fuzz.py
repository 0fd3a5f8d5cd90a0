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
from tests.conftest import fake_host, make_project

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
    yield Target(app, project.id, project.key)
    app.extensions["assay_db"].dispose()


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
        if case.path_parameters and "project_id" in case.path_parameters:
            case.path_parameters["project_id"] = target.project_id
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
