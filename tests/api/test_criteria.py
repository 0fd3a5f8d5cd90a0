"""Criterion sets and criteria: the modes of POST criteria, versions on edit, template links, isolation."""

from __future__ import annotations

from typing import Any

from flask import Flask

from fakellm.testing import FakeLLM
from models.orm import Collection, Entry, Experiment, Prompt, PromptResponse, Rating
from tests.conftest import ProjectHandle


def _template(project: ProjectHandle, name: str = "Essay", content: str = "Write about {{topic}}.") -> dict:
    res = project.post("prompt_templates", json={"name": name, "messages": [{"role": "user", "content": content}]})
    assert res.status_code == 201
    return res.get_json()


def _set(project: ProjectHandle, name: str = "Quality", criteria: list[str] | None = None) -> dict:
    body = {
        "name": name,
        "criteria": [{"criterion_str": c, "label": None} for c in criteria] if criteria else None,
    }
    res = project.post("criterion_sets", json=body)
    assert res.status_code == 201
    return res.get_json()


def _post_criteria(project: ProjectHandle, criteria: list[str] | None, **target: Any) -> Any:
    """The body the SDK sends: all five keys, exactly one target."""
    body = {
        "prompt_template_id": None,
        "criterion_set_id": None,
        "template_variables_id": None,
        "criteria": None if criteria is None else [{"criterion_str": c, "label": None} for c in criteria],
        "delete_existing": False,
        **target,
    }
    return project.post("criteria", json=body)


def _texts(items: list[dict]) -> list[str]:
    return [c["criterion_str"] for c in items]


def _use_in_experiment(app: Flask, project_id: int, name: str, **refs: int) -> None:
    with app.extensions["assay_db"].session() as session:
        collection = Collection(project_id=project_id, name=f"{name} data")
        session.add(collection)
        session.flush()
        session.add(Experiment(project_id=project_id, name=name, collection_id=collection.id, **refs))


def _rate(app: Flask, project_id: int, criterion_id: int) -> None:
    """Store one verdict on the criterion, as a finished rating job would."""
    with app.extensions["assay_db"].session() as session:
        collection = Collection(project_id=project_id, name=f"rated {criterion_id}")
        session.add(collection)
        session.flush()
        entry = Entry(collection_id=collection.id, input_values={"topic": "owls"}, identity_hash="h")
        session.add(entry)
        session.flush()
        prompt = Prompt(entry_id=entry.id, messages=[])
        session.add(prompt)
        session.flush()
        response = PromptResponse(project_id=project_id, prompt_id=prompt.id, entry_id=entry.id)
        session.add(response)
        session.flush()
        session.add(Rating(response_id=response.id, criterion_id=criterion_id, rating="YES"))


def test_create_set_with_criteria_and_look_it_up_by_exact_name(project: ProjectHandle) -> None:
    created = _set(project, "Quality", ["Is it short?", "Is it kind?", "Is it short?"])
    assert _texts(created["criteria"]) == ["Is it short?", "Is it kind?"]
    assert created["linked_prompt_templates"] == [] and created["prompt_templates"] == []
    _set(project, "Quality v2")
    page = project.get("criterion_sets", query_string={"name": "Quality"}).get_json()
    assert page["count"] == 1 and page["items"][0]["id"] == created["id"]
    assert project.get("criterion_sets", query_string={"name": "Qual"}).get_json() == {
        "items": [],
        "count": 0,
    }
    assert project.get(f"criterion_sets/{created['id']}").get_json()["criteria"] == created["criteria"]


def test_duplicate_set_name_is_409(project: ProjectHandle) -> None:
    _set(project, "Quality")
    res = project.post("criterion_sets", json={"name": "Quality", "criteria": None})
    assert res.status_code == 409
    assert "Quality" in res.get_json()["detail"]


def test_list_sets_pages_in_creation_order(project: ProjectHandle) -> None:
    ids = [_set(project, f"S{i}")["id"] for i in range(7)]
    first = project.get("criterion_sets", query_string={"page": 1}).get_json()
    second = project.get("criterion_sets", query_string={"page": 2}).get_json()
    assert first["count"] == second["count"] == 7
    assert [s["id"] for s in first["items"] + second["items"]] == ids


def test_add_to_set_reuses_identical_strings_in_input_order(project: ProjectHandle) -> None:
    cs = _set(project, criteria=["Is it short?"])
    existing_id = cs["criteria"][0]["id"]
    res = _post_criteria(project, ["Is it kind?", "Is it short?", "Is it kind?"], criterion_set_id=cs["id"])
    assert res.status_code in (200, 201)
    added = res.get_json()
    assert isinstance(added, list)
    assert _texts(added) == ["Is it kind?", "Is it short?", "Is it kind?"]
    assert added[1]["id"] == existing_id and added[0]["id"] == added[2]["id"]
    assert added[0]["created_at"].endswith("+00:00")
    after = project.get(f"criterion_sets/{cs['id']}").get_json()
    assert _texts(after["criteria"]) == ["Is it short?", "Is it kind?"]


