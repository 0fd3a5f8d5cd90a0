"""Bodies the stack cannot hold are refused before validation: too deep or non-finite JSON is a 422
naming the field, text that is not JSON a 400, a chunked body past the limit a 413. Never a 500, and
nothing is written."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from flask import Flask

from api import create_app
from tests.conftest import ProjectHandle, make_project

INF = "1e309"  # past the float range: Python parses it to infinity


def _nested(depth: int, leaf: str = "1", open_: str = "[", close: str = "]") -> str:
    return open_ * depth + leaf + close * depth


def _nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _post_raw(project: ProjectHandle, path: str, text: str) -> object:
    return project.post(path, data=text, headers={"Content-Type": "application/json"})


def _collection(project: ProjectHandle) -> int:
    return project.post("collections", json={"name": "C"}).get_json()["id"]


TEMPLATE_MSG = '[{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize(
    ("path", "text", "field"),
    [
        ("collections", '{"name": "C", "variables": [{"v": ' + _nested(400) + "}]}", "body.variables.0.v"),
        ("collections", '{"name": "C", "environment_config": {"t": ' + INF + "}}", "body.environment_config.t"),
        ("prompt_templates", '{"name": "T", "messages": ' + _nested(100_000, TEMPLATE_MSG) + "}", "body"),
        (
            "prompt_templates",
            '{"name": "T", "messages": ' + TEMPLATE_MSG + ', "response_format_json_schema": {"max": ' + INF + "}}",
            "body.response_format_json_schema.max",
        ),
        (
            "prompt_templates",
            '{"name": "T", "messages": ' + TEMPLATE_MSG + ', "tools": [{"x": -' + INF + "}]}",
            "body.tools.0.x",
        ),
        (
            "llm_configs",
            '{"name": "L", "llm_model_name": "m", "custom_api_config": {"k": ' + INF + "}}",
            "body.custom_api_config.k",
        ),
        (
            "criterion_sets",
            '{"name": "S", "criteria": [{"criterion_str": "c", "evaluator": "json_schema", '
            '"params": {"schema": {"maximum": ' + INF + "}}}]}",
            "body.criteria.0.params.schema.maximum",
        ),
    ],
)
def test_deep_or_infinite_json_is_422_naming_the_field(
    project: ProjectHandle, path: str, text: str, field: str
) -> None:
    res = _post_raw(project, path, text)
    assert res.status_code == 422, res.get_data(as_text=True)[:300]
    assert res.get_json()["detail"].startswith(field)
    assert project.get(path).get_json()["count"] == 0


def test_deep_entries_and_batch_messages_are_422(project: ProjectHandle) -> None:
    collection_id = _collection(project)
    res = _post_raw(project, f"collections/{collection_id}/entries", '{"input_values": ' + _nested_objects(1001) + "}")
    assert res.status_code == 422 and res.get_json()["detail"].startswith("body")
    assert project.get(f"collections/{collection_id}/entries").get_json()["count"] == 0
    messages = '[{"role": "user", "content": ' + _nested(300, '"x"') + "}]"
    body = '{"prompt_response_ins": [{"template_variables_id": 1, "messages": ' + messages + "}]}"
    res = _post_raw(project, "responses/batches", body)
    assert res.status_code == 422 and "body.prompt_response_ins.0.messages.0.content" in res.get_json()["detail"]


def test_nesting_within_the_limit_is_stored(project: ProjectHandle) -> None:
    res = project.post("collections", json={"name": "C", "environment_config": {"deep": [[[[{"x": 1.5}]]]]}})
    assert res.status_code == 201
    assert res.get_json()["environment_config"] == {"deep": [[[[{"x": 1.5}]]]]}


@pytest.mark.parametrize("text", ['{"name": NaN}', '{"name": "C"', "not json", '{"name": Infinity}'])
def test_text_that_is_not_json_is_400(project: ProjectHandle, text: str) -> None:
    res = _post_raw(project, "collections", text)
    assert res.status_code == 400 and res.get_json()["detail"].startswith("Malformed JSON body")


@pytest.fixture
def small_limit_app(database_url: str) -> Iterator[Flask]:
    app = create_app({"database_url": database_url, "auto_migrate": False, "max_request_bytes": 2000})
    yield app
    app.extensions["assay_db"].dispose()


def _post_chunked(project: ProjectHandle, body: bytes) -> object:
    """A body without Content-Length, as a chunked request reaches the app from gunicorn."""
    return project.post(
        "collections",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_413(small_limit_app: Flask) -> None:
    project = make_project(small_limit_app, "P")
    res = _post_chunked(project, ('{"name": "C", "description": "' + "x" * 5000 + '"}').encode())
    assert res.status_code == 413, res.get_data(as_text=True)
    assert project.get("collections").get_json()["count"] == 0
    res = _post_chunked(project, b'{"name": "C"}')
    assert res.status_code == 201, res.get_data(as_text=True)
