"""Studio pages on seeded experiments: lists, the experiment page with its filters and drawer, A/B
comparison, the library pages, and another project's ids answering 404."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import delete, select, update

from api.extensions import database
from models.orm import PromptResponse, Rating
from services.states import TERMINAL_STATES
from tests.conftest import ProjectHandle, make_project, recorded_statements
from tests.studio.conftest import Browser, seed


def rows(html: str) -> int:
    body = html.split('id="responses-data"', 1)[1].split("</tbody>", 1)[0]
    return body.count("data-drawer")


def test_experiment_list_shows_status_pass_rate_and_filters(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seed(studio_app, project.id, "Alpha", 20)
    seed(studio_app, project.id, "Beta", 10)
    html = browser.get("/studio/experiments").get_data(as_text=True)
    assert "Alpha" in html and "Beta" in html and "SUCCESS" in html and "%" in html
    only = browser.get("/studio/experiments?q=alp").get_data(as_text=True)
    assert "Alpha" in only and "Beta" not in only
    none = browser.get("/studio/experiments?status=running").get_data(as_text=True)
    assert "Alpha" not in none and "match these filters" in none
    by_name = browser.get("/studio/experiments?sort=name").get_data(as_text=True)
    assert by_name.index("Alpha") < by_name.index("Beta")
    assert browser.get("/studio/experiments?sort=bogus").status_code == 422
    by_rate = browser.get("/studio/experiments?sort=pass_rate").get_data(as_text=True)
    rates = {e["name"]: e["results"]["mean_all_ratings"]["yes"] for e in project.get("experiments").get_json()["items"]}
    best, worst = sorted(rates, key=rates.__getitem__, reverse=True)
    assert rates[best] > rates[worst] and by_rate.index(best) < by_rate.index(worst)


def test_experiment_page_summarises_and_paginates(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Big", 120)
    res = browser.get(f"/studio/experiments/{seeded.experiment_id}")
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "Pass rate per criterion" in html and "Criterion 1?" in html
    assert "RateLimitError: 429" in html  # the error summary
    assert re.search(r'<span class="n"[^>]*>120</span>', html)  # responses
    assert rows(html) == 5  # the test app's page size
    assert "120 in all · page 1 of 24" in html
    page_24 = browser.get(
        f"/studio/experiments/{seeded.experiment_id}/responses?page=24", headers={"X-Studio-Fragment": "1"}
    ).get_data(as_text=True)
    assert "<html" not in page_24 and rows(page_24) == 5


def count_of(browser: Browser, path: str) -> int:
    return int(re.search(r"(\d+) in all", browser.get(path).get_data(as_text=True)).group(1))  # type: ignore[union-attr]


# From services.synthetic.verdict on the 118 generated responses of "Filters" (2 failed to generate).
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", 2),
        ("status=all", 120),
        ("status=passed", 42),
        ("status=failing", 75),
        ("status=rating_errors", 3),
    ],
)
def test_response_filters(
    studio_app: Flask, browser: Browser, project: ProjectHandle, query: str, expected: int
) -> None:
    seeded = seed(studio_app, project.id, "Filters", 120)
    assert count_of(browser, f"/studio/experiments/{seeded.experiment_id}?{query}") == expected


def test_an_unrated_response_has_not_passed(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Filters", 120)
    with studio_app.app_context(), database().session() as session:
        response_id = session.scalars(
            select(PromptResponse.id).where(PromptResponse.experiment_id == seeded.experiment_id).order_by("id")
        ).all()[8]  # the first response that passes every criterion
        session.execute(delete(Rating).where(Rating.response_id == response_id))
    assert count_of(browser, f"/studio/experiments/{seeded.experiment_id}?status=passed") == 41
    assert count_of(browser, f"/studio/experiments/{seeded.experiment_id}?status=all") == 120


def test_failing_a_given_criterion(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Crit", 100)
    counts = []
    for criterion_id in seeded.criterion_ids:
        html = browser.get(f"/studio/experiments/{seeded.experiment_id}/responses?criterion={criterion_id}")
        counts.append(int(re.search(r"(\d+) in all", html.get_data(as_text=True)).group(1)))  # type: ignore[union-attr]
    assert counts[0] < counts[1] < counts[2]  # the synthetic criteria fail more and more often
    text = browser.get(f"/studio/experiments/{seeded.experiment_id}?q=Question+number+7%3F").get_data(as_text=True)
    assert "1 in all" in text


def test_drawer_shows_prompt_response_and_every_rating(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Drawer", 10)
    html = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    link = re.search(r'href="(/studio/experiments/\d+/responses/\d+)" data-drawer', html).group(1)  # type: ignore[union-attr]
    fragment = browser.get(link, headers={"X-Studio-Fragment": "1"}).get_data(as_text=True)
    assert "<html" not in fragment
    assert "Answer briefly: Question 0?" in fragment and "Answer 0 to question 0." in fragment
    assert fragment.count('class="rating"') == 3 and "Reason 0/2" in fragment
    assert "<html" in browser.get(link).get_data(as_text=True)  # without the script: a whole page


def test_compare_two_experiments(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    a = seed(studio_app, project.id, "A", 60)
    b = seed(studio_app, project.id, "Bee", 60, entries=a.entry_ids)  # another name shifts the verdicts
    html = browser.get(f"/studio/compare?a={a.experiment_id}&b={b.experiment_id}").get_data(as_text=True)
    assert "Pass rate difference per criterion" in html
    improved = int(re.search(r"(\d+) improved", html).group(1))  # type: ignore[union-attr]
    regressed = int(re.search(r"(\d+) regressed", html).group(1))  # type: ignore[union-attr]
    assert improved > 0 and regressed > 0
    assert "Answer 3 to question 3." in html
    unchanged = int(re.search(r"(\d+) unchanged", html).group(1))  # type: ignore[union-attr]
    assert improved + regressed + unchanged == 60 and "60 matched by input" in html
    same = browser.get(f"/studio/compare?a={a.experiment_id}&b={a.experiment_id}")
    assert same.status_code == 409


def test_library_pages(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    project.post("prompt_templates", json={"name": "Greeter", "messages": [{"role": "user", "content": "Hi {{n}}"}]})
    project.post("prompt_templates", json={"name": "Greeter", "messages": [{"role": "user", "content": "Hey {{n}}"}]})
    collection = project.post("collections", json={"name": "People"}).get_json()
    project.post(f"collections/{collection['id']}/entries", json={"input_values": {"n": "Ada"}})
    project.post("criterion_sets", json={"name": "Tone", "criteria": [{"criterion_str": "Is it polite?"}]})
    templates = browser.get("/studio/templates").get_data(as_text=True)
    assert "Greeter" in templates and "v2" in templates and "Hey {{n}}" in templates
    collections = browser.get("/studio/collections").get_data(as_text=True)
    assert "People" in collections
    entries = browser.get(f"/studio/collections/{collection['id']}").get_data(as_text=True)
    assert "Ada" in entries
    assert "Is it polite?" in browser.get("/studio/criterion-sets").get_data(as_text=True)


def test_another_projects_ids_are_404(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    other = make_project(studio_app, "Other")
    seeded = seed(studio_app, other.id, "Theirs", 5)
    eid, own = seeded.experiment_id, seed(studio_app, project.id, "Mine", 5).experiment_id
    for path in (
        f"/studio/experiments/{eid}",
        f"/studio/experiments/{eid}/responses",
        f"/studio/experiments/{eid}/export.csv",
        f"/studio/experiments/{eid}/stream",
    ):
        assert browser.get(path).status_code == 404, path
    for a, b in ((own, eid), (eid, own)):  # a foreign id on either side, next to a valid own one
        res = browser.get(f"/studio/compare?a={a}&b={b}")
        assert res.status_code == 404 and f"Experiment {eid} not found" in res.get_data(as_text=True)
    assert browser.post(f"/studio/experiments/{eid}/cancel").status_code == 303  # back with the reason
    assert "not found" in browser.get("/studio/experiments").get_data(as_text=True)
    assert "Theirs" not in browser.get("/studio/experiments").get_data(as_text=True)


def test_experiment_page_query_count_does_not_grow_with_rows(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    small = seed(studio_app, project.id, "Small", 5)
    large = seed(studio_app, project.id, "Large", 400)
    engine = studio_app.extensions["assay_db"].engine
    counts = []
    for seeded in (small, large):
        with recorded_statements(engine) as statements:
            assert browser.get(f"/studio/experiments/{seeded.experiment_id}").status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1] and counts[1] < 20


HUGE = 2**31  # one past PostgreSQL's INTEGER


@pytest.mark.parametrize(
    "path",
    [
        f"/studio/experiments/{HUGE}",
        f"/studio/experiments/{10**20}/responses",
        f"/studio/collections/{HUGE}",
        "/studio/no-such-page",
    ],
)
def test_ids_out_of_range_and_unknown_paths_are_a_404_page(browser: Browser, path: str) -> None:
    res = browser.get(path)
    assert res.status_code == 404 and res.mimetype == "text/html"
    assert "Back to the experiments" in res.get_data(as_text=True)
    assert "frame-ancestors 'none'" in res.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"/studio/experiments?page={HUGE}", "query.page"),
        ("/studio/experiments/{eid}?page=99999999999999999999", "query.page"),
        (f"/studio/experiments/{{eid}}?criterion={HUGE}", "query.criterion"),
        (f"/studio/compare?a={HUGE}&b=1", "query.a"),
        (f"/studio/experiments/progress?ids={{eid}}&ids={HUGE}", "query.ids.1"),
        ("/studio/criterion-sets?page=0", "query.page"),
    ],
)
def test_numbers_out_of_range_in_the_query_are_422_naming_the_field(
    studio_app: Flask, browser: Browser, project: ProjectHandle, query: str, field: str
) -> None:
    seeded = seed(studio_app, project.id, "Bounds", 3)
    res = browser.get(query.format(eid=seeded.experiment_id))
    assert res.status_code == 422 and field in res.get_data(as_text=True)


def test_text_search_matches_values_not_json(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Search", 10)
    with studio_app.app_context(), database().session() as session:
        first = session.scalars(
            select(PromptResponse).where(PromptResponse.experiment_id == seeded.experiment_id).order_by("id")
        ).first()
        assert first is not None
        first.messages = [{"role": "assistant", "content": 'Un café "noir", 100% arabica'}]
    url = f"/studio/experiments/{seeded.experiment_id}?q="
    assert count_of(browser, url + "caf%C3%A9") == 1  # stored JSON escapes it as caf\u00e9
    assert count_of(browser, url + "%22noir%22") == 1  # and quotes as \"
    assert count_of(browser, url + "100%25") == 1
    assert count_of(browser, url + "_") == 0  # a literal underscore, not LIKE's any-character
    assert count_of(browser, url + "0%25") == 1  # nor % a wildcard: only "100%" has "0%"
    assert count_of(browser, url + "assistant") == 0  # a role, not text anyone wrote
    assert count_of(browser, url + "question") == 10  # the input values: "Question number i?"


def test_compare_counts_a_fixed_generation_error_as_improved(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    a = seed(studio_app, project.id, "A", 10)
    b = seed(studio_app, project.id, "Bee", 10, entries=a.entry_ids)  # its first response passes all three
    url = f"/studio/compare?a={a.experiment_id}&b={b.experiment_id}"
    before = int(re.search(r"(\d+) improved", browser.get(url).get_data(as_text=True)).group(1))  # type: ignore[union-attr]
    with studio_app.app_context(), database().session() as session:
        first = session.scalars(
            select(PromptResponse).where(PromptResponse.experiment_id == a.experiment_id).order_by("id")
        ).first()
        assert first is not None
        first.error, first.messages = "APIConnectionError: refused", []
        session.execute(delete(Rating).where(Rating.response_id == first.id))
    html = browser.get(url).get_data(as_text=True)
    assert int(re.search(r"(\d+) improved", html).group(1)) == before + 1  # type: ignore[union-attr]
    improved = html.split('id="improved"', 1)[1].split("</section>", 1)[0]
    assert "Generation failed: APIConnectionError: refused" in improved and "Answer 0 to question 0." in improved


def stat(html: str, label: str) -> str:
    return re.search(rf'<span class="k">{label}</span><span class="n">([^<]*)</span>', html).group(1)  # type: ignore[union-attr]


def test_totals_agree_with_the_rest_results(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    one = seed(studio_app, project.id, "One", 1)
    two = seed(studio_app, project.id, "Two", 2)
    with studio_app.app_context(), database().session() as session:
        session.execute(
            update(PromptResponse)
            .where(PromptResponse.experiment_id == two.experiment_id, PromptResponse.entry_id == two.entry_ids[0])
            .values(duration_seconds=None)
        )
    html = browser.get(f"/studio/experiments/{one.experiment_id}").get_data(as_text=True)
    assert project.get(f"experiments/{one.experiment_id}").get_json()["results"]["experiment_duration_seconds"] is None
    assert stat(html, "Duration") == "0.0 s"  # the seeded run started and ended at once
    results = project.get(f"experiments/{two.experiment_id}").get_json()["results"]
    html = browser.get(f"/studio/experiments/{two.experiment_id}").get_data(as_text=True)
    assert results["mean_duration_seconds"] == pytest.approx(0.05)  # the missing duration counts as 0
    assert stat(html, "Mean response time") == "0.05 s"
    assert stat(html, "Tokens in / out") == "24 / 16" and results["mean_input_tokens"] == 12


def test_pages_tell_the_script_which_states_end_a_stream(browser: Browser) -> None:
    html = browser.get("/studio/experiments").get_data(as_text=True)
    listed = re.search(r'data-terminal-states="([^"]*)"', html)
    assert listed is not None and set(listed.group(1).split()) == {s.value for s in TERMINAL_STATES}