def test_clear_then_replace_a_set(project: ProjectHandle) -> None:
    cs = _set(project, criteria=["A?", "B?"])
    res = _post_criteria(project, [], criterion_set_id=cs["id"], delete_existing=True)
    assert res.status_code in (200, 201) and res.get_json() == []
    assert project.get(f"criterion_sets/{cs['id']}").get_json()["criteria"] == []
    _post_criteria(project, ["C?"], criterion_set_id=cs["id"])
    replaced = _post_criteria(project, ["D?", "E?"], criterion_set_id=cs["id"], delete_existing=True).get_json()
    assert _texts(replaced) == ["D?", "E?"]
    listed = project.get("criteria", query_string={"criterion_set_id": cs["id"]}).get_json()
    assert _texts(listed["items"]) == ["D?", "E?"] and listed["count"] == 2


def test_clearing_keeps_rated_criteria_for_their_ratings(app: Flask, project: ProjectHandle) -> None:
    cs = _set(project, criteria=["Rated?", "Unrated?"])
    rated, unrated = (c["id"] for c in cs["criteria"])
    _rate(app, project.id, rated)
    _post_criteria(project, [], criterion_set_id=cs["id"], delete_existing=True)
    assert project.get(f"criterion_sets/{cs['id']}").get_json()["criteria"] == []
    assert project.get(f"criteria/{rated}").get_json()["criterion_str"] == "Rated?"
    assert project.get(f"criteria/{unrated}").status_code == 404


def test_add_to_template_creates_and_links_a_set_named_like_the_template(project: ProjectHandle) -> None:
    v1 = _template(project, "Essay", "v1 {{topic}}")
    v2 = _template(project, "Essay", "v2 {{topic}}")
    other = _template(project, "Poem")
    res = _post_criteria(project, ["Is it on topic?"], prompt_template_id=v2["id"])
    assert res.status_code in (200, 201)
    assert _texts(res.get_json()) == ["Is it on topic?"]
    set_id = project.get(f"prompt_templates/{v2['id']}").get_json()["criterion_set_id"]
    assert set_id is not None
    cs = project.get(f"criterion_sets/{set_id}").get_json()
    assert cs["name"] == "Essay"
    assert {t["id"] for t in cs["linked_prompt_templates"]} == {v1["id"], v2["id"]}
    assert project.get(f"prompt_templates/{v1['id']}").get_json()["criterion_set_id"] == set_id
    assert project.get(f"prompt_templates/{other['id']}").get_json()["criterion_set_id"] is None
    v3 = _template(project, "Essay", "v3 {{topic}}")
    assert v3["criterion_set_id"] == set_id
    again = _post_criteria(project, ["Is it on topic?", "Is it clear?"], prompt_template_id=v3["id"]).get_json()
    assert again[0]["id"] == res.get_json()[0]["id"]
    listed = project.get("criteria", query_string={"prompt_template_id": v1["id"], "page": 1}).get_json()
    assert _texts(listed["items"]) == ["Is it on topic?", "Is it clear?"]


def test_template_set_name_taken_by_an_unrelated_set_gets_a_variant(project: ProjectHandle) -> None:
    unrelated = _set(project, "Essay", ["Unrelated?"])
    template = _template(project, "Essay")
    _post_criteria(project, ["On topic?"], prompt_template_id=template["id"])
    set_id = project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"]
    assert set_id != unrelated["id"]
    assert project.get(f"criterion_sets/{set_id}").get_json()["name"] == "Essay (2)"
    assert _texts(project.get(f"criterion_sets/{unrelated['id']}").get_json()["criteria"]) == ["Unrelated?"]


def test_generate_is_409_when_the_template_already_has_criteria(project: ProjectHandle) -> None:
    template = _template(project)
    _post_criteria(project, ["On topic?"], prompt_template_id=template["id"])
    res = _post_criteria(project, None, prompt_template_id=template["id"])
    assert res.status_code == 409
    assert res.get_json()["detail"] == f"Prompt template {template['id']} already has criteria"
    # What get_or_generate_criteria does next:
    listed = project.get("criteria", query_string={"prompt_template_id": template["id"], "page": 1}).get_json()
    assert _texts(listed["items"]) == ["On topic?"]


