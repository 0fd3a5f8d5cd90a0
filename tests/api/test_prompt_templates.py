"""Prompt templates: versioning, the 409 that carries the id, exact name lookups."""

from __future__ import annotations

from tests.conftest import ProjectHandle


def _create(project: ProjectHandle, name: str = "Essay", content: str = "Explain {{topic}} to {{ audience }}."):
    return project.post("prompt_templates", json={"name": name, "messages": [{"role": "user", "content": content}]})


def test_create_computes_placeholders_and_version(project: ProjectHandle) -> None:
    res = _create(project)
    assert res.status_code == 201
    body = res.get_json()
    assert body["version"] == 1
    assert body["placeholders"] == ["audience", "topic"]
    assert body["created_at"].endswith("+00:00")


def test_new_content_is_next_version_and_identical_is_conflict(project: ProjectHandle) -> None:
    first = _create(project).get_json()
    second = _create(project, content="Explain {{topic}} briefly.").get_json()
    assert second["version"] == 2
    dup = _create(project)
    assert dup.status_code == 409
    assert dup.get_json()["prompt_template_id"] == first["id"]
    assert "already exists" in dup.get_json()["detail"]


def test_name_lookup_returns_latest_first_and_tolerates_version_none(project: ProjectHandle) -> None:
    _create(project)
    latest = _create(project, content="v2 {{topic}}").get_json()
    _create(project, name="Essay 2")
    for params in ({"name": "Essay"}, {"name": "Essay", "version": "None"}):
        page = project.get("prompt_templates", query_string=params).get_json()
        assert page["count"] == 2
        assert page["items"][0]["id"] == latest["id"]
    v1 = project.get("prompt_templates", query_string={"name": "Essay", "version": "1"}).get_json()
    assert [t["version"] for t in v1["items"]] == [1]


def test_pagination_has_constant_page_size(project: ProjectHandle) -> None:
    for i in range(7):
        _create(project, name=f"T{i}")
    first = project.get("prompt_templates", query_string={"page": 1, "sort_options": "{}"}).get_json()
    second = project.get("prompt_templates", query_string={"page": 2, "sort_options": "{}"}).get_json()
    assert first["count"] == second["count"] == 7
    assert len(first["items"]) == 5 and len(second["items"]) == 2


def test_bad_input_names_the_field(project: ProjectHandle) -> None:
    res = project.post("prompt_templates", json={"name": "x", "messages": [{"role": "robot", "content": "hi"}]})
    assert res.status_code == 422
    assert "messages" in res.get_json()["detail"]
    res = project.post("prompt_templates", data="{not json", content_type="application/json")
    assert res.status_code == 400
    assert project.get("prompt_templates/999").status_code == 404
    assert project.get("prompt_templates", query_string={"version": "abc"}).status_code == 422
    for parts, where in (
        (["x", 1], "messages[0].content[0]"),
        ([{"type": "text", "text": 5}], "messages[0].content[0].text"),
    ):
        res = project.post("prompt_templates", json={"name": "x", "messages": [{"role": "user", "content": parts}]})
        assert res.status_code == 422 and where in res.get_json()["detail"]
    assert project.get("prompt_templates").get_json()["count"] == 0


def test_delete(project: ProjectHandle) -> None:
    template = _create(project).get_json()
    assert project.delete(f"prompt_templates/{template['id']}").status_code in (200, 204)
    assert project.get(f"prompt_templates/{template['id']}").status_code == 404
