"""Collections and entries: columns that follow the rows, JSONL batch uploads, skip_existing, scoping."""

from __future__ import annotations

import io
import json
from typing import Any

from elluminate.schemas import TemplateVariables, TemplateVariablesCollection, TemplateVariablesCollectionWithEntries

from models.orm import CriterionSet, Experiment
from tests.conftest import ProjectHandle

SDK_COLUMN_TYPES = {"text", "json", "conversation", "raw_input", "category"}


def _create(project: ProjectHandle, name: str = "Topics", **fields: Any) -> Any:
    return project.post("collections", json={"name": name, **fields})


def _upload(project: ProjectHandle, collection_id: int, content: str | bytes, skip_existing: bool | None = None) -> Any:
    data = content.encode() if isinstance(content, str) else content
    query = {} if skip_existing is None else {"skip_existing": str(skip_existing).lower()}
    return project.post(
        f"collections/{collection_id}/entries/batches",
        data={"file": (io.BytesIO(data), "variables.jsonl", "application/jsonl")},
        query_string=query,
    )


def _jsonl(rows: list[dict[str, Any]]) -> str:
    # What the SDK sends: one object per line, ensure_ascii=False, no trailing newline.
    return "\n".join(json.dumps(row, ensure_ascii=False) for row in rows)


def _columns(body: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(c["name"], c["column_type"], c["column_position"]) for c in body["columns"]]


def test_create_with_columns_as_the_sdk_sends_them(project: ProjectHandle) -> None:
    columns = [
        {"name": "topic", "default_value": "", "column_position": 0},
        {"name": "audience", "column_type": "category", "categorical_values": ["kids", "adults"], "column_position": 0},
    ]
    res = _create(project, columns=columns, description="Things to explain")
    assert res.status_code == 201
    body = res.get_json()
    assert _columns(body) == [("topic", "text", 0), ("audience", "category", 1)]
    assert body["columns"][1]["categorical_values"] == ["kids", "adults"]
    assert (body["variables"], body["variables_count"], body["description"]) == ([], 0, "Things to explain")
    assert body["created_at"].endswith("+00:00")
    TemplateVariablesCollectionWithEntries.model_validate(body)


def test_columns_come_from_the_first_rows_and_grow_with_new_keys(project: ProjectHandle) -> None:
    rows = [{"topic": "AI", "audience": "kids"}, {"topic": "ML", "level": 2}]
    body = _create(project, variables=rows).get_json()
    assert _columns(body) == [("topic", "text", 0), ("audience", "text", 1), ("level", "text", 2)]
    assert [v["input_values"] for v in body["variables"]] == rows
    assert body["variables_count"] == 2

    assert _upload(project, body["id"], _jsonl([{"topic": "DB", "source": "web"}])).status_code == 201
    added = project.post(f"collections/{body['id']}/entries", json={"input_values": {"note": "x"}})
    assert added.status_code == 201
    assert added.get_json()["collection"]["variables_count"] == 4
    names = [c["name"] for c in project.get(f"collections/{body['id']}").get_json()["columns"]]
    assert names == ["topic", "audience", "level", "source", "note"]


