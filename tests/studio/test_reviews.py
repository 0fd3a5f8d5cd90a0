"""Reviewing in the Studio: the drawer's form confirms or overrides a verdict with a note, the drawer and
the agreement card show it, and the judge's verdict is what the page's pass rate still counts."""

from __future__ import annotations

from flask import Flask

from tests.api.test_reviews import ratings_of
from tests.conftest import ProjectHandle
from tests.studio.conftest import Browser, seed, set_verdicts


def test_override_from_the_drawer(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Drawer", 4, n_criteria=1)
    set_verdicts(studio_app, seeded.experiment_id, lambda i, k: True)
    rating_id, response_id, _ = ratings_of(studio_app, seeded.experiment_id)[0]
    page = f"/studio/experiments/{seeded.experiment_id}"
    drawer = browser.get(f"{page}/responses/{response_id}", headers={"X-Studio-Fragment": "1"}).get_data(True)
    assert "Confirm YES" in drawer and "Override: NO" in drawer
    res = browser.post(f"{page}/ratings/{rating_id}/review", {"verdict": "NO", "note": "Too vague", "reviewer": "Bo"})
    assert res.status_code == 303 and res.headers["Location"].endswith("#agreement")
    drawer = browser.get(f"{page}/responses/{response_id}", headers={"X-Studio-Fragment": "1"}).get_data(True)
    assert "overrode the judge" in drawer and "Too vague" in drawer and "Reviewer Bo" in drawer
    html = browser.get(page).get_data(as_text=True)
    card = html.split('id="agreement"', 1)[1].split("</section>", 1)[0]
    assert '<tr data-criterion="Criterion 1?"><td>Criterion 1?</td><td>1</td><td>0 (0%)</td>' in card
    assert "100%" in html  # the pass rate is still the judge's 4 of 4


def test_review_form_is_checked(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Checked", 2, n_criteria=1)
    other = seed(studio_app, project.id, "Other", 2, n_criteria=1)
    rating_id = ratings_of(studio_app, seeded.experiment_id)[0][0]
    bad = browser.post(f"/studio/experiments/{seeded.experiment_id}/ratings/{rating_id}/review", {"verdict": "?"})
    assert bad.status_code == 303  # back to the page with the reason
    html = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    assert "form.verdict" in html
    wrong = browser.post(f"/studio/experiments/{other.experiment_id}/ratings/{rating_id}/review", {"verdict": "NO"})
    assert wrong.status_code == 303
    untouched = browser.get(f"/studio/experiments/{other.experiment_id}").get_data(as_text=True)
    assert "No verdict has been reviewed yet" in untouched
    no_token = browser.client.post(f"/studio/experiments/{seeded.experiment_id}/ratings/{rating_id}/review")
    assert no_token.status_code == 403
