"""Agentic experiments: the frozen definition, matching by id or name, and what an upload refuses."""

from __future__ import annotations

from typing import Any

from elluminate.schemas.agent_results import AgentResultsDefinition, AgentResultsUploadResponse

from tests.conftest import ProjectHandle


def _agentic(project: ProjectHandle, rows: list[dict[str, Any]] | None = None) -> tuple[int, list[int]]:
    rows = rows or [{"task_name": "a"}, {"task_name": "b"}]
    collection = project.post("collections", json={"name": "Tasks", "variables": rows}).get_json()
    criteria = [{"criterion_str": "Done?"}, {"criterion_str": "Safe?"}]
    criterion_set = project.post("criterion_sets", json={"name": "Checks", "criteria": criteria}).get_json()
    body = {"name": "Agents", "collection_id": collection["id"], "criterion_set_id": criterion_set["id"]}
    res = project.post("experiments", json={**body, "evaluation_mode": "AGENTIC"})
    assert res.status_code == 201, res.get_json()
    return res.get_json()["id"], [c["id"] for c in criterion_set["criteria"]]


def _trial(name: str, **extra: Any) -> dict[str, Any]:
    return {"task_name": name, "messages": [{"role": "assistant", "content": "ok"}], **extra}


def test_the_definition_is_frozen_at_creation(project: ProjectHandle) -> None:
    experiment_id, criteria = _agentic(project, [{"task_name": n} for n in "abc"])
    collection_id = project.get(f"experiments/{experiment_id}").get_json()["collection"]["id"]
    entries = project.get(f"collections/{collection_id}/entries").get_json()["items"]
    project.put(f"collections/{collection_id}/entries/{entries[0]['id']}", json={"input_values": {"task_name": "a2"}})
    project.delete(f"collections/{collection_id}/entries/{entries[1]['id']}")
    project.post(f"collections/{collection_id}/entries", json={"input_values": {"task_name": "d"}})
    body = project.get(f"experiments/{experiment_id}/agent-results/definition").get_json()
    definition = AgentResultsDefinition.model_validate(body)
    assert [(t.task_name, t.row_exists, t.current_task_name) for t in definition.tasks] == [
        ("a", True, "a2"),
        ("b", False, None),
        ("c", True, None),
    ]
    assert [c.criterion_id for c in definition.tasks[0].criteria] == criteria
    preview = project.post(
        f"experiments/{experiment_id}/agent-results/preview",
        json={"results": [{"task_name": "a2"}, {"task_name": "b"}, {"task_name": "d"}, {}]},
    ).get_json()
    assert [r["reason"] is None for r in preview["results"]] == [True, False, False, False]
    assert "deleted" in preview["results"][1]["reason"] and "task_id or task_name" in preview["results"][3]["reason"]


def test_an_upload_reports_what_it_did_not_store(project: ProjectHandle) -> None:
    experiment_id, criteria = _agentic(project)
    ratings = [{"label": "Done", "rating": "YES"}, {"criterion_id": criteria[1], "rating": "NO", "reasoning": "r"}]
    results = [_trial("a", criterion_ratings=ratings), _trial("a"), {"task_name": "b", "messages": []}]
    res = project.post(f"experiments/{experiment_id}/agent-results", json={"results": results, "evaluate": False})
    outcome = AgentResultsUploadResponse.model_validate(res.get_json())
    assert (outcome.created_responses, outcome.created_ratings, outcome.pending_evaluations) == (1, 1, 0)
    assert [e.split(":")[0] for e in outcome.errors] == ["results[0].criterion_ratings[0]", "results[1]", "results[2]"]
    listed = project.get("responses", query_string={"experiment_id": experiment_id}).get_json()["items"]
    assert [[r["rating"] for r in response["ratings"]] for response in listed] == [["NO"]]


def test_an_upload_naming_no_task_is_a_400_with_the_accepted_tasks(project: ProjectHandle) -> None:
    experiment_id, _ = _agentic(project)
    res = project.post(f"experiments/{experiment_id}/agent-results", json={"results": [_trial("zz")]})
    body = res.get_json()
    assert res.status_code == 400 and body["kind"] == "unmatched_tasks" and body["accepted_tasks_total"] == 2
    assert [t["task_name"] for t in body["accepted_tasks"]] == ["a", "b"] and "zz" in body["results"][0]
    assert project.get("responses", query_string={"experiment_id": experiment_id}).get_json()["count"] == 0


def test_agentic_needs_a_named_column_and_standard_experiments_have_no_definition(
    project: ProjectHandle, other_project: ProjectHandle
) -> None:
    experiment_id, _ = _agentic(project)
    assert other_project.get(f"experiments/{experiment_id}/agent-results/definition").status_code == 404
    empty = project.post("collections", json={"name": "Empty"}).get_json()
    criterion_set = project.get("criterion_sets").get_json()["items"][0]
    body = {"name": "E", "collection_id": empty["id"], "criterion_set_id": criterion_set["id"]}
    res = project.post("experiments", json={**body, "evaluation_mode": "AGENTIC"})
    assert res.status_code == 422 and res.get_json()["detail"].startswith("body.collection_id")
    template = project.post("prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "x"}]})
    standard = project.post("experiments", json={**body, "prompt_template_id": template.get_json()["id"]})
    res = project.get(f"experiments/{standard.get_json()['id']}/agent-results/definition")
    assert res.status_code == 422 and "not an AGENTIC experiment" in res.get_json()["detail"]


def test_persona_experiments_are_refused_naming_the_field(project: ProjectHandle) -> None:
    scenario_set = project.post("scenario-sets", json={"name": "Calls"}).get_json()
    criterion_set = project.post("criterion_sets", json={"name": "C", "criteria": [{"criterion_str": "x"}]}).get_json()
    base = {"name": "P", "criterion_set_id": criterion_set["id"], "evaluation_mode": "STANDARD"}
    for extra, field in (
        ({"scenario_set_id": scenario_set["id"]}, "body.scenario_set_id"),
        ({"evaluation_mode": "MULTI_TURN"}, "body.evaluation_mode"),
        ({}, "body.collection_id"),
    ):
        res = project.post("experiments", json={**base, **extra})
        assert res.status_code == 422 and res.get_json()["detail"].startswith(field), res.get_json()
    assert project.get("experiments").get_json()["count"] == 0


def test_a_rating_for_a_criterion_deleted_since_is_reported(project: ProjectHandle) -> None:
    experiment_id, criteria = _agentic(project)
    assert project.delete(f"criteria/{criteria[0]}").status_code in (200, 204)
    ratings = [{"criterion_id": criteria[0], "rating": "YES"}]
    results = [_trial("a", criterion_ratings=ratings)]
    res = project.post(f"experiments/{experiment_id}/agent-results", json={"results": results, "evaluate": False})
    assert res.status_code == 200 and res.get_json()["errors"][0].startswith("results[0].criterion_ratings[0]")
    definition = project.get(f"experiments/{experiment_id}/agent-results/definition").get_json()
    assert [c["criterion_id"] for c in definition["tasks"][0]["criteria"]] == criteria[1:]
