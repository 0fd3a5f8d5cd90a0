"""Evaluator criteria through the API: created beside LLM-judged ones, refused at creation when the
evaluator is unknown or its parameters are bad (a 422 naming the field), kept across edits."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ProjectHandle

# One valid criterion per built-in evaluator, as a client sends it.
VALID = [
    {"criterion_str": "Says Paris", "evaluator": "exact_match", "params": {"value": "Paris"}},
    {"criterion_str": "Names the answer", "evaluator": "contains", "params": {"column": "answer"}},
    {"criterion_str": "Is a number", "evaluator": "regex", "params": {"pattern": r"^\d+$"}},
    {"criterion_str": "Is JSON", "evaluator": "valid_json"},
    {"criterion_str": "Has a name", "evaluator": "json_schema", "params": {"schema": {"required": ["name"]}}},
    {"criterion_str": "Is short", "evaluator": "length", "params": {"max": 50, "unit": "words"}},
    {"criterion_str": "Gets the total", "evaluator": "numeric", "params": {"column": "total", "tolerance": 0.5}},
    {"criterion_str": "Close to the reference", "evaluator": "rouge_l", "params": {"column": "reference"}},
]

# One bad criterion per built-in evaluator, and the field the 422 must name.
INVALID = [
    ("exact_match", {"value": "a", "column": "b"}, "params: give exactly one of value and column"),
    ("contains", {"value": "a", "case_sensitive": "sometimes"}, "params.case_sensitive:"),
    ("regex", {"pattern": "(unclosed"}, "params.pattern: not a valid regular expression"),
    ("valid_json", {"strict": True}, "params.strict: Extra inputs are not permitted"),
    ("json_schema", {"schema": {"type": 12}}, "params.schema: not a valid JSON Schema"),
    ("length", {"min": 10, "max": 5}, "params: min must not be greater than max"),
    ("numeric", {"value": 1, "tolerance": -1}, "params.tolerance:"),
    ("rouge_l", {"column": "reference", "threshold": 2}, "params.threshold:"),
]


def _create_set(project: ProjectHandle, criteria: list[dict[str, Any]], name: str = "Checks") -> Any:
    return project.post("criterion_sets", json={"name": name, "criteria": criteria})


def _add(project: ProjectHandle, set_id: int, criteria: list[dict[str, Any]]) -> Any:
    body = {"criterion_set_id": set_id, "prompt_template_id": None, "criteria": criteria, "delete_existing": False}
    return project.post("criteria", json=body)


def test_a_set_mixes_llm_judged_and_evaluator_criteria(project: ProjectHandle) -> None:
    res = _create_set(project, [{"criterion_str": "Is it polite?", "label": None}, *VALID])
    assert res.status_code == 201, res.get_json()
    criteria = res.get_json()["criteria"]
    assert criteria[0]["evaluator"] is None and criteria[0]["params"] is None
    assert [c["evaluator"] for c in criteria[1:]] == [v["evaluator"] for v in VALID]
    by_name = {c["evaluator"]: c["params"] for c in criteria[1:]}
    assert by_name["regex"] == {"pattern": r"^\d+$", "case_sensitive": True}  # stored with its defaults
    assert by_name["valid_json"] == {}
    assert by_name["json_schema"] == {"schema": {"required": ["name"]}}
    fetched = project.get(f"criteria/{criteria[3]['id']}").get_json()
    assert fetched["evaluator"] == "regex" and fetched["params"]["pattern"] == r"^\d+$"


@pytest.mark.parametrize(("evaluator", "params", "problem"), INVALID)
def test_bad_params_are_422_at_creation_naming_the_field(
    project: ProjectHandle, evaluator: str, params: dict[str, Any], problem: str
) -> None:
    res = _create_set(project, [{"criterion_str": "Check", "evaluator": evaluator, "params": params}])
    assert res.status_code == 422
    assert f"body.criteria[0].{problem}" in res.get_json()["detail"]
    assert project.get("criterion_sets").get_json()["count"] == 0  # nothing was written


def test_the_422_names_the_bad_item_and_nothing_is_added(project: ProjectHandle) -> None:
    set_id = _create_set(project, [{"criterion_str": "Kept?"}]).get_json()["id"]
    bad = {"criterion_str": "Digits", "evaluator": "regex", "params": {"pattern": "[", "case_sensitive": True}}
    res = _add(project, set_id, [{"criterion_str": "New?"}, bad])
    assert res.status_code == 422
    assert res.get_json()["detail"].startswith("body.criteria[1].params.pattern: not a valid regular expression")
    criteria = project.get(f"criterion_sets/{set_id}").get_json()["criteria"]
    assert [c["criterion_str"] for c in criteria] == ["Kept?"]


def test_unknown_evaluator_and_params_without_evaluator_are_422(project: ProjectHandle) -> None:
    res = _create_set(project, [{"criterion_str": "Check", "evaluator": "telepathy", "params": {}}])
    assert res.status_code == 422
    assert res.get_json()["detail"].startswith("body.criteria[0].evaluator: unknown evaluator 'telepathy'; installed:")
    res = _create_set(project, [{"criterion_str": "Check", "params": {"pattern": "x"}}])
    assert res.status_code == 422
    assert res.get_json()["detail"] == "body.criteria[0].params: only a criterion with an evaluator takes params"


def test_reuse_in_a_set_considers_the_evaluator_and_its_params(project: ProjectHandle) -> None:
    regex = {"criterion_str": "Check", "evaluator": "regex", "params": {"pattern": "a"}}
    created = _create_set(project, [{"criterion_str": "Check"}, regex]).get_json()
    first_llm, first_regex = (c["id"] for c in created["criteria"])
    same_regex = {**regex, "params": {"case_sensitive": True, "pattern": "a"}}  # equal once defaults are in
    other_regex = {**regex, "params": {"pattern": "b"}}
    added = _add(project, created["id"], [{"criterion_str": "Check"}, same_regex, other_regex]).get_json()
    assert [c["id"] for c in added[:2]] == [first_llm, first_regex]
    assert added[2]["id"] not in (first_llm, first_regex) and added[2]["params"]["pattern"] == "b"
    assert len(project.get(f"criterion_sets/{created['id']}").get_json()["criteria"]) == 3


def test_editing_an_evaluator_criterion_keeps_its_evaluator(project: ProjectHandle) -> None:
    created = _create_set(project, [VALID[2]]).get_json()["criteria"][0]
    edited = project.put(f"criteria/{created['id']}", json={"criterion_str": "Only digits"}).get_json()
    assert edited["id"] != created["id"] and edited["criterion_str"] == "Only digits"
    assert (edited["evaluator"], edited["params"]) == ("regex", created["params"])


def test_openapi_documents_the_extension_fields(project: ProjectHandle) -> None:
    schemas = project.client.get("/api/v0/openapi.json").get_json()["components"]["schemas"]
    criterion_in = schemas["CriterionIn"]["properties"]
    assert "assay.evaluators" in criterion_in["evaluator"]["description"]
    assert "422" in criterion_in["params"]["description"]
    assert {"evaluator", "params"} <= set(schemas["CriterionOut"]["properties"])
