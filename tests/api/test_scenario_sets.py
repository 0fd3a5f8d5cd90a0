"""Scenario sets: fields that every scenario carries, scenarios validated against them, isolation, pages."""

from __future__ import annotations

from typing import Any

from elluminate.schemas import Scenario, ScenarioField, ScenarioSet

from tests.conftest import ProjectHandle


def _set(project: ProjectHandle, name: str = "Support", fields: list[str] | None = None) -> dict[str, Any]:
    res = project.post("scenario-sets", json={"name": name, "description": "d", "fields": fields or ["tone"]})
    assert res.status_code == 201, res.get_data(as_text=True)
    return res.get_json()


def _scenario(goal: str = "Cancel", **values: str) -> dict[str, Any]:
    return {"goal": goal, "expected_conversation_outcome": "Confirmed", "field_values": values}


def test_a_set_round_trips_through_the_sdk_models(project: ProjectHandle) -> None:
    body = _set(project, fields=["tone", "plan"])
    parsed = ScenarioSet.model_validate(body)
    assert (parsed.name, parsed.description, parsed.scenarios_count) == ("Support", "d", 0)
    assert [(f.name, f.field_type, f.default_value) for f in parsed.fields] == [
        ("tone", "text", ""),
        ("plan", "text", ""),
    ]
    assert ScenarioSet.model_validate(project.get(f"scenario-sets/{body['id']}").get_json()) == parsed


def test_a_name_used_by_a_set_or_a_collection_is_a_400_naming_the_field(project: ProjectHandle) -> None:
    _set(project)
    project.post("collections", json={"name": "Cases"})
    for name in ("Support", "Cases"):
        res = project.post("scenario-sets", json={"name": name})
        assert res.status_code == 400 and res.get_json()["detail"].startswith("body.name:")
    assert project.get("scenario-sets").get_json()["count"] == 1


def test_a_set_without_a_name_gets_one(project: ProjectHandle) -> None:
    res = project.post("scenario-sets", json={"description": ""})
    assert res.status_code == 201 and res.get_json()["name"].startswith("Scenario set ")


def test_bad_field_names_are_refused_and_nothing_is_written(project: ProjectHandle) -> None:
    for fields, where in (
        (["ok", "1bad"], "body.fields[1]"),
        (["goal"], "body.fields[0]"),
        (["a", "a"], "body.fields[1]"),
    ):
        res = project.post("scenario-sets", json={"name": "X", "fields": fields})
        assert res.status_code == 422 and res.get_json()["detail"].startswith(where), res.get_json()
    assert project.get("scenario-sets").get_json()["count"] == 0


def test_scenarios_take_defaults_and_refuse_undeclared_fields(project: ProjectHandle) -> None:
    sid = _set(project)["id"]
    field = project.post(f"scenario-sets/{sid}/fields", json={"name": "plan", "default_value": "basic"}).get_json()
    assert ScenarioField.model_validate(field).default_value == "basic"
    created = project.post(f"scenario-sets/{sid}/scenarios", json=_scenario(tone="angry")).get_json()
    assert Scenario.model_validate(created).field_values == {"tone": "angry", "plan": "basic"}
    res = project.post(f"scenario-sets/{sid}/scenarios/batch", json={"scenarios": [_scenario(), _scenario(mood="x")]})
    assert res.status_code == 422 and res.get_json()["detail"].startswith("body.scenarios[1].field_values.mood")
    res = project.post(f"scenario-sets/{sid}/scenarios", json={**_scenario(), "goal": "  "})
    assert res.status_code == 422 and "goal" in res.get_json()["detail"]
    assert project.get(f"scenario-sets/{sid}").get_json()["scenarios_count"] == 1


