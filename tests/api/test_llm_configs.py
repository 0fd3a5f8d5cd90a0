"""LLM configs: the SDK's create body, exact name lookups, masked keys, validation, isolation."""

from __future__ import annotations

from typing import Any

from flask import Flask

from models.orm import Collection, Experiment
from tests.conftest import ProjectHandle

KEY = "sk-test-abcdefghijklmnop1234"


def _sdk_body(name: str = "Fast model", **overrides: Any) -> dict[str, Any]:
    """What `create_llm_config` sends: every LLMConfig key except id, nulls included."""
    body: dict[str, Any] = {
        "name": name,
        "description": "",
        "llm_model_name": "gpt-4o-mini",
        "llm_base_url": None,
        "api_key": KEY,
        "api_version": None,
        "max_connections": 10,
        "inference_type": "openai",
        "max_retries": None,
        "timeout": None,
        "system_message": None,
        "max_tokens": None,
        "top_p": None,
        "temperature": None,
        "best_of": None,
        "top_k": None,
        "logprobs": None,
        "top_logprobs": None,
        "reasoning_effort": None,
        "verbosity": None,
        "custom_api_config": None,
        "custom_response_parser": None,
        "input_price_per_mtok": None,
        "output_price_per_mtok": None,
    }
    return {**body, **overrides}


def _create(project: ProjectHandle, name: str = "Fast model", **overrides: Any) -> dict[str, Any]:
    res = project.post("llm_configs", json=_sdk_body(name, **overrides))
    assert res.status_code == 201
    return res.get_json()


def _assert_masked(res: Any) -> None:
    assert KEY not in res.get_data(as_text=True)


def test_create_returns_the_config_with_a_masked_key(project: ProjectHandle) -> None:
    res = project.post("llm_configs", json=_sdk_body(temperature=0.2, max_tokens=300, description=None))
    assert res.status_code == 201
    _assert_masked(res)
    body = res.get_json()
    assert body["name"] == "Fast model" and body["llm_model_name"] == "gpt-4o-mini"
    assert body["temperature"] == 0.2 and body["max_tokens"] == 300
    assert body["description"] == "" and body["inference_type"] == "openai" and body["max_connections"] == 10
    assert body["api_key"] == "...1234"


def test_get_and_list_mask_the_key(project: ProjectHandle) -> None:
    created = _create(project)
    _create(project, "Other", api_key=None)
    one = project.get(f"llm_configs/{created['id']}")
    _assert_masked(one)
    assert one.get_json()["api_key"] == "...1234"
    listed = project.get("llm_configs", query_string={"page": 1})
    _assert_masked(listed)
    assert [c["api_key"] for c in listed.get_json()["items"]] == ["...1234", None]


def test_name_lookup_is_exact_and_duplicates_are_409(project: ProjectHandle) -> None:
    created = _create(project, "Fast model")
    _create(project, "Fast model 2")
    page = project.get("llm_configs", query_string={"name": "Fast model"}).get_json()
    assert page["count"] == 1 and page["items"][0]["id"] == created["id"]
    assert project.get("llm_configs", query_string={"name": "Fast"}).get_json() == {"items": [], "count": 0}
    dup = project.post("llm_configs", json=_sdk_body("Fast model"))
    assert dup.status_code == 409
    assert "Fast model" in dup.get_json()["detail"]


def test_list_pages_in_creation_order(project: ProjectHandle) -> None:
    ids = [_create(project, f"M{i}")["id"] for i in range(7)]
    first = project.get("llm_configs", query_string={"page": 1}).get_json()
    second = project.get("llm_configs", query_string={"page": 2}).get_json()
    assert first["count"] == 7 and len(first["items"]) == 5
    assert [c["id"] for c in first["items"] + second["items"]] == ids


def test_invalid_settings_are_422_naming_the_field(project: ProjectHandle) -> None:
    cases = {
        "temperature": {"temperature": 5},
        "reasoning_effort": {"reasoning_effort": "extreme"},
        "verbosity": {"verbosity": "loud"},
        "inference_type": {"inference_type": "carrier-pigeon"},
        "llm_model_name": {"llm_model_name": ""},
    }
    for field, override in cases.items():
        res = project.post("llm_configs", json=_sdk_body(**override))
        assert res.status_code == 422, field
        assert f"body.{field}" in res.get_json()["detail"]
    missing = project.post("llm_configs", json={"llm_model_name": "gpt-4o-mini"})
    assert missing.status_code == 422 and "body.name" in missing.get_json()["detail"]
    assert project.get("llm_configs", query_string={"name": "Fast model"}).get_json()["count"] == 0


def test_put_replaces_settings_and_keeps_the_key_unless_sent(project: ProjectHandle) -> None:
    created = _create(project)
    body = _sdk_body("Renamed", api_key=None, temperature=1.5, llm_model_name="gpt-4o")
    res = project.put(f"llm_configs/{created['id']}", json=body)
    assert res.status_code == 200
    updated = res.get_json()
    assert updated["name"] == "Renamed" and updated["temperature"] == 1.5 and updated["llm_model_name"] == "gpt-4o"
    assert updated["api_key"] == "...1234"
    replaced = project.put(f"llm_configs/{created['id']}", json=_sdk_body("Renamed", api_key="sk-new-key-000009999"))
    assert replaced.get_json()["api_key"] == "...9999"
    _create(project, "Taken")
    assert project.put(f"llm_configs/{created['id']}", json=_sdk_body("Taken")).status_code == 409


def test_delete(project: ProjectHandle) -> None:
    created = _create(project)
    assert project.delete(f"llm_configs/{created['id']}").status_code in (200, 204)
    assert project.get(f"llm_configs/{created['id']}").status_code == 404
    assert project.delete(f"llm_configs/{created['id']}").status_code == 404


def test_delete_while_an_experiment_uses_it_is_409_naming_it(app: Flask, project: ProjectHandle) -> None:
    created = _create(project)
    cs = project.post("criterion_sets", json={"name": "Quality", "criteria": None}).get_json()
    with app.extensions["assay_db"].session() as session:
        collection = Collection(project_id=project.id, name="Data")
        session.add(collection)
        session.flush()
        session.add(
            Experiment(
                project_id=project.id,
                name="Nightly run",
                collection_id=collection.id,
                criterion_set_id=cs["id"],
                llm_config_id=created["id"],
            )
        )
    res = project.delete(f"llm_configs/{created['id']}")
    assert res.status_code == 409
    assert "Nightly run" in res.get_json()["detail"]
    assert project.get(f"llm_configs/{created['id']}").status_code == 200


def test_other_projects_configs_are_404(project: ProjectHandle, other_project: ProjectHandle) -> None:
    created = _create(project)
    assert other_project.get(f"llm_configs/{created['id']}").status_code == 404
    assert other_project.put(f"llm_configs/{created['id']}", json=_sdk_body("Stolen")).status_code == 404
    assert other_project.delete(f"llm_configs/{created['id']}").status_code == 404
    assert other_project.get("llm_configs", query_string={"name": "Fast model"}).get_json()["count"] == 0
    # Names are unique per project only.
    assert other_project.post("llm_configs", json=_sdk_body("Fast model")).status_code == 201
    assert project.get(f"llm_configs/{created['id']}").get_json()["name"] == "Fast model"
