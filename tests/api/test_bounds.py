"""Numbers a client sends are checked against what the database can hold: an id or page out of range is a
404 (in the path) or a 422 naming the field (in the query or body), never a 500 from the database."""

from __future__ import annotations

import pytest

from tests.conftest import ProjectHandle

HUGE = 2**31  # one past PostgreSQL's INTEGER


@pytest.mark.parametrize(
    "path",
    [f"experiments/{HUGE}", f"experiments/{10**20}/export", f"collections/{HUGE}/entries", f"responses/{HUGE}"],
)
def test_ids_out_of_range_in_the_path_are_404(project: ProjectHandle, path: str) -> None:
    res = project.get(path)
    assert res.status_code == 404 and "detail" in res.get_json()


def test_a_project_id_out_of_range_is_404(project: ProjectHandle) -> None:
    res = project.client.get(f"/api/v0/projects/{HUGE}/experiments", headers=project.headers)
    assert res.status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"experiments?page={HUGE}", "query.page"),
        (f"experiments?collection_id={HUGE}", "query.collection_id"),
        (f"responses?response_ids=1&response_ids={HUGE}", "query.response_ids.1"),
        (f"responses?epoch={HUGE}", "query.epoch"),
        (f"ratings?prompt_response_id={HUGE}", "query.prompt_response_id"),
        (f"prompt_templates?version={HUGE}", "query.version"),
    ],
)
def test_query_numbers_out_of_range_are_422_naming_the_field(project: ProjectHandle, path: str, field: str) -> None:
    res = project.get(path)
    assert res.status_code == 422 and field in res.get_json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("experiments", {"name": "x", "collection_id": HUGE}, "body.collection_id"),
        ("ratings/batches", {"prompt_response_ids": [1, HUGE]}, "body.prompt_response_ids.1"),
        ("responses", {"template_variables_id": HUGE}, "body.template_variables_id"),
        ("responses/batches", {"prompt_response_ins": [{"template_variables_id": 0}]}, "template_variables_id"),
    ],
)
def test_body_ids_out_of_range_are_422_naming_the_field(
    project: ProjectHandle, path: str, body: dict, field: str
) -> None:
    res = project.post(path, json=body)
    assert res.status_code == 422 and field in res.get_json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("llm_configs", {"name": "L", "llm_model_name": "m", "max_tokens": HUGE}, "body.max_tokens"),
        ("llm_configs", {"name": "L", "llm_model_name": "m", "top_k": HUGE}, "body.top_k"),
        ("llm_configs", {"name": "L", "llm_model_name": "m", "best_of": HUGE}, "body.best_of"),
        ("collections", {"name": "C", "columns": [{"name": "a", "column_position": HUGE}]}, "column_position"),
        ("experiments", {"name": "x", "generation_params": {"max_tokens": HUGE}}, "generation_params.max_tokens"),
    ],
)
def test_other_numbers_out_of_range_are_422_and_nothing_is_stored(
    project: ProjectHandle, path: str, body: dict, field: str
) -> None:
    res = project.post(path, json=body)
    assert res.status_code == 422 and field in res.get_json()["detail"]
    assert project.get(path).get_json()["count"] == 0
