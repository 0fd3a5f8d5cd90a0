"""The Studio in a real headless Chromium (Debian's, driven by Playwright; nothing is downloaded) against the
whole stack: log in, watch a running experiment advance without reloading, read a response's ratings,
compare two experiments, cancel a job, download exports, log out. Every request the browser makes must go
to the Assay server. Screenshots of each step are kept in artifacts/studio/ at the repository root."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Rest, Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "studio"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Two model calls at a time cluster-wide make a 40-entry run take several seconds at 300 ms a call.
STACK_ENV = {"ASSAY_SECRET_KEY": "studio-browser-test-secret-0123456789", "ASSAY_LLM_MAX_CONNECTIONS": "2"}


def _require(reason: str) -> None:
    """CI (ASSAY_NO_SKIPS=1) installs Chromium and Playwright; there a missing one is a failure."""
    if os.environ.get("ASSAY_NO_SKIPS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Studio:
    page: Any
    base_url: str
    requests: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def go(self, path: str) -> None:
        self.page.goto(self.base_url + path)


@pytest.fixture(scope="module")
def studio(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    if not CHROMIUM.exists():
        _require(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("the playwright package is missing (pip install -e '.[test]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"Studio screenshots: {ARTIFACTS}")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        studio = Studio(context.pages[0] if context.pages else context.new_page(), stack.base_url)
        context.on("request", lambda request: studio.requests.append(request.url))
        studio.page.set_default_timeout(20_000)
        try:
            yield studio
        finally:
            context.close()


def _setup_library(rest: Rest) -> dict[str, int]:
    """Two templates over one collection whose entries make B better on one input and worse on another
    (the fake judge says NO when the answer contains 'fail'), and a 40-entry collection for the slow run."""
    ids = {}
    for name, content in (("Prompt A", "Say {{a}}."), ("Prompt B", "Say {{b}}.")):
        body = {"name": name, "messages": [{"role": "user", "content": content}]}
        ids[name] = rest.post("prompt_templates", json=body).json()["id"]
    criteria = [{"criterion_str": "Is it on topic?"}, {"criterion_str": "Is it short?"}]
    ids["set"] = rest.post("criterion_sets", json={"name": "Checks", "criteria": criteria}).json()["id"]
    ids["pairs"] = rest.post("collections", json={"name": "Pairs"}).json()["id"]
    for values in ({"a": "x fail", "b": "x"}, {"a": "y", "b": "y fail"}, {"a": "z", "b": "z"}):
        rest.post(f"collections/{ids['pairs']}/entries", json={"input_values": values})
    ids["many"] = rest.post("collections", json={"name": "Many"}).json()["id"]
    for i in range(40):
        rest.post(f"collections/{ids['many']}/entries", json={"input_values": {"a": f"topic {i}", "b": "-"}})
    return ids


def _run(rest: Rest, name: str, template: int, collection: int, criterion_set: int) -> tuple[int, str]:
    body = {
        "name": name,
        "prompt_template_id": template,
        "collection_id": collection,
        "criterion_set_id": criterion_set,
        "generate": True,
    }
    created = rest.post("experiments", json=body).json()
    return created["id"], created["generation_task_id"]


def _wait_done(rest: Rest, experiment_id: int, task_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = rest.get(f"experiments/{experiment_id}/generation/{task_id}").json()["status"]
        if status == "SUCCESS":
            return
        time.sleep(0.2)
    raise AssertionError(f"experiment {experiment_id} did not finish")


def _progress_values(studio: Studio, seen_at_least: int, timeout: float = 30) -> list[int]:
    """Distinct values of the run's progress bar, read without reloading, until enough were seen."""
    values: list[int] = []
    deadline = time.monotonic() + timeout
    while len(values) < seen_at_least and time.monotonic() < deadline:
        value = int(studio.page.eval_on_selector("#run-progress", "e => e.value"))
        if not values or value != values[-1]:
            values.append(value)
        time.sleep(0.1)
    return values


