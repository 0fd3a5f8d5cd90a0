"""The Studio's compare page: intervals and verdicts for up to 8 experiments, the per-case matrix that
shows only the cases they disagree on, and the same numbers as the REST comparison."""

from __future__ import annotations

import re

from flask import Flask

from tests.conftest import ProjectHandle
from tests.studio.conftest import Browser, seed, two_experiments


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"', 1)[1].split("</section>", 1)[0]


def verdict_of(html: str, criterion: str) -> str:
    row = html.split(f'data-criterion="{criterion}"', 1)[1].split("</tr>", 1)[0]
    return re.search(r'data-role="verdict">([^<]*)<', row).group(1)  # type: ignore[union-attr]


def test_compare_page_shows_intervals_and_verdicts(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    a, b = two_experiments(studio_app, project)
    html = browser.get(f"/studio/compare?a={a}&ids={b}").get_data(as_text=True)
    rates = section(html, "rates")
    assert "91%" in rates and "79%–96%" in rates  # 40 of 44 with its Wilson interval
    assert verdict_of(html, "Criterion 1?") == "no detectable difference at n=44"
    assert verdict_of(html, "Criterion 2?") == "B better"
    rest = project.get(f"experiments/compare?ids={a},{b}").get_json()["pairs"][0]
    assert [t["verdict_text"] for t in rest["criteria"]] == ["no detectable difference at n=44", "B better"]
    overall = section(html, "verdicts").split('class="overall"', 1)[1].split("</tr>", 1)[0]
    assert "B better" in overall and "n=44" in overall
    assert "improved" in html  # two experiments also list the inputs that changed


def test_case_matrix_keeps_only_disagreements_unless_asked(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    a, b = two_experiments(studio_app, project)
    base = f"/studio/compare?a={a}&ids={b}"
    first = section(browser.get(base + "&criterion=Criterion+1%3F").get_data(as_text=True), "matrix")
    assert "2 of 44 test cases disagree" in first and first.count("data-entry=") == 2
    second = section(browser.get(base + "&criterion=Criterion+2%3F").get_data(as_text=True), "matrix")
    assert second.count("data-entry=") == 20
    everything = section(browser.get(base + "&criterion=Criterion+1%3F&show=all").get_data(as_text=True), "matrix")
    assert everything.count("data-entry=") == 44
    assert "Question number 2?" in first and "Question number 0?" not in first  # B fixes cases 2 and 3


def test_compare_page_takes_eight_and_refuses_nine(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    a = seed(studio_app, project.id, "E0", 8, n_criteria=1)
    others = [seed(studio_app, project.id, f"E{i}", 8, 1, a.entry_ids).experiment_id for i in range(1, 9)]
    query = "&".join(f"ids={i}" for i in others[:7])
    html = browser.get(f"/studio/compare?a={a.experiment_id}&{query}").get_data(as_text=True)
    verdicts = section(html, "verdicts")
    assert verdicts.count('class="overall"') == 7
    assert all(f'data-pair="{i}"' in verdicts for i in others[:7])
    assert section(html, "matrix").count('<th scope="col" class="crit">') == 8
    assert 'id="compare-counts"' not in html  # the improved/regressed lists are for two only
    nine = browser.get(f"/studio/compare?a={a.experiment_id}&{query}&ids={others[7]}")
    assert nine.status_code == 422


def test_choosing_only_the_baseline_asks_for_more(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    a = seed(studio_app, project.id, "Solo", 3, n_criteria=1)
    html = browser.get(f"/studio/compare?a={a.experiment_id}").get_data(as_text=True)
    assert "Choose at least one more experiment" in html and 'id="rates"' not in html
