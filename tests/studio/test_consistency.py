"""Judge consistency (Assay extension): `judge_trials` must be odd; the agreement of each criterion's
trials with their majority, and a flaky flag below 90%, in REST and on the Studio's experiment page."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select, update

from api.extensions import database
from models.orm import Experiment, PromptResponse, Rating
from tests.conftest import ProjectHandle
from tests.studio.conftest import Browser, seed


def _trials(*ratings: str) -> list[dict[str, str]]:
    return [{"rating": r, "reasoning": f"because {i}"} for i, r in enumerate(ratings)]


def _script(app: Flask, experiment_id: int, per_criterion: dict[int, list[list[dict[str, str]]]]) -> None:
    """Give the k-th criterion's ratings, in response order, the given trials (and their majority)."""
    with app.app_context(), database().session() as session:
        session.execute(update(Experiment).where(Experiment.id == experiment_id).values(judge_trials=3))
        ratings = session.scalars(
            select(Rating)
            .join(PromptResponse, PromptResponse.id == Rating.response_id)
            .where(PromptResponse.experiment_id == experiment_id)
            .order_by(Rating.criterion_id, Rating.response_id)
        ).all()
        by_criterion: dict[int, list[Rating]] = {}
        for rating in ratings:
            by_criterion.setdefault(rating.criterion_id, []).append(rating)
        for k, (_, rows) in enumerate(sorted(by_criterion.items())):
            for rating, trials in zip(rows, per_criterion.get(k, []), strict=False):
                yes = sum(t["rating"] == "YES" for t in trials)
                rating.trials, rating.rating, rating.error = trials, "YES" if yes * 2 > len(trials) else "NO", None


def test_consistency_flags_a_criterion_whose_answers_disagree(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Trials", 4, n_criteria=2)
    steady = [_trials("YES", "YES", "YES")] * 3 + [_trials("NO", "NO", "NO")]
    shaky = [_trials("YES", "NO", "YES"), _trials("NO", "YES", "NO"), _trials("YES", "YES", "YES")] * 2
    _script(studio_app, seeded.experiment_id, {0: steady, 1: shaky[:4]})
    body = project.get(f"experiments/{seeded.experiment_id}/consistency").get_json()
    assert body["judge_trials"] == 3 and body["flaky_below"] == 0.9
    stable, flaky = body["criteria"]
    assert (stable["ratings"], stable["unanimous"], stable["agreement"], stable["flaky"]) == (4, 4, 1.0, False)
    assert (flaky["ratings"], flaky["unanimous"]) == (4, 1)
    assert flaky["agreement"] == pytest.approx((2 / 3 + 2 / 3 + 1 + 2 / 3) / 4) and flaky["flaky"] is True
    html = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    card = html.split('id="consistency"', 1)[1].split("</section>", 1)[0]
    assert card.count('data-role="flaky"') == 1 and "Criterion 2?" in card.split('data-role="flaky"')[0]


def test_judge_trials_must_be_odd(project: ProjectHandle) -> None:
    template = project.post("prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "x"}]})
    collection = project.post("collections", json={"name": "C"}).get_json()["id"]
    body = {"name": "E", "prompt_template_id": template.get_json()["id"], "collection_id": collection}
    res = project.post("experiments", json={**body, "judge_trials": 2})
    assert res.status_code == 422 and "body.judge_trials" in res.get_json()["detail"]
    made = project.post("experiments", json={**body, "judge_trials": 3})
    assert made.status_code == 201 and made.get_json()["judge_trials"] == 3
    assert project.get("experiments").get_json()["count"] == 1