def test_studio_in_a_real_browser(stack: Stack, studio: Studio) -> None:
    from playwright.sync_api import expect

    stack.fake.configure({"latency_ms": 0})
    project_id, key = stack.new_project(f"Studio {time.monotonic_ns()}")
    rest = Rest(stack.base_url, key, project_id)
    ids = _setup_library(rest)
    a = _run(rest, "Baseline", ids["Prompt A"], ids["pairs"], ids["set"])
    b = _run(rest, "Candidate", ids["Prompt B"], ids["pairs"], ids["set"])
    for experiment_id, task_id in (a, b):
        _wait_done(rest, experiment_id, task_id)
    page = studio.page

    # Log in with the project key; the session cookie is HttpOnly and Secure, even on http://127.0.0.1.
    studio.go("/studio/experiments")
    assert "/studio/login" in page.url, page.content()
    page.fill("#api_key", key)
    studio.shot("01-login")
    page.click("button[type=submit]")
    page.wait_for_url("**/studio/experiments")
    cookie = next(c for c in page.context.cookies() if c["name"] == "assay_studio")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert page.locator("#experiments").get_by_text("Baseline").is_visible()
    studio.shot("02-experiments")

    # A slow run: its page's progress bar advances from the stream, the page is never reloaded.
    stack.fake.configure({"latency_ms": 300})
    slow_id, _ = _run(rest, "Slow run", ids["Prompt A"], ids["many"], ids["set"])
    studio.go("/studio/experiments?status=running")
    row_progress = page.locator(f'tr[data-experiment-id="{slow_id}"] progress')
    # The list's own stream moves it (the first rating may wait for a worker's evaluator processes to start).
    expect(row_progress).not_to_have_attribute("value", "0", timeout=30_000)
    studio.shot("03-experiments-running")
    studio.go(f"/studio/experiments/{slow_id}")
    page.evaluate("window.__notReloaded = true")
    values = _progress_values(studio, seen_at_least=3)
    assert len(values) >= 3 and values == sorted(values), values
    assert page.evaluate("window.__notReloaded") is True
    assert "Started" in page.inner_text("#run-log")
    studio.shot("04-progress")

    # Cancel it while it runs: the Studio asks first.
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#cancel")
    page.wait_for_url(f"**/studio/experiments/{slow_id}")
    assert asked and asked[0].startswith("Cancel this run?")
    assert "The run was cancelled" in page.inner_text("main")
    assert page.inner_text("#run [data-role=status]") == "REVOKED"
    assert rest.get(f"experiments/{slow_id}").json()["generation_task_id"] is None
    studio.shot("05-cancelled")
    stack.fake.configure({"latency_ms": 0})

    # Open a response of the finished baseline and read its ratings with their reasoning.
    studio.go(f"/studio/experiments/{a[0]}")
    page.evaluate("window.__notReloaded = true")
    page.locator("a[data-drawer]").first.click()
    drawer = page.locator("#drawer")
    drawer.wait_for(state="visible")
    assert drawer.locator(".rating").count() == 2
    assert "Rule 1 (fail word)" in drawer.inner_text()  # entry 1 of the baseline says "x fail"
    assert "Say x fail." in drawer.inner_text()
    studio.shot("06-drawer")
    page.keyboard.press("Escape")
    drawer.wait_for(state="hidden")

    # Filter the table without reloading: responses failing the first criterion.
    page.select_option("#r-criterion", label="Is it on topic?")
    page.click("#responses-table button[type=submit]")
    expect(page.locator("#responses-data a[data-drawer]")).to_have_count(1)  # (CSP forbids wait_for_function)
    assert page.evaluate("window.__notReloaded") is True
    studio.shot("07-filtered")

    # A fragment the server refuses (a search longer than 200 characters: 422) is reported, not injected.
    page.fill("#r-q", "x" * 201)
    page.click("#responses-table button[type=submit]")
    expect(page.locator("#fetch-error")).to_contain_text("HTTP 422")
    expect(page.locator("#responses-data a[data-drawer]")).to_have_count(1)
    page.fill("#r-q", "")

    # Download both exports.
    for fmt in ("csv", "jsonl"):
        with page.expect_download() as download:
            page.click(f"#export-{fmt}")
        saved = ARTIFACTS / f"export.{fmt}"
        download.value.save_as(saved)
        text = saved.read_text()
        if fmt == "csv":
            table = list(csv.DictReader(io.StringIO(text)))
            # Rows follow the responses' ids, the order the model's concurrent answers were stored in.
            (failing,) = [row for row in table if row["a"] == "x fail"]
            assert len(table) == 3 and failing["Is it on topic? [verdict]"] == "NO"
            assert failing["Is it on topic? [reasoning]"].startswith("Rule 1")
        else:
            records = [json.loads(line) for line in text.splitlines()]
            assert len(records) == 3 and len(records[0]["ratings"]) == 2

    # Compare baseline and candidate.
    studio.go("/studio/compare")
    page.select_option("#cmp-a", value=str(a[0]))
    page.check(f'#cmp-others input[value="{b[0]}"]')
    page.click("form.filters button[type=submit]")
    page.locator("#criteria-diff").wait_for()
    counts = page.inner_text("#compare-counts")
    assert "1 improved" in counts and "1 regressed" in counts and "1 unchanged" in counts
    assert "Fake answer to: Say x." in page.inner_text("#improved")
    assert "Fake answer to: Say y fail." in page.inner_text("#regressed")
    studio.shot("08-compare")

    # The library pages.
    for path, text in (
        ("/studio/templates", "Prompt B"),
        ("/studio/collections", "Many"),
        ("/studio/criterion-sets", "Is it short?"),
    ):
        studio.go(path)
        assert text in page.inner_text("main")
    studio.shot("09-criterion-sets")

    # Log out: the pages ask for a login again.
    page.click("#logout")
    page.wait_for_url("**/studio/login")
    studio.go("/studio/experiments")
    assert "/studio/login" in page.url
    studio.shot("10-logged-out")

    server = urlsplit(stack.base_url).netloc
    foreign = [url for url in studio.requests if urlsplit(url).netloc != server]
    assert studio.requests and not foreign, foreign


