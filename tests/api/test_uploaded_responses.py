"""Responses a client uploads: never silently replaced, their reported usage read back, reruns refused."""

from __future__ import annotations

from elluminate.schemas import PromptResponse

from tests.api.test_input_checks import _experiment_with_entries
from tests.conftest import ProjectHandle

ANSWER = [{"role": "assistant", "content": "hi"}]


def _item(experiment_id: int, entry_id: int, **extra: object) -> dict[str, object]:
    return {"template_variables_id": entry_id, "experiment_id": experiment_id, "messages": ANSWER, **extra}


def test_a_second_upload_for_the_same_entry_and_epoch_is_a_409(project: ProjectHandle) -> None:
    experiment_id, entries = _experiment_with_entries(project, 2)
    first = project.post("responses", json=_item(experiment_id, entries[0]))
    assert first.status_code == 201
    again = project.post("responses", json=_item(experiment_id, entries[0]))
    assert again.status_code == 409 and again.get_json()["detail"].startswith("body: experiment")
    batch = [_item(experiment_id, entries[1]), _item(experiment_id, entries[0])]
    res = project.post("responses/batches", json={"prompt_response_ins": batch})
    assert res.status_code == 409 and "prompt_response_ins[1]" in res.get_json()["detail"]
    listed = project.get("responses", query_string={"experiment_id": experiment_id}).get_json()
    assert [r["id"] for r in listed["items"]] == [first.get_json()["id"]]
    assert project.post("responses", json=_item(experiment_id, entries[0], epoch=2)).status_code == 201


def test_two_items_of_one_batch_for_the_same_key_are_a_422(project: ProjectHandle) -> None:
    experiment_id, entries = _experiment_with_entries(project, 1)
    batch = [_item(experiment_id, entries[0]), _item(experiment_id, entries[0])]
    res = project.post("responses/batches", json={"prompt_response_ins": batch})
    assert res.status_code == 422
    assert res.get_json()["detail"].startswith("body.prompt_response_ins[1]: repeats body.prompt_response_ins[0]")


def test_reported_usage_reads_back_without_a_model(project: ProjectHandle) -> None:
    experiment_id, entries = _experiment_with_entries(project, 1)
    usage = {"duration_seconds": 2.5, "input_tokens": 9, "output_tokens": 4, "reasoning_tokens": 1, "cached_tokens": 3}
    body = project.post("responses", json=_item(experiment_id, entries[0], metadata=usage)).get_json()
    metadata = PromptResponse.model_validate(body).generation_metadata
    assert metadata is not None and metadata.model_dump(include=set(usage)) == usage
    assert metadata.llm_model_config.llm_model_name == "external"


def test_a_metadata_config_links_only_the_projects_own(project: ProjectHandle, other_project: ProjectHandle) -> None:
    experiment_id, entries = _experiment_with_entries(project, 2)
    mine = project.post("llm_configs", json={"name": "Mine", "llm_model_name": "agent-1"}).get_json()
    theirs = other_project.post("llm_configs", json={"name": "Theirs", "llm_model_name": "agent-2"}).get_json()
    linked = project.post("responses", json=_item(experiment_id, entries[0], metadata={"llm_model_config": mine}))
    assert linked.get_json()["generation_metadata"]["llm_model_config"]["id"] == mine["id"]
    foreign = project.post("responses", json=_item(experiment_id, entries[1], metadata={"llm_model_config": theirs}))
    config = foreign.get_json()["generation_metadata"]["llm_model_config"]
    assert config.get("id") is None and config["llm_model_name"] == "agent-2"


def test_running_an_experiment_that_has_responses_is_a_409(project: ProjectHandle) -> None:
    experiment_id, entries = _experiment_with_entries(project, 1)
    project.post("responses", json=_item(experiment_id, entries[0]))
    res = project.post(f"experiments/{experiment_id}/run", json={"rating_mode": "fast", "n_epochs": 1})
    assert res.status_code == 409 and "already been run" in res.get_json()["detail"]


def test_comparison_samples_check_their_query(project: ProjectHandle, other_project: ProjectHandle) -> None:
    experiment_id, _ = _experiment_with_entries(project, 1)
    theirs, _ = _experiment_with_entries(other_project, 1)
    cases = (
        ({"experiment_a_id": experiment_id, "experiment_b_id": theirs}, 404, "query.experiment_b_id"),
        ({"experiment_a_id": experiment_id, "experiment_b_id": experiment_id}, 422, "query.experiment_b_id"),
        ({"experiment_a_id": experiment_id}, 422, "query.experiment_b_id"),
        ({"experiment_a_id": 1, "experiment_b_id": 2, "categorical_filters": "{bad"}, 422, "query.categorical_filters"),
        ({"experiment_a_id": 1, "experiment_b_id": 2, "filter_samples_by": "better"}, 422, "query.filter_samples_by"),
    )
    for query, status, field in cases:
        res = project.get("responses/comparison/samples", query_string=query)
        assert res.status_code == status and res.get_json()["detail"].startswith(field), (query, res.get_json())


def test_running_from_a_response_column_that_was_removed_is_a_422(project: ProjectHandle) -> None:
    rows = [{"q": "a", "answer": "x"}]
    collection = project.post("collections", json={"name": "Cols", "variables": rows}).get_json()
    answer = next(c for c in collection["columns"] if c["name"] == "answer")
    criterion_set = project.post("criterion_sets", json={"name": "S", "criteria": [{"criterion_str": "Ok?"}]})
    body = {"collection_id": collection["id"], "criterion_set_id": criterion_set.get_json()["id"]}
    experiment = project.post("experiments", json={"name": "E", **body, "response_column_id": answer["id"]})
    assert experiment.status_code == 201 and experiment.get_json()["prompt_template"] is None
    q = next(c for c in collection["columns"] if c["name"] == "q")
    project.put(f"collections/{collection['id']}", json={"name": "Cols", "columns": [q]})
    res = project.post(f"experiments/{experiment.get_json()['id']}/run", json={"rating_mode": "fast", "n_epochs": 1})
    assert res.status_code == 422 and res.get_json()["detail"].startswith("response_column_id:")
    assert (
        project.get("responses", query_string={"experiment_id": experiment.get_json()["id"]}).get_json()["count"] == 0
    )
