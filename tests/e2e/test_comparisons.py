"""Comparisons through the whole stack: three experiments run by the workers against the fake model,
whose judge says NO to an answer containing "fail", so each test case's verdict is scripted by its input.
B fixes 20 of the baseline's 24 failing cases (a real gain); C fixes 2 (91% -> 95%-like noise). The
verdicts are read through REST and through the Studio."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from tests.e2e.conftest import Rest, Stack

pytestmark = pytest.mark.e2e
# requests keeps a Secure cookie for https only; the Studio's cookie flag is what lets it log in here.
STACK_ENV = {"ASSAY_SECRET_KEY": "comparisons-e2e-secret-0123456789abcdef", "ASSAY_STUDIO_SECURE_COOKIE": "false"}
CASES = 44


def _values(i: int) -> dict[str, str]:
    def word(fails: bool) -> str:
        return f"fail {i}" if fails else f"fine {i}"

    return {"a": word(i < 24), "b": word(i < 4), "c": word(i < 22)}


def _library(rest: Rest) -> dict[str, int]:
    ids = {}
    for column in "abc":
        body = {"name": f"Prompt {column}", "messages": [{"role": "user", "content": f"Say {{{{{column}}}}}."}]}
        ids[column] = rest.post("prompt_templates", json=body).json()["id"]
    criteria = [{"criterion_str": "Is it right?"}, {"criterion_str": "Is it polite?"}]
    ids["set"] = rest.post("criterion_sets", json={"name": "Checks", "criteria": criteria}).json()["id"]
    ids["cases"] = rest.post("collections", json={"name": "Cases"}).json()["id"]
    rows = "\n".join(json.dumps(_values(i)) for i in range(CASES))
    upload = rest.post(f"collections/{ids['cases']}/entries/batches", files={"file": ("cases.jsonl", rows)})
    assert upload.status_code == 201, upload.text
    return ids


def _run(rest: Rest, name: str, template: int, ids: dict[str, int]) -> int:
    body = {
        "name": name,
        "prompt_template_id": template,
        "collection_id": ids["cases"],
        "criterion_set_id": ids["set"],
        "generate": True,
    }
    created = rest.post("experiments", json=body).json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = rest.get(f"experiments/{created['id']}/generation/{created['generation_task_id']}").json()
        if status["status"] == "SUCCESS":
            return created["id"]
        assert status["status"] in {"PENDING", "STARTED"}, status
        time.sleep(0.3)
    raise AssertionError(f"{name} did not finish")


def _studio_compare(stack: Stack, key: str, query: str) -> str:
    browser = requests.Session()
    login = browser.get(f"{stack.base_url}/studio/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    res = browser.post(f"{stack.base_url}/studio/login", data={"csrf_token": csrf, "api_key": key}, timeout=30)
    assert res.ok and "/studio/experiments" in res.url
    page = browser.get(f"{stack.base_url}/studio/compare?{query}", timeout=30)
    assert page.status_code == 200
    return page.text


def test_significant_and_insignificant_differences(stack: Stack) -> None:
    stack.fake.configure({"latency_ms": 0})
    project_id, key = stack.new_project(f"Compare {time.monotonic_ns()}")
    rest = Rest(stack.base_url, key, project_id)
    ids = _library(rest)
    a, b, c = (_run(rest, f"Run {col}", ids[col], ids) for col in "abc")

    res = rest.get(f"experiments/compare?ids={a},{b},{c}")
    assert res.status_code == 200, res.text
    body = res.json()
    rates = {e["id"]: e["by_criterion"]["Is it right?"] for e in body["experiments"]}
    assert [(rates[i]["successes"], rates[i]["n"]) for i in (a, b, c)] == [(20, 44), (40, 44), (22, 44)]
    gain, noise = body["pairs"]
    assert (gain["b_id"], noise["b_id"]) == (b, c)
    assert [t["verdict"] for t in gain["criteria"]] == ["B better", "B better"]
    assert gain["overall"]["verdict_text"] == "B better"
    assert [t["verdict_text"] for t in noise["criteria"]] == ["no detectable difference at n=44"] * 2
    assert noise["criteria"][0]["p_value"] == 0.5  # exact McNemar: 2 cases fixed, none broken
    assert noise["overall"]["verdict_text"] == "no detectable difference at n=44"

    html = _studio_compare(stack, key, f"a={a}&ids={b}&ids={c}")
    rows = {
        pair: re.findall(r'data-role="verdict">([^<]*)<', html.split(f'data-pair="{pair}"', 1)[1].split("</tbody>")[0])
        for pair in (b, c)
    }
    assert rows[b][0] == "B better"
    assert rows[c][0] == "no detectable difference at n=44"
    assert "45%" in html and "91%" in html  # 20 and 40 of 44 with their intervals beside them


def test_judging_three_times_stores_every_answer(stack: Stack) -> None:
    stack.fake.configure({"latency_ms": 0})
    project_id, key = stack.new_project(f"Trials {time.monotonic_ns()}")
    rest = Rest(stack.base_url, key, project_id)
    ids = _library(rest)
    stack.fake.reset()
    body = {
        "name": "Thrice",
        "prompt_template_id": ids["a"],
        "collection_id": ids["cases"],
        "criterion_set_id": ids["set"],
        "generate": True,
        "judge_trials": 3,
    }
    created = rest.post("experiments", json=body).json()
    assert created["judge_trials"] == 3
    deadline = time.monotonic() + 120
    while (
        rest.get(f"experiments/{created['id']}/generation/{created['generation_task_id']}").json()["status"]
        != "SUCCESS"
    ):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.3)
    assert stack.fake.stats()["by_kind"]["judge"] == 3 * 2 * CASES  # three answers per rating
    results = rest.get(f"experiments/{created['id']}").json()["results"]
    assert results["mean_all_ratings"]["yes"] == 20 / 44  # the majority is the rating the SDK sees
    consistency = rest.get(f"experiments/{created['id']}/consistency").json()
    assert [(c["ratings"], c["unanimous"], c["flaky"]) for c in consistency["criteria"]] == [(CASES, CASES, False)] * 2