def _live_values(studio: Studio, selector: str, final: str, timeout: float = 90) -> list[str]:
    """Distinct texts of `selector` until it shows `final`, read without reloading."""
    values: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = studio.page.inner_text(selector)
        if not values or text != values[-1]:
            values.append(text)
        if text == final:
            return values
        time.sleep(0.1)
    raise AssertionError(f"{selector} never showed {final}: {values}")


def _login(studio: Studio, key: str) -> None:
    studio.go("/studio/login")
    studio.page.fill("#api_key", key)
    studio.page.click("button[type=submit]")
    studio.page.wait_for_url("**/studio/experiments")


def _overflows(studio: Studio) -> int:
    """How far the page is wider than the viewport (0 when nothing sticks out)."""
    return int(studio.page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_studio_launch_review_compare_and_phone(stack: Stack, studio: Studio, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    stack.fake.configure({"latency_ms": 0})
    project_id, key = stack.new_project(f"Studio launch {time.monotonic_ns()}")
    rest = Rest(stack.base_url, key, project_id)
    for name, content in (("Prompt A", "Say {{a}}."), ("Prompt B", "Say {{b}}."), ("Prompt C", "Say {{c}}.")):
        rest.post("prompt_templates", json={"name": name, "messages": [{"role": "user", "content": content}]})
    page = studio.page
    _login(studio, key)

    # Upload a collection from a CSV file: B fixes the baseline's failures on 10 of 20 cases, C on 1.
    rows = ["a,b,c"] + [
        f"{'fail' if i < 12 else 'fine'} {i},{'fail' if i < 2 else 'fine'} {i},{'fail' if i < 11 else 'fine'} {i}"
        for i in range(20)
    ]
    upload = tmp_path / "cases.csv"
    upload.write_text("\n".join(rows) + "\n")
    studio.go("/studio/collections")
    page.fill("#upload-name", "Uploaded cases")
    page.set_input_files("#upload-file", str(upload))
    studio.shot("11-upload")
    page.click("#upload button[type=submit]")
    page.wait_for_url(re.compile(r".*/studio/collections/\d+$"))
    assert "20 in all" in page.inner_text("main") and "fail 0" in page.inner_text("main")

    # Launch an experiment from the form with new criteria; its page follows the run without a reload.
    stack.fake.configure({"latency_ms": 400})
    studio.go("/studio/experiments")
    page.click("#new-experiment")
    page.fill("#new-name", "Launched in the Studio")
    page.select_option("#new-template", label="Prompt A v1")
    page.select_option("#new-collection", label="Uploaded cases")
    page.fill("#new-criteria", "Is it right?\nIs it polite?")
    studio.shot("12-launch-form")
    page.click("#launch-submit")
    page.wait_for_url(re.compile(r".*/studio/experiments/\d+$"))
    baseline = int(page.url.rsplit("/", 1)[1])
    page.evaluate("window.__notReloaded = true")
    seen = _live_values(studio, "#stat-responses", "20")
    assert len(seen) >= 2 and [int(v) for v in seen] == sorted(int(v) for v in seen), seen
    expect(page.locator("#run-finished")).to_be_visible(timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#cancel")).to_have_count(0)  # no "Cancel run" once it ended
    expect(page.locator("#latency svg")).to_be_visible()
    expect(page.locator("#responses-data a[data-drawer]")).to_have_count(20)  # the table came live too
    assert page.inner_text("#run [data-role=status]") == "SUCCESS"
    studio.shot("13-live-finished")
    stack.fake.configure({"latency_ms": 0})

    # Override the judge on the first response (the fake judge said NO to "fail 0").
    page.locator("a[data-drawer]").first.click()
    drawer = page.locator("#drawer")
    drawer.wait_for(state="visible")
    first = drawer.locator(".rating").first
    first.locator("summary").click()
    first.locator("textarea").fill("It says fail, but that was the task")
    studio.shot("14-review")
    first.locator("button[data-verdict=YES]").click()
    page.wait_for_url(f"**/studio/experiments/{baseline}#agreement")
    agreement = page.locator("#agreement-table tbody tr").first
    expect(agreement).to_contain_text("1")
    assert "0 (0%)" in agreement.inner_text()  # one review, and it disagreed with the judge
    assert rest.get(f"experiments/{baseline}").json()["results"]["mean_all_ratings"]["yes"] == 0.4  # still the judge's
    studio.shot("15-agreement")

    # Two more experiments, then the three side by side.
    set_id = rest.get(f"experiments/{baseline}").json()["criterion_set"]["id"]
    collection_id = rest.get(f"experiments/{baseline}").json()["collection"]["id"]
    templates = {t["name"]: t["id"] for t in rest.get("prompt_templates").json()["items"]}
    others = [
        _run(rest, name, templates[f"Prompt {x}"], collection_id, set_id)
        for name, x in (("Fixes ten", "B"), ("Fixes one", "C"))
    ]
    for experiment_id, task_id in others:
        _wait_done(rest, experiment_id, task_id)
    studio.go("/studio/compare")
    page.select_option("#cmp-a", value=str(baseline))
    for experiment_id, _ in others:
        page.check(f'#cmp-others input[value="{experiment_id}"]')
    page.click("form.compare-form button[type=submit]")
    page.locator("#verdicts-table").wait_for()
    better, same = (page.locator(f'#verdicts-table tr.overall[data-pair="{i}"] [data-role=verdict]') for i, _ in others)
    expect(better).to_have_text("B better")
    expect(same).to_have_text("no detectable difference at n=20")
    assert page.locator("#case-matrix tbody tr").count() == 10  # the cases where any of the three differ
    studio.shot("16-compare-three")

    # A phone's width: nothing sticks out sideways; wide tables scroll inside themselves.
    page.set_viewport_size({"width": 390, "height": 844})
    assert _overflows(studio) == 0
    studio.shot("17-compare-390px")
    studio.go(f"/studio/experiments/{baseline}")
    assert _overflows(studio) == 0
    studio.shot("18-experiment-390px")
    page.set_viewport_size({"width": 1280, "height": 900})
