"""Input PostgreSQL cannot store is refused up front with a 422 (or 404) naming the field, on both
databases alike: NUL characters, over-long strings, usage numbers of the wrong type, job ids that are
not UUIDs. Nothing is written by a refused request."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import ProjectHandle, recorded_statements

NUL = "a\u0000b"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("collections", {"name": NUL}, "body.name"),
        ("collections", {"name": "C", "columns": [{"name": NUL}]}, "body.columns.0.name"),
        ("criterion_sets", {"name": "S", "criteria": [{"criterion_str": NUL}]}, "criterion_str"),
        (
            "collections",
            {"name": "C", "columns": [{"name": "c", "column_type": "category", "categorical_values": ["ok", NUL]}]},
            "body.columns.0.categorical_values",
        ),
        ("llm_configs", {"name": "L", "llm_model_name": "m", "system_message": NUL}, "body.system_message"),
        ("prompt_templates", {"name": NUL, "messages": [{"role": "user", "content": "x"}]}, "body.name"),
        ("experiments", {"name": "E", "description": NUL}, "body.description"),
    ],
)
def test_nul_in_text_is_422_naming_the_field(project: ProjectHandle, path: str, body: dict, field: str) -> None:
    res = project.post(path, json=body)
    assert res.status_code == 422, res.get_data(as_text=True)
    assert field in res.get_json()["detail"] and "NUL" in res.get_json()["detail"]
    assert project.get(path).get_json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("collections?name=a%00b", "query.name"),
        ("responses?llm_model_name=a%00b", "query.llm_model_name"),
        ("experiments?experiment_name=a%00b", "query.experiment_name"),
    ],
)
def test_nul_in_a_query_is_422_naming_the_field(project: ProjectHandle, path: str, field: str) -> None:
    res = project.get(path)
    assert res.status_code == 422 and field in res.get_json()["detail"]


@pytest.mark.parametrize("task_id", ["a%00b", "x" * 5000, "not-a-uuid"])
def test_task_ids_that_are_not_uuids_are_404(project: ProjectHandle, task_id: str) -> None:
    assert project.get(f"responses/batches/{task_id}").status_code == 404
    assert project.get(f"ratings/batches/{task_id}").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("criterion_sets", {"name": "S", "criteria": [{"criterion_str": "c", "label": "x" * 501}]}, "label"),
        ("llm_configs", {"name": "L", "llm_model_name": "m", "api_version": "v" * 101}, "body.api_version"),
    ],
)
def test_strings_longer_than_their_column_are_422(project: ProjectHandle, path: str, body: dict, field: str) -> None:
    res = project.post(path, json=body)
    assert res.status_code == 422 and field in res.get_json()["detail"]
    assert project.get(path).get_json()["count"] == 0


def _experiment_with_entries(project: ProjectHandle, n: int) -> tuple[int, list[int]]:
    collection = project.post("collections", json={"name": "C", "variables": [{"q": str(i)} for i in range(n)]})
    template = project.post("prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "{{q}}"}]})
    ids = {"collection_id": collection.get_json()["id"], "prompt_template_id": template.get_json()["id"]}
    experiment = project.post("experiments", json={"name": "E", **ids})
    return experiment.get_json()["id"], [v["id"] for v in collection.get_json()["variables"]]


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"input_tokens": "lots"}, "body.metadata.input_tokens"),
        ({"output_tokens": 2**40}, "body.metadata.output_tokens"),
        ({"input_tokens": -5}, "body.metadata.input_tokens"),
        ({"duration_seconds": [1]}, "body.metadata.duration_seconds"),
    ],
)
def test_response_usage_of_the_wrong_type_is_422(project: ProjectHandle, metadata: dict, field: str) -> None:
    experiment_id, entries = _experiment_with_entries(project, 1)
    body = {
        "template_variables_id": entries[0],
        "experiment_id": experiment_id,
        "messages": [{"role": "assistant", "content": "hi"}],
        "metadata": metadata,
    }
    res = project.post("responses", json=body)
    assert res.status_code == 422 and field in res.get_json()["detail"]
    assert project.get("responses").get_json()["count"] == 0


def test_response_usage_as_the_sdk_sends_it_is_stored(project: ProjectHandle) -> None:
    experiment_id, entries = _experiment_with_entries(project, 1)
    config = project.post("llm_configs", json={"name": "L", "llm_model_name": "m"}).get_json()
    metadata = {"llm_model_config": config, "duration_seconds": 1.5, "input_tokens": 12, "output_tokens": 3}
    res = project.post(
        "responses",
        json={
            "template_variables_id": entries[0],
            "experiment_id": experiment_id,
            "llm_config_id": config["id"],
            "messages": [{"role": "assistant", "content": "hi"}],
            "metadata": {**metadata, "cached_tokens": 0},
        },
    )
    assert res.status_code == 201, res.get_data(as_text=True)
    stored = res.get_json()["generation_metadata"]
    assert (stored["duration_seconds"], stored["input_tokens"], stored["output_tokens"]) == (1.5, 12, 3)
    assert stored["llm_model_config"]["id"] == config["id"]


def test_a_large_batch_is_checked_in_a_constant_number_of_queries(app: Flask, project: ProjectHandle) -> None:
    experiment_id, entries = _experiment_with_entries(project, 300)
    engine = app.extensions["assay_db"].engine
    counts = []
    for n in (3, 300):
        items = [{"template_variables_id": e, "experiment_id": experiment_id} for e in entries[:n]]
        with recorded_statements(engine) as statements:
            res = project.post("responses/batches", json={"prompt_response_ins": items})
        assert res.status_code in (201, 202), res.get_data(as_text=True)
        counts.append(len([s for s in statements if s.lstrip().upper().startswith("SELECT")]))
    assert counts[0] == counts[1], counts