def test_renaming_and_deleting_a_field_rewrites_the_scenarios(project: ProjectHandle) -> None:
    body = _set(project, fields=["tone", "plan"])
    sid, (tone, plan) = body["id"], body["fields"]
    project.post(f"scenario-sets/{sid}/scenarios", json=_scenario(tone="calm", plan="pro"))
    renamed = project.put(f"scenario-sets/{sid}/fields/{tone['id']}", json={"name": "mood"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "mood"
    assert project.put(f"scenario-sets/{sid}/fields/{plan['id']}", json={"name": "mood"}).status_code == 409
    assert project.delete(f"scenario-sets/{sid}/fields/{plan['id']}").status_code == 204
    scenarios = project.get(f"scenario-sets/{sid}/scenarios").get_json()["items"]
    assert [s["field_values"] for s in scenarios] == [{"mood": "calm"}]


def test_skip_existing_leaves_out_identical_scenarios(project: ProjectHandle) -> None:
    sid = _set(project)["id"]
    project.post(f"scenario-sets/{sid}/scenarios", json=_scenario("A"))
    batch = [_scenario("A"), _scenario("B"), _scenario("B"), _scenario("A", tone="x")]
    res = project.post(f"scenario-sets/{sid}/scenarios/batch", json={"scenarios": batch, "skip_existing": True})
    assert [(s["goal"], s["field_values"]["tone"]) for s in res.get_json()] == [("B", ""), ("A", "x")]
    again = project.post(f"scenario-sets/{sid}/scenarios/batch", json={"scenarios": batch[:1]}).get_json()
    assert len(again) == 1 and project.get(f"scenario-sets/{sid}").get_json()["scenarios_count"] == 4


def test_scenarios_paginate_with_a_constant_page_size(project: ProjectHandle) -> None:
    sid = _set(project)["id"]
    project.post(f"scenario-sets/{sid}/scenarios/batch", json={"scenarios": [_scenario(f"g{i}") for i in range(12)]})
    pages = [project.get(f"scenario-sets/{sid}/scenarios", query_string={"page": p}).get_json() for p in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [5, 5, 2] and {p["count"] for p in pages} == {12}
    assert [s["goal"] for p in pages for s in p["items"]] == [f"g{i}" for i in range(12)]


def test_name_search_is_a_literal_substring(project: ProjectHandle) -> None:
    for name in ("Support 100%", "Support 1000", "Sales"):
        _set(project, name)
    found = project.get("scenario-sets", query_string={"name_search": "100%"}).get_json()
    assert [s["name"] for s in found["items"]] == ["Support 100%"]


def test_another_projects_set_scenario_and_field_are_404(project: ProjectHandle, other_project: ProjectHandle) -> None:
    body = _set(project)
    sid, fid = body["id"], body["fields"][0]["id"]
    scenario = project.post(f"scenario-sets/{sid}/scenarios", json=_scenario()).get_json()
    for method, path in (
        ("GET", f"scenario-sets/{sid}"),
        ("DELETE", f"scenario-sets/{sid}"),
        ("GET", f"scenario-sets/{sid}/scenarios/{scenario['id']}"),
        ("DELETE", f"scenario-sets/{sid}/fields/{fid}"),
    ):
        assert other_project.call(method, path).status_code == 404
    assert other_project.get("scenario-sets").get_json() == {"items": [], "count": 0}
    other = _set(other_project, "Theirs")
    assert project.get(f"scenario-sets/{other['id']}/scenarios/{scenario['id']}").status_code == 404
    assert other_project.get(f"scenario-sets/{other['id']}/scenarios/{scenario['id']}").status_code == 404
    assert project.get(f"scenario-sets/{sid}/scenarios/{scenario['id']}").status_code == 200


def test_a_set_is_renamed_and_described_but_never_onto_a_taken_name(project: ProjectHandle) -> None:
    sid = _set(project)["id"]
    _set(project, "Taken")
    res = project.put(f"scenario-sets/{sid}", json={"name": "Renamed", "description": "new"})
    assert res.status_code == 200 and (res.get_json()["name"], res.get_json()["description"]) == ("Renamed", "new")
    clash = project.put(f"scenario-sets/{sid}", json={"name": "Taken"})
    assert clash.status_code == 400 and clash.get_json()["detail"].startswith("body.name")
    assert project.get(f"scenario-sets/{sid}").get_json()["name"] == "Renamed"