def test_generate_creates_a_set_named_like_the_template_and_links_it(project: ProjectHandle) -> None:
    template = _template(project)
    res = _post_criteria(project, None, prompt_template_id=template["id"])
    assert res.status_code == 201
    generated = _texts(res.get_json())
    assert 1 <= len(generated) <= 7 and all(generated)
    set_id = project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"]
    assert project.get(f"criterion_sets/{set_id}").get_json()["name"] == template["name"]
    again = _post_criteria(project, None, prompt_template_id=template["id"], delete_existing=True)
    assert again.status_code == 201
    listed = project.get("criteria", query_string={"prompt_template_id": template["id"]}).get_json()
    assert _texts(listed["items"]) == _texts(again.get_json())


def test_generate_with_a_failing_model_is_a_clear_error_and_writes_nothing(
    project: ProjectHandle, fake_llm: FakeLLM
) -> None:
    fake_llm.configure({"faults": {"401": 1.0}})
    template = _template(project)
    res = _post_criteria(project, None, prompt_template_id=template["id"])
    assert res.status_code == 502 and "401" in res.get_json()["detail"]
    assert project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"] is None


def test_post_criteria_needs_exactly_one_target(project: ProjectHandle) -> None:
    template = _template(project)
    cs = _set(project)
    both = _post_criteria(project, ["X?"], prompt_template_id=template["id"], criterion_set_id=cs["id"])
    neither = _post_criteria(project, ["X?"])
    for res in (both, neither):
        assert res.status_code == 422
        assert "prompt_template_id" in res.get_json()["detail"]
        assert "criterion_set_id" in res.get_json()["detail"]
    generate_on_set = _post_criteria(project, None, criterion_set_id=cs["id"])
    assert generate_on_set.status_code == 422 and "criteria" in generate_on_set.get_json()["detail"]
    empty = _post_criteria(project, [""], criterion_set_id=cs["id"])
    assert empty.status_code == 422 and "criterion_str" in empty.get_json()["detail"]


def test_list_criteria_filters(project: ProjectHandle) -> None:
    template = _template(project)
    assert project.get("criteria", query_string={"prompt_template_id": template["id"]}).get_json() == {
        "items": [],
        "count": 0,
    }
    res = project.get("criteria")
    assert res.status_code == 422 and "prompt_template_id" in res.get_json()["detail"]
    assert project.get("criteria", query_string={"prompt_template_id": 999}).status_code == 404
    assert project.get("criteria", query_string={"criterion_set_id": 999}).status_code == 404
    cs = _set(project, criteria=[f"Q{i}?" for i in range(7)])
    first = project.get("criteria", query_string={"criterion_set_id": cs["id"], "page": 1}).get_json()
    second = project.get("criteria", query_string={"criterion_set_id": cs["id"], "page": 2}).get_json()
    assert first["count"] == 7 and len(first["items"]) == 5
    assert _texts(first["items"] + second["items"]) == [f"Q{i}?" for i in range(7)]


def test_edit_creates_a_new_version_in_place(project: ProjectHandle) -> None:
    cs = _set(project, criteria=["A?", "B?", "C?"])
    old = cs["criteria"][1]
    res = project.put(f"criteria/{old['id']}", json={"criterion_str": "B, clearly?"})
    assert res.status_code == 200
    new = res.get_json()
    assert new["id"] != old["id"] and new["criterion_str"] == "B, clearly?"
    assert _texts(project.get(f"criterion_sets/{cs['id']}").get_json()["criteria"]) == [
        "A?",
        "B, clearly?",
        "C?",
    ]
    assert project.get(f"criteria/{old['id']}").get_json()["criterion_str"] == "B?"
    relabelled = project.put(f"criteria/{new['id']}", json={"label": "clarity"}).get_json()
    assert relabelled["label"] == "clarity" and relabelled["criterion_str"] == "B, clearly?"
    stale = project.put(f"criteria/{old['id']}", json={"criterion_str": "B again?"})
    assert stale.status_code == 409
    unchanged = project.put(f"criteria/{relabelled['id']}", json={"label": "clarity"}).get_json()
    assert unchanged["id"] == relabelled["id"]


def test_delete_criterion(project: ProjectHandle) -> None:
    cs = _set(project, criteria=["A?", "B?"])
    a_id = cs["criteria"][0]["id"]
    assert project.delete(f"criteria/{a_id}").status_code in (200, 204)
    assert project.get(f"criteria/{a_id}").status_code == 404
    assert _texts(project.get(f"criterion_sets/{cs['id']}").get_json()["criteria"]) == ["B?"]
    assert project.delete(f"criteria/{a_id}").status_code == 404


