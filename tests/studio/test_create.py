"""Creating from the Studio: upload a collection from a CSV or JSONL file, then create and launch an
experiment on it (the run's job is queued like the REST API's); bad input is refused naming the field."""

from __future__ import annotations

import io

from flask import Flask

from tests.conftest import ProjectHandle
from tests.studio.conftest import Browser


def upload(browser: Browser, name: str, filename: str, content: bytes):  # type: ignore[no-untyped-def]
    browser.get("/studio/collections")
    data = {"name": name, "file": (io.BytesIO(content), filename)}
    return browser.post("/studio/collections/upload", data, content_type="multipart/form-data")


def test_upload_a_csv_and_a_jsonl_collection(browser: Browser, project: ProjectHandle) -> None:
    res = upload(browser, "From CSV", "cases.csv", b'topic,level\nentropy,easy\n"recursion, deep",hard\n')
    assert res.status_code == 303 and "/studio/collections/" in res.headers["Location"]
    collection = next(c for c in project.get("collections").get_json()["items"] if c["name"] == "From CSV")
    entries = project.get(f"collections/{collection['id']}/entries").get_json()["items"]
    assert [e["input_values"] for e in entries] == [
        {"topic": "entropy", "level": "easy"},
        {"topic": "recursion, deep", "level": "hard"},
    ]
    assert upload(browser, "From JSONL", "cases.jsonl", b'{"q": "a"}\n{"q": "b"}\n').status_code == 303
    names = [c["name"] for c in project.get("collections").get_json()["items"]]
    assert "From JSONL" in names
    html = browser.get(res.headers["Location"]).get_data(as_text=True)
    assert "recursion, deep" in html


def test_bad_uploads_are_refused_and_nothing_is_written(browser: Browser, project: ProjectHandle) -> None:
    res = upload(browser, "Broken", "cases.jsonl", b'{"q": "a"}\nnot json\n')
    assert res.status_code == 303 and res.headers["Location"].endswith("/studio/collections")
    html = browser.get("/studio/collections").get_data(as_text=True)
    assert "file line 2: invalid JSON" in html
    assert upload(browser, "Ragged", "cases.csv", b"a,b\n1,2,3\n").status_code == 303
    assert "more values than the header" in browser.get("/studio/collections").get_data(as_text=True)
    assert project.get("collections").get_json()["count"] == 0


def _library(project: ProjectHandle) -> tuple[int, int]:
    body = {"name": "Ask", "messages": [{"role": "user", "content": "Answer {{q}}"}]}
    template = project.post("prompt_templates", json=body).get_json()["id"]
    collection = project.post("collections", json={"name": "Qs", "variables": [{"q": "one"}, {"q": "two"}]})
    return template, collection.get_json()["id"]


def test_create_and_launch_an_experiment_with_new_criteria(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    template, collection = _library(project)
    form = browser.get("/studio/experiments/new").get_data(as_text=True)
    assert "Ask v1" in form and "Qs" in form
    res = browser.post(
        "/studio/experiments/new",
        {
            "name": "Launched",
            "prompt_template": str(template),
            "collection": str(collection),
            "criterion_set": "",
            "criteria": "Is it right?\n\n  Is it short?  \n",
            "llm_config": "",
            "n_epochs": "2",
            "judge_trials": "3",
        },
    )
    assert res.status_code == 303
    experiment_id = int(res.headers["Location"].rsplit("/", 1)[1])
    experiment = project.get(f"experiments/{experiment_id}").get_json()
    assert experiment["name"] == "Launched" and experiment["n_epochs"] == 2 and experiment["judge_trials"] == 3
    assert [c["criterion_str"] for c in experiment["criterion_set"]["criteria"]] == ["Is it right?", "Is it short?"]
    assert experiment["generation_task_id"]  # its run was created (and queued)
    page = browser.get(res.headers["Location"]).get_data(as_text=True)
    assert "The experiment was created and its run started." in page


def test_launch_refuses_missing_criteria_and_clashing_names(browser: Browser, project: ProjectHandle) -> None:
    template, collection = _library(project)
    form = {"name": "X", "prompt_template": str(template), "collection": str(collection)}
    browser.get("/studio/experiments/new")
    res = browser.post("/studio/experiments/new", form)
    assert res.status_code == 303 and res.headers["Location"].endswith("/studio/experiments/new")
    assert "form.criteria" in browser.get("/studio/experiments/new").get_data(as_text=True)
    assert project.get("experiments").get_json()["count"] == 0
    res = browser.post("/studio/experiments/new", {**form, "n_epochs": "0"})
    assert "form.n_epochs" in browser.get("/studio/experiments/new").get_data(as_text=True)
    browser.post("/studio/experiments/new", {**form, "criteria": "Ok?", "judge_trials": "2"})
    assert "form.judge_trials" in browser.get("/studio/experiments/new").get_data(as_text=True)
    assert browser.post("/studio/experiments/new", {**form, "criteria": "Ok?"}).status_code == 303
    browser.post("/studio/experiments/new", {**form, "criteria": "Ok?"})
    assert "already exists" in browser.get("/studio/experiments/new").get_data(as_text=True)
    assert project.get("experiments").get_json()["count"] == 1
