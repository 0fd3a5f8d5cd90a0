"""The parts of the elluminate 1.5.2 surface beyond the core flow, through the unmodified SDK (sync and
async) against a real stack: scenario sets, re-runs, uploaded responses, comparisons, response columns."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from elluminate import AsyncClient, Client
from elluminate.exceptions import APIError, ConflictError, NotFoundError, PartialUploadError, TaskMatchError
from elluminate.schemas import GenerationMetadata
from elluminate.schemas.agent_results import AgentTrialResult, AgentTrialTaskRef, CriterionRatingIn
from elluminate.streaming import TaskStatus

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def key(stack: Stack) -> str:
    return stack.new_project(f"Surface {time.monotonic_ns()}")[1]


def test_scenario_sets_sync(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    scenario_set = client.create_scenario_set(name="Support", description="Calls", fields=["tone"])
    assert [(f.name, f.field_type) for f in scenario_set.fields] == [("tone", "text")]
    with pytest.raises(APIError) as clash:
        client.create_scenario_set(name="Support")
    assert clash.value.status_code == 400 and "body.name" in clash.value.message

    plan = scenario_set.add_field("plan", default_value="basic")
    assert [f.name for f in client.get_scenario_set(id=scenario_set.id).fields] == ["tone", "plan"]
    added = scenario_set.add_scenarios(
        [
            {"goal": "Cancel", "expected_conversation_outcome": "Cancelled", "field_values": {"tone": "angry"}},
            {"goal": "Upgrade", "expected_conversation_outcome": "Upgraded", "field_values": {"plan": "pro"}},
        ]
    )
    assert [s.field_values for s in added] == [{"tone": "angry", "plan": "basic"}, {"tone": "", "plan": "pro"}]
    assert scenario_set.scenarios_count == 2
    assert (
        scenario_set.add_scenarios(
            [{"goal": "Cancel", "expected_conversation_outcome": "Cancelled", "field_values": {"tone": "angry"}}],
            skip_existing=True,
        )
        == []
    )
    with pytest.raises(APIError) as undeclared:
        scenario_set.add_scenarios([{"goal": "g", "expected_conversation_outcome": "o", "field_values": {"mood": "x"}}])
    assert undeclared.value.status_code == 422 and "field_values.mood" in undeclared.value.message

    renamed = scenario_set.rename_field(plan, "tier")
    assert renamed.id == plan.id and [f.name for f in scenario_set.fields] == ["tone", "tier"]
    first = scenario_set.get_scenario(added[0].id)
    assert first.field_values == {"tone": "angry", "tier": "basic"} and first.goal == "Cancel"
    first.goal, first.field_values = "Cancel today", {"tier": "gold"}
    updated = scenario_set.update_scenario(first)
    assert (updated.goal, updated.field_values) == ("Cancel today", {"tone": "", "tier": "gold"})
    scenario_set.delete_field(renamed)
    assert [s.field_values for s in scenario_set.list_scenarios()] == [{"tone": ""}, {"tone": ""}]
    scenario_set.delete_scenario(updated)
    with pytest.raises(NotFoundError):
        scenario_set.get_scenario(updated.id)
    assert [s.goal for s in scenario_set.list_scenarios()] == ["Upgrade"]

    assert client.get_scenario_set(name="Support").scenarios_count == 1
    many = client.create_scenario_set(name="Many")
    many.add_scenarios([{"goal": f"g{i}", "expected_conversation_outcome": "o"} for i in range(120)])
    assert [s.goal for s in many.list_scenarios()] == [f"g{i}" for i in range(120)]  # 3 pages of 50
    assert {s.name for s in client.list_scenario_sets()} == {"Support", "Many"}
    assert [s.name for s in client.list_scenario_sets(name_search="Supp")] == ["Support"]
    client.delete_scenario_set(scenario_set)
    with pytest.raises(NotFoundError):
        client.get_scenario_set(id=scenario_set.id)
    with pytest.raises(NotFoundError):
        client.get_scenario_set(name="Support")


async def _scenario_sets_async(base_url: str, key: str, other_key: str) -> None:
    async with AsyncClient(base_url=base_url, api_key=key) as client:
        scenario_set = await client.create_scenario_set(name="Async set", fields=["tone", "lang"])
        lang = scenario_set.fields[1]
        added = await scenario_set.aadd_scenarios(
            [{"goal": "Refund", "expected_conversation_outcome": "Refunded", "field_values": {"lang": "de"}}]
        )
        assert added[0].field_values == {"tone": "", "lang": "de"} and scenario_set.scenarios_count == 1
        field = await scenario_set.aadd_field("channel", default_value="phone")
        assert (await scenario_set.aget_scenario(added[0].id)).field_values["channel"] == "phone"
        await scenario_set.arename_field(lang, "language")
        await scenario_set.adelete_field(field)
        scenario = (await scenario_set.alist_scenarios())[0]
        assert scenario.field_values == {"tone": "", "language": "de"}
        scenario.expected_conversation_outcome = "Refund issued"
        assert (await scenario_set.aupdate_scenario(scenario)).expected_conversation_outcome == "Refund issued"
        assert (await client.get_scenario_set(name="Async set")).fields[1].name == "language"
        assert [s.id for s in await client.list_scenario_sets(name_search="Async")] == [scenario_set.id]
        await scenario_set.adelete_scenario(scenario)
        assert await scenario_set.alist_scenarios() == []
        async with AsyncClient(base_url=base_url, api_key=other_key) as other:
            try:
                await other.get_scenario_set(id=scenario_set.id)
                raise AssertionError("another project's scenario set must be a 404")
            except NotFoundError:
                pass
            assert await other.list_scenario_sets() == []
        await client.delete_scenario_set(scenario_set)
        assert await client.list_scenario_sets() == []


def test_scenario_sets_async(stack: Stack, key: str) -> None:
    other_key = stack.new_project(f"Other {time.monotonic_ns()}")[1]
    asyncio.run(_scenario_sets_async(stack.base_url, key, other_key))


def _inputs(client: Client, name: str, n: int) -> tuple[Any, Any, Any]:
    template = client.create_prompt_template(name=name, messages=f"{name}: explain {{{{topic}}}}.")
    collection = client.create_collection(name=f"{name} cases")
    collection.add_many(variables=[{"topic": f"t{i}"} for i in range(n)])
    criterion_set = client.create_criterion_set(name=f"{name} criteria", criteria=["Is it clear?"])
    return template, client.get_collection(id=collection.id), criterion_set


def test_an_experiment_runs_once_and_a_clone_runs_again(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    template, collection, criterion_set = _inputs(client, "Once", 3)
    experiment = client.create_experiment(
        name="Once", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    experiment.run()
    ids = sorted(r.id for r in experiment.rated_responses)
    with pytest.raises(APIError) as again:
        experiment.run()
    assert again.value.status_code == 409 and "already been run" in again.value.message
    assert sorted(r.id for r in client.get_experiment(id=experiment.id).rated_responses) == ids
    clone = experiment.clone(name="Once again")
    clone.run(n_epochs=2)
    assert len(clone.rated_responses) == 6 and all(len(r.ratings) == 1 for r in clone.rated_responses)


def test_added_responses_keep_their_metadata_and_are_never_overwritten(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    template, collection, criterion_set = _inputs(client, "Upload", 2)
    config = client.create_llm_config(name="External", llm_model_name="my-agent", api_key="sk-x")
    experiment = client.create_experiment(
        name="Upload", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    entries = list(collection.variables)
    usage = GenerationMetadata(duration_seconds=1.25, input_tokens=40, output_tokens=7, cached_tokens=5)
    added = experiment.add_responses(["first", "second"], entries, metadata=[usage, config])
    assert [r.response_str for r in added] == ["first", "second"]
    first, second = added[0].generation_metadata, added[1].generation_metadata
    assert (first.duration_seconds, first.input_tokens, first.output_tokens, first.cached_tokens) == (1.25, 40, 7, 5)
    assert second.llm_model_config.id == config.id and second.llm_model_config.llm_model_name == "my-agent"

    with pytest.raises(ConflictError) as clash:
        experiment.add_responses(["replacement"], entries[:1])
    assert "prompt_response_ins[0]" in clash.value.message and f"entry {entries[0].id}, epoch 1" in clash.value.message
    stored = client.get_experiment(id=experiment.id).rated_responses
    assert sorted(r.response_str for r in stored) == ["first", "second"]
    assert [r.response_str for r in experiment.add_responses(["later"], entries[:1], epoch=2)] == ["later"]
    rated = experiment.rate_responses()
    assert len(rated) == 3 and all(len(r) == 1 for r in rated)


async def _upload_async(base_url: str, key: str, entry_ids: list[int], experiment_id: int) -> None:
    async with AsyncClient(base_url=base_url, api_key=key) as client:
        experiment = await client.get_experiment(id=experiment_id)
        collection = await client.get_collection(id=experiment.collection.id)
        entries = [v for v in collection.variables if v.id in entry_ids]
        metadata = [GenerationMetadata(input_tokens=3, output_tokens=4, duration_seconds=0.5)]
        added = await experiment.aadd_responses(["async answer"], entries, metadata=metadata)
        assert (added[0].generation_metadata.input_tokens, added[0].generation_metadata.duration_seconds) == (3, 0.5)
        try:
            await experiment.aadd_responses(["again"], entries)
            raise AssertionError("a second upload for the same entry and epoch must be refused")
        except ConflictError:
            pass
        try:
            await experiment.arun()
            raise AssertionError("an experiment with responses has run")
        except ConflictError:
            pass


def test_async_uploads_and_reruns(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    template, collection, criterion_set = _inputs(client, "Async upload", 2)
    experiment = client.create_experiment(
        name="Async upload", prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    asyncio.run(_upload_async(stack.base_url, key, [collection.variables[0].id], experiment.id))
    assert [r.response_str for r in client.get_experiment(id=experiment.id).rated_responses] == ["async answer"]


def _rated(client: Client, name: str, template: Any, collection: Any, criterion_set: Any, answers: list[str]) -> Any:
    experiment = client.create_experiment(
        name=name, prompt_template=template, collection=collection, criterion_set=criterion_set
    )
    experiment.add_responses(answers, list(collection.variables))
    experiment.rate_responses()  # the fake judge says NO to an answer containing "fail"
    return client.get_experiment(id=experiment.id)


def test_comparison_samples_pair_the_test_cases_sync_and_async(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    template = client.create_prompt_template(name="Compare", messages="Answer {{q}}.")
    collection = client.create_collection(name="Compare cases")
    collection.add_many(variables=[{"q": f"q{i}", "region": r} for i, r in enumerate(["US", "EU", "US"])])
    collection = client.get_collection(id=collection.id)
    criterion_set = client.create_criterion_set(name="Compare criteria", criteria=["Right?"])
    a = _rated(client, "A", template, collection, criterion_set, ["ok", "fail", "ok"])
    b = _rated(client, "B", template, collection, criterion_set, ["fail", "ok", "ok"])
    entries = [v.id for v in collection.variables]
    ids = {e.id: {r.prompt.template_variables.id: r.id for r in e.rated_responses} for e in (a, b)}

    every = client.list_comparison_samples(a, b)
    assert [(s.experiment_id, s.template_variables_id) for s in every] == [
        (e.id, entry) for entry in entries for e in (a, b)
    ]
    assert all(s.prompt_response_ids == [ids[s.experiment_id][s.template_variables_id]] for s in every)
    improved = client.list_comparison_samples(a, b, filter_samples_by="improved")
    assert [(s.experiment_id, s.template_variables_id) for s in improved] == [(a.id, entries[1]), (b.id, entries[1])]
    regressed = client.list_comparison_samples(
        a, b, filter_samples_by="regressed", categorical_filters={"region": ["US"]}
    )
    assert [s.template_variables_id for s in regressed] == [entries[0], entries[0]]
    assert (
        client.list_comparison_samples(a, b, filter_samples_by="regressed", categorical_filters={"region": ["EU"]})
        == []
    )
    other_criterion = client.create_criterion_set(name="Unused", criteria=["Unused?"]).criteria[0].id
    assert client.list_comparison_samples(a, b, filter_samples_by="improved", criterion_ids=[other_criterion]) == []
    with pytest.raises(APIError) as same:
        client.list_comparison_samples(a, a)
    assert same.value.status_code == 422 and "experiment_b_id" in same.value.message

    async def flow() -> list[Any]:
        async with AsyncClient(base_url=stack.base_url, api_key=key) as aclient:
            return await aclient.list_comparison_samples(a, b, filter_samples_by="regressed")

    assert [(s.experiment_id, s.template_variables_id) for s in asyncio.run(flow())] == [
        (a.id, entries[0]),
        (b.id, entries[0]),
    ]


def test_a_response_column_is_rated_without_calling_the_model(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    template = client.create_prompt_template(name="Column", messages="Answer {{q}}.")
    collection = client.create_collection(name="Column cases", columns=["q", "answer"])
    rows = [{"q": "a", "answer": "Paris"}, {"q": "b", "answer": "It will fail"}, {"q": "c", "answer": ""}]
    collection.add_many(variables=rows)
    answer_column = next(c for c in client.get_collection(id=collection.id).columns if c.name == "answer")
    stack.fake.reset()
    experiment = client.run_experiment(
        name="From column",
        prompt_template=template,
        collection=collection,
        criteria=["Is it right?", "Is it short?"],
        response_column_id=answer_column.id,
        n_epochs=3,
    )
    assert stack.fake.stats()["calls"] == 4, "only the judge is called: two answers x two criteria"
    by_value = {r.prompt.template_variables.input_values["q"]: r for r in experiment.rated_responses}
    assert [by_value[q].epoch for q in "abc"] == [1, 1, 1]
    assert by_value["a"].response_str == "Paris" and {r.rating for r in by_value["a"].ratings} == {"YES"}
    assert {r.rating for r in by_value["b"].ratings} == {"NO"}
    assert by_value["c"].ratings == [] and "no value in the response column 'answer'" in by_value["c"].error
    assert experiment.response_column_id == answer_column.id
    assert (experiment.results.num_failed_responses, experiment.results.mean_all_ratings.yes) == (1, 0.5)

    calls = stack.fake.stats()["calls"]
    criterion_set = client.get_criterion_set(id=experiment.criterion_set.id)
    bare = client.create_experiment(
        name="Column, no template",
        prompt_template=None,
        collection=collection,
        criterion_set=criterion_set,
        response_column_id=answer_column.id,
    )
    bare.run()
    assert stack.fake.stats()["calls"] == calls + 4
    assert sorted(r.response_str for r in bare.rated_responses) == ["", "It will fail", "Paris"]


def _agentic(client: Client, name: str) -> tuple[Any, Any]:
    collection = client.create_collection(name=f"{name} tasks", columns=["task_name", "goal"])
    collection.add_many(variables=[{"task_name": f"t{i}", "goal": f"goal {i}"} for i in range(3)])
    criterion_set = client.create_criterion_set(name=f"{name} criteria", criteria=["Did it reach {{goal}}?", "Polite?"])
    experiment = client.create_experiment(
        name=name,
        prompt_template=None,
        collection=client.get_collection(id=collection.id),
        criterion_set=criterion_set,
        evaluation_mode="AGENTIC",
        agent_config={"agent": "outside"},
    )
    return experiment, criterion_set


def _trial(task_name: str, answer: str, **extra: Any) -> AgentTrialResult:
    return AgentTrialResult(task_name=task_name, messages=[{"role": "assistant", "content": answer}], **extra)


def test_agentic_results_are_matched_stored_and_rated_by_the_judge(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    experiment, criterion_set = _agentic(client, "Agents")
    assert (experiment.evaluation_mode, experiment.agent_config) == ("AGENTIC", {"agent": "outside"})
    definition = client.get_agent_results_definition(experiment)
    assert definition.task_name_column == "task_name" and [t.task_name for t in definition.tasks] == ["t0", "t1", "t2"]
    reach, polite = (c.id for c in criterion_set.criteria)
    assert [c.rendered_criterion_str for c in definition.tasks[1].criteria] == ["Did it reach goal 1?", "Polite?"]

    refs = [AgentTrialTaskRef(task_name="t0"), AgentTrialTaskRef(task_id=definition.tasks[1].task_id)]
    preview = client.preview_agent_results_matching(experiment, [*refs, AgentTrialTaskRef(task_name="t9")])
    assert (preview.matched, preview.unmatched) == (2, 1)
    assert [m.task_id for m in preview.results[:2]] == [t.task_id for t in definition.tasks[:2]]
    assert "t9" in preview.unmatched_results[0].reason

    with pytest.raises(TaskMatchError) as nothing:
        client.upload_agent_results(experiment, [_trial("t9", "x")])
    assert nothing.value.accepted_tasks_total == 3 and nothing.value.accepted_tasks[0].task_name == "t0"

    stack.fake.reset()
    precomputed = [CriterionRatingIn(criterion_id=reach, rating="YES", reasoning="checked by the harness")]
    results = [
        _trial("t0", "Done.", criterion_ratings=precomputed, input_tokens=11, duration_seconds=2.0),
        _trial("t1", "I fail at this.", trajectory={"schema_version": "ATIF-v1.7", "steps": []}),
        _trial("t9", "lost"),
    ]
    with pytest.raises(PartialUploadError):
        experiment.upload_agent_results(results[2:] + results[:1], raise_on_partial=True, epoch=3, evaluate=False)
    uploaded = client.upload_agent_results(experiment, results)
    assert (uploaded.created_responses, uploaded.created_ratings, uploaded.pending_evaluations) == (2, 1, 2)
    assert len(uploaded.errors) == 1 and uploaded.errors[0].startswith("results[2]")
    final = client.wait_for_agent_evaluation(experiment, task_id=uploaded.evaluation_task_id)
    assert final.status == TaskStatus.SUCCESS and experiment.wait_for_evaluation().is_complete
    # A waiter that starts after the evaluation ended (a fast one ends before the first poll) gets its outcome.
    late = client.wait_for_agent_evaluation(experiment, task_id=uploaded.evaluation_task_id)
    assert late.status == TaskStatus.SUCCESS
    assert stack.fake.stats()["calls"] == 3, "the judge rates only what the upload brought no rating for"

    rated = client.get_experiment(id=experiment.id).rated_responses
    by_task = {(r.prompt.template_variables.input_values["task_name"], r.epoch): r for r in rated}
    verdicts = {c: {r.criterion.id: (r.rating, r.reasoning) for r in by_task[(c, 1)].ratings} for c in ("t0", "t1")}
    assert verdicts["t0"][reach] == ("YES", "checked by the harness") and verdicts["t0"][polite][0] == "YES"
    assert {v for v, _ in verdicts["t1"].values()} == {"NO"}
    assert by_task[("t0", 1)].generation_metadata.input_tokens == 11
    assert by_task[("t1", 1)].trajectory == {"schema_version": "ATIF-v1.7", "steps": []}
    assert len(by_task[("t0", 3)].ratings) == 1, "the partial upload was stored, not evaluated"

    with pytest.raises(APIError) as again:
        client.upload_agent_results(experiment, results[:1])
    assert again.value.status_code == 400 and "already has a result for epoch 1" in again.value.message
    standard = client.create_experiment(
        name="Not agentic",
        prompt_template=client.create_prompt_template(name="P", messages="{{goal}}"),
        collection=experiment.collection,
        criterion_set=criterion_set,
    )
    with pytest.raises(APIError) as not_agentic:
        client.get_agent_results_definition(standard)
    assert not_agentic.value.status_code == 422


async def _agentic_async(base_url: str, key: str, experiment_id: int) -> None:
    async with AsyncClient(base_url=base_url, api_key=key) as client:
        experiment = await client.get_experiment(id=experiment_id)
        definition = await experiment.aget_agent_results_definition()
        assert definition == await client.get_agent_results_definition(experiment_id)
        preview = await experiment.apreview_agent_results_matching([AgentTrialTaskRef(task_name="t2")])
        assert preview.results[0].task_id == definition.tasks[2].task_id
        assert (
            await client.preview_agent_results_matching(
                experiment, [AgentTrialTaskRef(task_id=definition.tasks[-1].task_id + 1000)]
            )
        ).unmatched == 1
        uploaded = await experiment.aupload_agent_results([_trial("t2", "Fine.")], evaluate=False)
        assert (uploaded.created_responses, uploaded.pending_evaluations, uploaded.evaluation_task_id) == (1, 0, None)
        again = await client.upload_agent_results(experiment_id, [_trial("t1", "Also fine.")], epoch=2)
        events = [e async for e in client.stream_agent_evaluation(experiment_id, task_id=again.evaluation_task_id)]
        assert events[-1].status == TaskStatus.SUCCESS
        assert (await experiment.await_for_evaluation()).is_complete, "nothing left to wait for"
        third = await client.upload_agent_results(experiment_id, [_trial("t0", "Sure.")], epoch=3)
        assert (await experiment.await_for_evaluation(task_id=third.evaluation_task_id)).status == TaskStatus.SUCCESS
        rated = {
            (r.prompt.template_variables.input_values["task_name"], r.epoch): r
            for r in (await client.get_experiment(id=experiment_id)).rated_responses
        }
        assert rated[("t2", 1)].ratings == [] and len(rated[("t1", 2)].ratings) == 2


def test_agentic_results_async(stack: Stack, key: str) -> None:
    client = Client(base_url=stack.base_url, api_key=key)
    experiment, _ = _agentic(client, "Async agents")
    asyncio.run(_agentic_async(stack.base_url, key, experiment.id))
