"""Another project's ids behave exactly like ids that do not exist, for every resource type."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ProjectHandle

PROVIDER_KEY = "sk-live-provider-key-0123456789"


def _build(project: ProjectHandle) -> dict[str, int]:
    """Create one of everything in `project` and return the ids."""
    template = project.post("prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "{{q}}"}]})
    collection = project.post("collections", json={"name": "C", "variables": [{"q": "one"}]})
    cset = project.post("criterion_sets", json={"name": "S", "criteria": [{"criterion_str": "Ok?"}]})
    config = project.post("llm_configs", json={"name": "L", "llm_model_name": "m", "api_key": PROVIDER_KEY})
    ids = {
        "template": template.get_json()["id"],
        "collection": collection.get_json()["id"],
        "entry": collection.get_json()["variables"][0]["id"],
        "set": cset.get_json()["id"],
        "criterion": cset.get_json()["criteria"][0]["id"],
        "config": config.get_json()["id"],
    }
    experiment = project.post(
        "experiments",
        json={
            "name": "E",
            "prompt_template_id": ids["template"],
            "collection_id": ids["collection"],
            "criterion_set_id": ids["set"],
            "llm_config_id": ids["config"],
        },
    )
    ids["experiment"] = experiment.get_json()["id"]
    response = project.post(
        "responses",
        json={
            "template_variables_id": ids["entry"],
            "experiment_id": ids["experiment"],
            "epoch": 1,
            "messages": [{"role": "assistant", "content": "answer"}],
        },
    )
    ids["response"] = response.get_json()["id"]
    return ids


def _foreign_calls(ids: dict[str, int]) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"prompt_templates/{ids['template']}", None),
        ("DELETE", f"prompt_templates/{ids['template']}", None),
        ("GET", f"collections/{ids['collection']}", None),
        ("PUT", f"collections/{ids['collection']}", {"name": "stolen"}),
        ("DELETE", f"collections/{ids['collection']}", None),
        ("GET", f"collections/{ids['collection']}/entries", None),
        ("POST", f"collections/{ids['collection']}/entries", {"input_values": {"q": "x"}}),
        ("GET", f"collections/{ids['collection']}/entries/{ids['entry']}", None),
        ("PUT", f"collections/{ids['collection']}/entries/{ids['entry']}", {"input_values": {"q": "x"}}),
        ("DELETE", f"collections/{ids['collection']}/entries/{ids['entry']}", None),
        ("DELETE", f"collections/{ids['collection']}/entries", None),
        ("GET", f"criterion_sets/{ids['set']}", None),
        ("DELETE", f"criterion_sets/{ids['set']}", None),
        ("PUT", f"criterion_sets/{ids['set']}/prompt_templates/{ids['template']}", None),
        ("POST", "criteria", {"criterion_set_id": ids["set"], "criteria": [{"criterion_str": "x"}]}),
        ("GET", f"criteria?prompt_template_id={ids['template']}", None),
        ("GET", f"criteria/{ids['criterion']}", None),
        ("PUT", f"criteria/{ids['criterion']}", {"criterion_str": "changed"}),
        ("DELETE", f"criteria/{ids['criterion']}", None),
        ("GET", f"llm_configs/{ids['config']}", None),
        ("DELETE", f"llm_configs/{ids['config']}", None),
        ("GET", f"experiments/{ids['experiment']}", None),
        ("DELETE", f"experiments/{ids['experiment']}", None),
        ("GET", f"responses/{ids['response']}", None),
        ("PATCH", f"responses/{ids['response']}", {"annotation": "x"}),
        ("DELETE", f"responses/{ids['response']}", None),
        ("GET", f"ratings?prompt_response_id={ids['response']}", None),
    ]


def test_foreign_ids_are_not_found(project: ProjectHandle, other_project: ProjectHandle) -> None:
    ids = _build(project)
    for method, path, body in _foreign_calls(ids):
        res = other_project.call(method, path, json=body)
        assert res.status_code == 404, (method, path, res.status_code, res.get_data(as_text=True))
    # Referencing a foreign row from one's own request is a 404 too, and writes nothing.
    res = other_project.post(
        "experiments",
        json={
            "name": "E",
            "collection_id": ids["collection"],
            "prompt_template_id": ids["template"],
            "criterion_set_id": ids["set"],
        },
    )
    assert res.status_code == 404
    assert other_project.get("experiments").get_json()["count"] == 0
    # Nothing of A was changed or deleted by B's attempts.
    for path in ("prompt_templates", "collections", "criterion_sets", "llm_configs", "experiments"):
        assert project.get(path).get_json()["count"] == 1, path
    assert project.get(f"criteria?criterion_set_id={ids['set']}").get_json()["count"] == 1


def test_a_foreign_llm_config_cannot_be_attached_to_a_response(
    project: ProjectHandle, other_project: ProjectHandle
) -> None:
    theirs = _build(other_project)
    mine = _build(project)
    item = {
        "template_variables_id": mine["entry"],
        "experiment_id": mine["experiment"],
        "llm_config_id": theirs["config"],
        "messages": [{"role": "assistant", "content": "hi"}],
    }
    res = project.post("responses/batches", json={"prompt_response_ins": [item]})
    assert res.status_code == 404 and "prompt_response_ins[0].llm_config_id" in res.get_json()["detail"]
    res = project.post("responses", json={**item, "epoch": 2})
    assert res.status_code == 404 and "body.llm_config_id" in res.get_json()["detail"]
    assert project.get(f"responses?experiment_id={mine['experiment']}").get_json()["count"] == 1


def test_lists_and_name_lookups_show_only_own_rows(project: ProjectHandle, other_project: ProjectHandle) -> None:
    ids = _build(project)
    for path, params in (
        ("prompt_templates", {"name": "T"}),
        ("collections", {"name": "C"}),
        ("criterion_sets", {"name": "S"}),
        ("llm_configs", {"name": "L"}),
        ("experiments", {"experiment_name": "E"}),
        ("responses", {}),
        ("responses", {"experiment_id": ids["experiment"]}),
    ):
        page = other_project.get(path, query_string=params).get_json()
        assert page == {"items": [], "count": 0}, path


def test_project_urls_of_other_projects_are_404(project: ProjectHandle, other_project: ProjectHandle) -> None:
    res = project.client.get(f"/api/v0/projects/{other_project.id}/collections", headers=project.headers)
    assert res.status_code == 404
    listed = project.client.get("/api/v0/projects", headers=project.headers).get_json()
    assert [p["id"] for p in listed["items"]] == [project.id]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}])
def test_bad_credentials_are_401(project: ProjectHandle, headers: dict[str, str]) -> None:
    res = project.client.get(project.url("collections"), headers=headers)
    assert res.status_code == 401
    assert res.get_json()["detail"]


def test_no_response_contains_the_provider_key(project: ProjectHandle) -> None:
    ids = _build(project)
    bodies = [
        project.get(p).get_data(as_text=True)
        for p in (
            "llm_configs",
            f"llm_configs/{ids['config']}",
            f"experiments/{ids['experiment']}",
            "experiments",
            f"responses?experiment_id={ids['experiment']}",
            f"responses/{ids['response']}",
        )
    ]
    bodies.append(json.dumps(project.get("llm_configs", query_string={"name": "L"}).get_json()))
    for body in bodies:
        assert PROVIDER_KEY not in body and "provider-key" not in body