def test_collection_without_columns_takes_them_from_its_first_upload(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    assert collection["columns"] == []
    _upload(project, collection["id"], _jsonl([{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}]))
    fetched = project.get(f"collections/{collection['id']}").get_json()
    assert _columns(fetched) == [("question", "text", 0), ("answer", "text", 1)]


def test_duplicate_name_is_409_and_get_or_create_lookup_finds_it(project: ProjectHandle) -> None:
    created = _create(project, variables=[{"topic": "AI"}]).get_json()
    _create(project, name="Topics 2")
    dup = _create(project)
    assert dup.status_code == 409
    assert dup.get_json() == {"detail": "Collection 'Topics' already exists"}
    page = project.get("collections", query_string={"name": "Topics"}).get_json()
    assert (page["count"], page["items"][0]["id"]) == (1, created["id"])
    TemplateVariablesCollection.model_validate(page["items"][0])
    fetched = project.get(f"collections/{created['id']}").get_json()
    assert [v["input_values"] for v in fetched["variables"]] == [{"topic": "AI"}]


def test_batch_upload_returns_the_new_rows_as_a_bare_array(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    rows = [{"topic": "AI", "n": 1}, {"topic": "ML", "n": 2}, {"topic": "DB", "n": 3}]
    res = _upload(project, collection["id"], _jsonl(rows), skip_existing=False)
    assert res.status_code in (200, 201)
    created = res.get_json()
    assert [e["input_values"] for e in created] == rows
    assert [e["id"] for e in created] == sorted(e["id"] for e in created)
    assert created[0]["collection"]["variables_count"] == 3
    for item in created:
        TemplateVariables.model_validate(item)


def test_skip_existing_returns_only_rows_that_are_new(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    _upload(project, collection["id"], _jsonl([{"topic": "AI", "n": 1}, {"topic": "ML", "n": 2}]))
    again = [{"n": 1, "topic": "AI"}, {"topic": "DB", "n": 3}, {"topic": "DB", "n": 3}, {"topic": "ML", "n": "2"}]
    created = _upload(project, collection["id"], _jsonl(again), skip_existing=True).get_json()
    # Key order does not make a row new; a string "2" is not the number 2; the repeated DB row collapses.
    assert [e["input_values"] for e in created] == [{"topic": "DB", "n": 3}, {"topic": "ML", "n": "2"}]
    assert _upload(project, collection["id"], _jsonl(again), skip_existing=True).get_json() == []
    duplicates = _upload(project, collection["id"], _jsonl(again), skip_existing=False).get_json()
    assert len(duplicates) == 4
    assert project.get(f"collections/{collection['id']}").get_json()["variables_count"] == 8


def test_upload_tolerates_bom_blank_lines_and_trailing_newline(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    content = '\ufeff{"topic": "AI"}\n\n  \r\n{"topic": "Grüße \u2028 ok"}\r\n'
    created = _upload(project, collection["id"], content.encode()).get_json()
    assert [e["input_values"]["topic"] for e in created] == ["AI", "Grüße \u2028 ok"]


def test_uploaded_values_are_stored_exactly(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    row = {
        "big": 123456789012345678901234567890,
        "float": 1.0,
        "flags": [True, False, None],
        "nested": {"z": [1, {"y": "Grüße"}], "a": ""},
        "text": 'quote" backslash\\ newline\n nul\u0000 emoji 😀',
    }
    created = _upload(project, collection["id"], _jsonl([row])).get_json()
    stored = project.get(f"collections/{collection['id']}/entries/{created[0]['id']}").get_json()
    assert created[0]["input_values"] == stored["input_values"] == row
    assert list(stored["input_values"]) == list(row)


def test_bad_upload_is_422_naming_the_line_and_writes_nothing(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    cases = {
        '{"a": 1}\n{"a": 2}\n[1, 2]': "file line 3: expected a JSON object",
        '{"a": 1}\n{"a": ': "file line 2: invalid JSON",
        '{"a": NaN}': "file line 1: invalid JSON",
        '{"a": 1e999}': "file line 1: invalid JSON",
        '{"a": "ok"}\n{"a": "\\ud800"}': "file line 2: text must be valid Unicode",
    }
    for content, detail in cases.items():
        res = _upload(project, collection["id"], content)
        assert res.status_code == 422
        assert res.get_json()["detail"].startswith(detail)
    assert _upload(project, collection["id"], b"\xff\xfe").get_json()["detail"].startswith("file: not UTF-8")
    assert project.get(f"collections/{collection['id']}").get_json()["variables_count"] == 0


def test_upload_without_a_file_part_is_422_naming_file(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    res = project.post(f"collections/{collection['id']}/entries/batches", data={"other": "x"})
    assert res.status_code == 422
    assert res.get_json()["detail"].startswith("file:")


def test_large_upload_and_the_embedded_entry_cap(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    rows = [{"topic": f"t{i}", "audience": "kids", "n": i} for i in range(20_000)]
    created = _upload(project, collection["id"], _jsonl(rows)).get_json()
    assert len(created) == 20_000
    assert created[0]["input_values"] == rows[0] and created[-1]["input_values"] == rows[-1]
    ids = [e["id"] for e in created]
    assert ids == sorted(set(ids))
    # Each returned id is the row it is shown with.
    middle = project.get(f"collections/{collection['id']}/entries/{ids[12_345]}").get_json()
    assert middle["input_values"] == rows[12_345] == created[12_345]["input_values"]
    assert _upload(project, collection["id"], _jsonl(rows[:10]), skip_existing=True).get_json() == []
    fetched = project.get(f"collections/{collection['id']}").get_json()
    # At most 10,000 entries are embedded; the count covers them all.
    assert (fetched["variables_count"], len(fetched["variables"])) == (20_000, 10_000)
    assert fetched["variables"][0]["id"] == ids[0]


def test_entries_paginate_with_a_constant_page_size(project: ProjectHandle) -> None:
    collection = _create(project, variables=[{"n": i} for i in range(7)]).get_json()
    first = project.get(f"collections/{collection['id']}/entries", query_string={"page": 1}).get_json()
    second = project.get(f"collections/{collection['id']}/entries", query_string={"page": 2}).get_json()
    assert first["count"] == second["count"] == 7
    assert [e["input_values"]["n"] for e in first["items"] + second["items"]] == list(range(7))
    assert len(first["items"]) == 5


def test_collections_list_paginates_by_id(project: ProjectHandle) -> None:
    ids = [_create(project, name=f"C{i}").get_json()["id"] for i in range(6)]
    query = {"page": 2, "filters": "{'name': None}", "sort_options": "{'sort': None}"}
    second = project.get("collections", query_string=query).get_json()
    assert second["count"] == 6
    assert [c["id"] for c in second["items"]] == ids[5:]


def test_compatible_prompt_template_filter(project: ProjectHandle) -> None:
    template = project.post(
        "prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "{{topic}} for {{audience}}"}]}
    ).get_json()
    fits = _create(project, name="fits", columns=[{"name": "topic"}, {"name": "audience"}, {"name": "extra"}])
    _create(project, name="misses", columns=[{"name": "topic"}])
    page = project.get("collections", query_string={"compatible_prompt_template_id": template["id"]}).get_json()
    assert [c["id"] for c in page["items"]] == [fits.get_json()["id"]]
    assert project.get("collections", query_string={"compatible_prompt_template_id": 999}).status_code == 404


def test_entry_read_update_delete(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    path = f"collections/{collection['id']}/entries"
    entry = project.post(path, json={"input_values": {"topic": "AI"}, "environment_config": {"env": 1}}).get_json()
    assert project.get(f"{path}/{entry['id']}").get_json()["input_values"] == {"topic": "AI"}
    updated = project.put(f"{path}/{entry['id']}", json={"input_values": {"topic": "ML"}}).get_json()
    assert (updated["input_values"], updated["environment_config"]) == ({"topic": "ML"}, {"env": 1})
    TemplateVariables.model_validate(updated)
    # The update changed the entry's identity: the old row is new again, the new one exists.
    assert len(_upload(project, collection["id"], '{"topic": "AI"}', skip_existing=True).get_json()) == 1
    assert project.delete(f"{path}/{entry['id']}").status_code in (200, 204)
    assert project.get(f"{path}/{entry['id']}").status_code == 404


def test_adding_an_identical_entry_returns_the_existing_one(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    path = f"collections/{collection['id']}/entries"
    first = project.post(path, json={"input_values": {"topic": "AI"}}).get_json()
    again = project.post(path, json={"input_values": {"topic": "AI"}}).get_json()
    assert again["id"] == first["id"]
    assert project.get(path).get_json()["count"] == 1


def test_add_entry_needs_exactly_one_of_values_and_template(project: ProjectHandle) -> None:
    collection = _create(project).get_json()
    path = f"collections/{collection['id']}/entries"
    neither = project.post(path, json={"input_values": None, "prompt_template_id": None})
    assert neither.status_code == 422
    template = project.post("prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "{{x}}"}]})
    generate = project.post(path, json={"input_values": None, "prompt_template_id": template.get_json()["id"]})
    assert generate.status_code == 201
    assert set(generate.get_json()["input_values"]) == {"x"} and generate.get_json()["input_values"]["x"]
    assert project.post(path, json={"prompt_template_id": 999}).status_code == 404


def test_clear_removes_entries_and_keeps_columns(project: ProjectHandle) -> None:
    collection = _create(project, variables=[{"topic": "AI"}, {"topic": "ML"}]).get_json()
    assert project.delete(f"collections/{collection['id']}/entries").status_code in (200, 204)
    fetched = project.get(f"collections/{collection['id']}").get_json()
    assert (fetched["variables"], fetched["variables_count"]) == ([], 0)
    assert [c["name"] for c in fetched["columns"]] == ["topic"]


def test_read_only_collection_refuses_row_changes(project: ProjectHandle) -> None:
    collection = _create(project, read_only=True, variables=[{"topic": "AI"}]).get_json()
    entry_id = collection["variables"][0]["id"]
    path = f"collections/{collection['id']}/entries"
    refused = [
        project.post(path, json={"input_values": {"topic": "ML"}}),
        _upload(project, collection["id"], '{"topic": "ML"}'),
        project.put(f"{path}/{entry_id}", json={"input_values": {"topic": "ML"}}),
        project.delete(f"{path}/{entry_id}"),
        project.delete(path),
    ]
    assert [r.status_code for r in refused] == [409] * 5
    assert refused[0].get_json()["detail"] == "Collection 'Topics' is read-only"
    project.put(f"collections/{collection['id']}", json={"name": "Topics", "read_only": False})
    assert project.post(path, json={"input_values": {"topic": "ML"}}).status_code == 201


def test_update_renames_and_reshapes_columns(project: ProjectHandle) -> None:
    collection = _create(project, columns=[{"name": "a"}, {"name": "b"}], environment_config={"k": 1}).get_json()
    _create(project, name="Taken")
    path = f"collections/{collection['id']}"
    assert project.put(path, json={"name": "Taken"}).status_code == 409
    res = project.put(path, json={"name": "Renamed", "columns": [{"name": "b"}, {"name": "c", "column_type": "json"}]})
    assert res.status_code == 200
    body = res.get_json()
    assert (body["name"], body["environment_config"]) == ("Renamed", {"k": 1})
    assert _columns(body) == [("b", "text", 0), ("c", "json", 1)]
    assert body["columns"][0]["id"] == collection["columns"][1]["id"]
    cleared = project.put(path, json={"name": "Renamed", "environment_config": None}).get_json()
    assert cleared["environment_config"] is None
    TemplateVariablesCollection.model_validate(cleared)


def test_bad_columns_are_422_naming_the_field(project: ProjectHandle) -> None:
    res = _create(project, columns=[{"name": "a", "column_type": "banana"}])
    assert res.status_code == 422
    assert "body.columns.0.column_type" in res.get_json()["detail"]
    res = _create(project, columns=[{"name": "a"}, {"name": "a"}])
    assert res.status_code == 422
    assert res.get_json()["detail"].startswith("body.columns[1].name: duplicate")


def test_agentic_instruction_column_is_raw_input(project: ProjectHandle) -> None:
    body = _create(project, collection_type="AGENTIC", variables=[{"task": "t1", "instruction": "do it"}]).get_json()
    assert _columns(body) == [("task", "text", 0), ("instruction", "raw_input", 1)]
    assert {c["column_type"] for c in body["columns"]} <= SDK_COLUMN_TYPES


def test_delete_is_refused_while_an_experiment_uses_the_collection(project: ProjectHandle) -> None:
    used = _create(project, name="Used", variables=[{"topic": "AI"}]).get_json()
    unused = _create(project, name="Unused", variables=[{"topic": "AI"}]).get_json()
    with project.client.application.extensions["assay_db"].session() as session:
        criterion_set = CriterionSet(project_id=project.id, name="CS")
        session.add(criterion_set)
        session.flush()
        session.add(
            Experiment(project_id=project.id, name="Exp 1", collection_id=used["id"], criterion_set_id=criterion_set.id)
        )
    res = project.delete(f"collections/{used['id']}")
    assert res.status_code == 409
    assert "'Exp 1'" in res.get_json()["detail"]
    assert project.delete(f"collections/{unused['id']}").status_code in (200, 204)
    assert project.get(f"collections/{unused['id']}").status_code == 404
    assert project.get("collections", query_string={"name": "Unused"}).get_json()["count"] == 0


def test_another_projects_collection_and_entries_are_404(project: ProjectHandle, other_project: ProjectHandle) -> None:
    theirs = _create(other_project, variables=[{"topic": "secret"}]).get_json()
    cid, eid = theirs["id"], theirs["variables"][0]["id"]
    assert project.get("collections", query_string={"name": "Topics"}).get_json() == {"items": [], "count": 0}
    responses = [
        project.get(f"collections/{cid}"),
        project.put(f"collections/{cid}", json={"name": "Mine"}),
        project.delete(f"collections/{cid}"),
        project.get(f"collections/{cid}/entries"),
        project.post(f"collections/{cid}/entries", json={"input_values": {"topic": "x"}}),
        _upload(project, cid, '{"topic": "x"}'),
        project.get(f"collections/{cid}/entries/{eid}"),
        project.put(f"collections/{cid}/entries/{eid}", json={"input_values": {"topic": "x"}}),
        project.delete(f"collections/{cid}/entries/{eid}"),
        project.delete(f"collections/{cid}/entries"),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    # Their name is free in this project, and an entry id of another collection is a 404 too.
    mine = _create(project).get_json()
    assert project.get(f"collections/{mine['id']}/entries/{eid}").status_code == 404
    assert other_project.get(f"collections/{cid}").get_json()["variables_count"] == 1
