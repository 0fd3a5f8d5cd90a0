"""The outbound policy for model URLs: an LLM config may not point the workers at internal addresses.

Every target is a listener of the test's own on a free loopback port; each is refused with a 422
naming `llm_base_url` and never contacted. The fake model, which the test config allows, works."""

from __future__ import annotations

import pytest
from flask import Flask

from fakellm import FakeLLM
from llmcalls.outbound import OutboundRefused, check_url
from models.orm import LLMConfig
from services.execution import spec_for
from tests.conftest import ProjectHandle
from tests.listener import Listener

# Hosts that all reach 127.0.0.1 (or this machine) under some spelling.
LOOPBACK_SPELLINGS = ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "0.0.0.0"]
# Internal addresses refused by their address alone; nothing is ever sent to them.
INTERNAL_LITERALS = ["169.254.169.254", "10.0.0.1", "192.168.1.1", "172.16.0.1", "224.0.0.1", "[fe80::1]", "[ff02::1]"]


def _config(url: str | None, name: str = "L") -> dict:
    return {"name": name, "llm_model_name": "m", "llm_base_url": url, "api_key": "sk-secret-1234567890"}


def _assert_refused(project: ProjectHandle, url: str) -> None:
    res = project.post("llm_configs", json=_config(url))
    assert res.status_code == 422, (url, res.get_data(as_text=True))
    assert res.get_json()["detail"].startswith("body.llm_base_url:")
    assert project.get("llm_configs").get_json()["count"] == 0


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_listeners_are_refused_and_never_contacted(project: ProjectHandle, host: str) -> None:
    with Listener() as target:
        _assert_refused(project, f"http://{host}:{target.port}/v1")
    assert not target.contacted


@pytest.mark.parametrize("host", INTERNAL_LITERALS)
def test_link_local_private_and_multicast_addresses_are_refused(project: ProjectHandle, host: str) -> None:
    _assert_refused(project, f"http://{host}/v1")


@pytest.mark.parametrize("scheme", ["file", "gopher", "ftp", "dict", "redis"])
def test_schemes_other_than_http_are_refused(project: ProjectHandle, scheme: str) -> None:
    with Listener() as target:
        url = "file:///etc/passwd" if scheme == "file" else f"{scheme}://127.0.0.1:{target.port}/"
        _assert_refused(project, url)
    assert not target.contacted


@pytest.mark.parametrize("url", ["not a url", "", "http://", "http://[::1", "http://host:99999/"])
def test_text_that_is_no_url_is_refused(project: ProjectHandle, url: str) -> None:
    _assert_refused(project, url)


def test_an_update_to_an_internal_url_is_refused_and_keeps_the_old_one(project: ProjectHandle, fake: FakeLLM) -> None:
    created = project.post("llm_configs", json=_config(fake.base_url)).get_json()
    with Listener() as target:
        res = project.put(f"llm_configs/{created['id']}", json=_config(f"http://127.0.0.1:{target.port}/v1"))
    assert res.status_code == 422 and "body.llm_base_url" in res.get_json()["detail"]
    assert not target.contacted
    assert project.get(f"llm_configs/{created['id']}").get_json()["llm_base_url"] == fake.base_url


def test_an_allowed_host_works_end_to_end(project: ProjectHandle, fake: FakeLLM) -> None:
    res = project.post("llm_configs", json=_config(fake.base_url))
    assert res.status_code == 201, res.get_data(as_text=True)
    config_id = res.get_json()["id"]
    template = project.post("prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "Hi"}]})
    collection = project.post("collections", json={"name": "C", "variables": [{"x": "1"}]})
    experiment = project.post(
        "experiments",
        json={
            "name": "E",
            "prompt_template_id": template.get_json()["id"],
            "collection_id": collection.get_json()["id"],
            "llm_config_id": config_id,
        },
    )
    assert experiment.status_code == 201, experiment.get_data(as_text=True)
    assert experiment.get_json()["llm_config"]["llm_base_url"] == fake.base_url


def test_the_workers_check_a_config_url_before_each_call_but_not_the_operators(app: Flask, fake: FakeLLM) -> None:
    settings = app.config["ASSAY_SETTINGS"]
    with Listener() as target:
        stored = LLMConfig(name="old", llm_model_name="m", llm_base_url=f"http://127.0.0.1:{target.port}/v1")
        policy = spec_for(stored, settings).outbound
        assert policy is not None
        with pytest.raises(OutboundRefused):
            check_url(stored.llm_base_url, policy)
        check_url(fake.base_url, policy)  # allowed by the test config
    assert not target.contacted
    assert spec_for(None, settings).outbound is None  # ASSAY_LLM_BASE_URL is the operator's own
