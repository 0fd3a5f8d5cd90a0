"""The unmodified elluminate 1.5.2 SDK against a real Assay server process: every resource, both clients."""

from __future__ import annotations

import asyncio

import pytest
from elluminate import AsyncClient, Client
from elluminate.exceptions import ConflictError, NotFoundError

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sdk_project(live_server: LiveServer) -> tuple[str, str]:
    _, key = live_server.new_project("SDK project")
    return live_server.base_url, key


def test_sync_client_resources(sdk_project: tuple[str, str]) -> None:
    base_url, key = sdk_project
    client = Client(base_url=base_url, api_key=key)

    # Prompt templates: create, conflict, get_or_create, versions, list, get by name.
    template = client.create_prompt_template(name="Essay", messages="Explain {{topic}} to {{audience}}.")
    assert template.version == 1 and template.placeholders == {"topic", "audience"}
    with pytest.raises(ConflictError):
        client.create_prompt_template(name="Essay", messages="Explain {{topic}} to {{audience}}.")
    same, created = client.get_or_create_prompt_template(name="Essay", messages="Explain {{topic}} to {{audience}}.")
    assert (same.id, created) == (template.id, False)
    v2, created = client.get_or_create_prompt_template(name="Essay", messages="Explain {{topic}} briefly.")
    assert created and v2.version == 2
    v3 = v2.new_version(messages="Explain {{topic}} with an example.")
    assert v3.version == 3
    with pytest.raises(ConflictError):
        v3.new_version(messages="Explain {{topic}} with an example.")
    assert client.get_prompt_template(name="Essay").id == v3.id
    assert client.get_prompt_template(name="Essay", version=1).id == template.id
    assert {t.version for t in client.list_prompt_templates(name="Essay")} == {1, 2, 3}

    # Collections: created without columns, add_many infers text columns, get_or_create, clear.
    collection = client.create_collection(name="Topics")
    added = collection.add_many(variables=[{"topic": "AI", "audience": "kids"}, {"topic": "ML", "audience": "adults"}])
    assert len(added) == 2
    fetched = client.get_collection(name="Topics")
    assert {c.name for c in fetched.columns} == {"topic", "audience"}
    assert fetched.variables_count == 2
    again, created = client.get_or_create_collection(name="Topics")
    assert (again.id, created) == (collection.id, False)
    with pytest.raises(ConflictError):
        client.create_collection(name="Topics")
    assert collection.id in {c.id for c in client.list_collections()}

    # Criterion sets: add_criteria, get_or_create, link and unlink a template.
    criterion_set = client.create_criterion_set(name="Quality", criteria=["Is it accurate?"])
    criterion_set.add_criteria(["Is it helpful?", "Is it concise?"])
    assert [c.criterion_str for c in client.get_criterion_set(name="Quality").criteria] == [
        "Is it accurate?",
        "Is it helpful?",
        "Is it concise?",
    ]
    same_set, created = client.get_or_create_criterion_set(name="Quality")
    assert (same_set.id, created) == (criterion_set.id, False)
    criterion_set.link_template(v3)
    assert client.get_prompt_template(id=v3.id).criterion_set_id == criterion_set.id
    criterion_set.unlink_template(v3)
    assert client.get_prompt_template(id=v3.id).criterion_set_id is None
    assert criterion_set.id in {s.id for s in client.list_criterion_sets()}

    # LLM configs: create, conflict, get_or_create; the key never comes back in full.
    config = client.create_llm_config(name="fake", llm_model_name="fake-model", api_key="sk-secret-provider-key-1234")
    assert config.api_key != "sk-secret-provider-key-1234"
    with pytest.raises(ConflictError):
        client.create_llm_config(name="fake", llm_model_name="fake-model", api_key="x")
    same_config, created = client.get_or_create_llm_config(name="fake")
    assert (same_config.id, created) == (config.id, False)
    assert "secret-provider" not in (client.get_llm_config(name="fake").api_key or "")

    # Experiments without generation: create, conflict, get, list, delete.
    experiment = client.create_experiment(
        name="Exp 1", prompt_template=v3, collection=collection, criterion_set=criterion_set, llm_config=config
    )
    assert experiment.criterion_set.id == criterion_set.id and experiment.llm_config.id == config.id
    with pytest.raises(ConflictError):
        client.create_experiment(name="Exp 1", prompt_template=v3, collection=collection, criterion_set=criterion_set)
    got = client.get_experiment(name="Exp 1")
    assert got.id == experiment.id and got.results is not None and got.rated_responses == []
    assert [e.id for e in client.list_experiments(collection=collection)] == [experiment.id]
    client.delete_experiment(experiment)
    with pytest.raises(NotFoundError):
        client.get_experiment(name="Exp 1")

    # Clearing a collection, then deletions; lookups of deleted things are NotFoundError.
    assert collection.clear().variables == []
    client.delete_collection(collection)
    client.delete_criterion_set(criterion_set)
    client.delete_llm_config(config)
    client.delete_prompt_template(template)
    for lookup in (
        lambda: client.get_collection(name="Topics"),
        lambda: client.get_criterion_set(name="Quality"),
        lambda: client.get_llm_config(name="fake"),
        lambda: client.get_prompt_template(id=template.id),
    ):
        with pytest.raises(NotFoundError):
            lookup()
    client.close()


async def _async_flow(base_url: str, key: str) -> None:
    async with AsyncClient(base_url=base_url, api_key=key) as client:
        template = await client.create_prompt_template(name="Async", messages="Summarise {{text}}.")
        try:
            await client.create_prompt_template(name="Async", messages="Summarise {{text}}.")
            raise AssertionError("expected ConflictError")
        except ConflictError:
            pass
        assert (await client.get_prompt_template(name="Async")).id == template.id
        v2 = await template.anew_version(messages="Summarise {{text}} in one line.")
        assert v2.version == 2

        collection = await client.create_collection(name="Texts")
        await collection.aadd_many(variables=[{"text": "a"}, {"text": "b"}])
        await collection.aadd_many(variables=[{"text": "a"}, {"text": "c"}], skip_existing=True)
        assert (await client.get_collection(name="Texts")).variables_count == 3

        criterion_set = await client.create_criterion_set(name="Async set")
        await criterion_set.aadd_criteria(["Is it short?"])
        await criterion_set.aadd_criterion("Is it faithful?")
        await criterion_set.alink_template(v2)
        assert (await client.get_prompt_template(id=v2.id)).criterion_set_id == criterion_set.id
        await criterion_set.aunlink_template(v2)

        config, created = await client.get_or_create_llm_config(
            name="async-config", defaults={"llm_model_name": "fake-model", "api_key": "sk-async-secret-9999"}
        )
        assert created and config.api_key != "sk-async-secret-9999"

        experiment = await client.create_experiment(
            name="Async exp", prompt_template=v2, collection=collection, criterion_set=criterion_set
        )
        clone = await experiment.aclone(name="Async exp clone")
        assert clone.id != experiment.id
        await experiment.afetch_responses()
        assert experiment.rated_responses == []
        assert {e.name for e in await client.list_experiments()} >= {"Async exp", "Async exp clone"}
        try:
            await client.get_experiment(name="Nope")
            raise AssertionError("expected NotFoundError")
        except NotFoundError:
            pass
        await collection.aclear()
        assert (await client.get_collection(id=collection.id)).variables_count == 0


def test_async_client_resources(sdk_project: tuple[str, str]) -> None:
    asyncio.run(_async_flow(*sdk_project))