def test_link_and_unlink_show_in_both_keys(project: ProjectHandle) -> None:
    cs = _set(project, criteria=["A?"])
    template = _template(project)
    res = project.put(f"criterion_sets/{cs['id']}/prompt_templates/{template['id']}")
    assert res.status_code == 200
    linked = res.get_json()
    assert [t["id"] for t in linked["linked_prompt_templates"]] == [template["id"]]
    assert [t["id"] for t in linked["prompt_templates"]] == [template["id"]]
    assert project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"] == cs["id"]
    listed = project.get("criteria", query_string={"prompt_template_id": template["id"]}).get_json()
    assert _texts(listed["items"]) == ["A?"]

    other = _set(project, "Other")
    assert project.delete(f"criterion_sets/{other['id']}/prompt_templates/{template['id']}").status_code == 204
    assert project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"] == cs["id"]

    assert project.delete(f"criterion_sets/{cs['id']}/prompt_templates/{template['id']}").status_code == 204
    after = project.get(f"criterion_sets/{cs['id']}").get_json()
    assert after["linked_prompt_templates"] == [] and after["prompt_templates"] == []
    assert project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"] is None


def test_delete_set_unlinks_templates_and_deletes_criteria(project: ProjectHandle) -> None:
    template = _template(project)
    created = _post_criteria(project, ["A?"], prompt_template_id=template["id"]).get_json()
    set_id = project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"]
    assert project.delete(f"criterion_sets/{set_id}").status_code in (200, 204)
    assert project.get(f"criterion_sets/{set_id}").status_code == 404
    assert project.get(f"criteria/{created[0]['id']}").status_code == 404
    assert project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"] is None


def test_delete_set_used_by_an_experiment_is_409_naming_it(app: Flask, project: ProjectHandle) -> None:
    cs = _set(project, criteria=["A?"])
    _use_in_experiment(app, project.id, "Nightly run", criterion_set_id=cs["id"])
    res = project.delete(f"criterion_sets/{cs['id']}")
    assert res.status_code == 409
    assert "Nightly run" in res.get_json()["detail"]
    assert project.get(f"criterion_sets/{cs['id']}").status_code == 200


def test_other_projects_ids_are_404(project: ProjectHandle, other_project: ProjectHandle) -> None:
    cs = _set(project, criteria=["A?"])
    criterion_id = cs["criteria"][0]["id"]
    template = _template(project)
    mine = _set(other_project, "Mine")
    their_template = _template(other_project, "Theirs")

    assert other_project.get(f"criterion_sets/{cs['id']}").status_code == 404
    assert other_project.delete(f"criterion_sets/{cs['id']}").status_code == 404
    assert other_project.get(f"criteria/{criterion_id}").status_code == 404
    assert other_project.put(f"criteria/{criterion_id}", json={"label": "x"}).status_code == 404
    assert other_project.delete(f"criteria/{criterion_id}").status_code == 404
    assert other_project.get("criteria", query_string={"criterion_set_id": cs["id"]}).status_code == 404
    assert other_project.get("criteria", query_string={"prompt_template_id": template["id"]}).status_code == 404
    assert _post_criteria(other_project, ["B?"], criterion_set_id=cs["id"]).status_code == 404
    assert _post_criteria(other_project, ["B?"], prompt_template_id=template["id"]).status_code == 404
    assert _post_criteria(other_project, None, prompt_template_id=template["id"]).status_code == 404
    # Linking someone else's template to my set, or my template to their set.
    assert other_project.put(f"criterion_sets/{mine['id']}/prompt_templates/{template['id']}").status_code == 404
    assert other_project.put(f"criterion_sets/{cs['id']}/prompt_templates/{their_template['id']}").status_code == 404
    assert other_project.delete(f"criterion_sets/{mine['id']}/prompt_templates/{template['id']}").status_code == 404
    assert other_project.get("criterion_sets").get_json() == {"items": [mine], "count": 1}
    assert project.get(f"prompt_templates/{template['id']}").get_json()["criterion_set_id"] is None
    assert _texts(project.get(f"criterion_sets/{cs['id']}").get_json()["criteria"]) == ["A?"]


def test_concurrent_generation_stores_one_set_of_criteria(
    app: Flask, project: ProjectHandle, fake_llm: FakeLLM
) -> None:
    import threading

    fake_llm.configure({"latency_ms": 300})
    template = _template(project)
    statuses: list[int] = []

    def generate() -> None:
        client = app.test_client()
        res = client.post(
            project.url("criteria"),
            json={"prompt_template_id": template["id"], "criteria": None},
            headers=project.headers,
        )
        statuses.append(res.status_code)

    threads = [threading.Thread(target=generate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409, 409, 409]
    assert project.get("criterion_sets").get_json()["count"] == 1
