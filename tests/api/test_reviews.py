"""Human review (Assay extension): a person's verdict is stored beside the judge's, never replacing it;
the SDK's ratings and the results stay the judge's; agreement per criterion is Cohen's kappa with counts."""

from __future__ import annotations

import csv
import io
import json

import pytest
from flask import Flask
from sqlalchemy import select

from api.extensions import database
from models.orm import PromptResponse, Rating
from tests.conftest import ProjectHandle
from tests.studio.conftest import seed, set_verdicts


def ratings_of(app: Flask, experiment_id: int) -> list[tuple[int, int, str | None]]:
    """(rating id, response id, judge's verdict) of the first criterion, in response order."""
    with app.app_context(), database().session() as session:
        rows = session.execute(
            select(Rating.id, Rating.response_id, Rating.rating)
            .join(PromptResponse, PromptResponse.id == Rating.response_id)
            .where(PromptResponse.experiment_id == experiment_id)
            .order_by(Rating.response_id, Rating.criterion_id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_review_sits_beside_the_judges_verdict(app: Flask, project: ProjectHandle) -> None:
    seeded = seed(app, project.id, "Reviewed", 4, n_criteria=1)
    set_verdicts(app, seeded.experiment_id, lambda i, k: i % 2 == 0)  # YES, NO, YES, NO
    (r0, resp0, judge0), *_ = ratings_of(app, seeded.experiment_id)
    before = project.get(f"experiments/{seeded.experiment_id}").get_json()["results"]
    res = project.put(f"ratings/{r0}/review", json={"verdict": "NO", "note": "Misses the point", "reviewer": "Ann"})
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["verdict"] == "NO" and res.get_json()["note"] == "Misses the point"
    sdk_view = project.get(f"ratings?prompt_response_id={resp0}").get_json()["items"]
    assert [r["rating"] for r in sdk_view] == [judge0] == ["YES"]  # the judge's, as the SDK reads it
    assert project.get(f"experiments/{seeded.experiment_id}").get_json()["results"] == before
    again = project.put(f"ratings/{r0}/review", json={"verdict": "YES"})  # replaced, not added
    assert again.get_json()["id"] == res.get_json()["id"] and again.get_json()["note"] == ""


def test_agreement_per_criterion_is_cohens_kappa_with_counts(app: Flask, project: ProjectHandle) -> None:
    seeded = seed(app, project.id, "Kappa", 10, n_criteria=1)
    set_verdicts(app, seeded.experiment_id, lambda i, k: i < 5)  # the judge: 5 YES then 5 NO
    ratings = ratings_of(app, seeded.experiment_id)
    human = ["YES", "YES", "YES", "YES", "NO", "NO", "NO", "NO", "NO", "YES"]  # 2 disagreements of 10
    for (rating_id, _, _), verdict in zip(ratings, human, strict=True):
        assert project.put(f"ratings/{rating_id}/review", json={"verdict": verdict}).status_code == 200
    body = project.get(f"experiments/{seeded.experiment_id}/reviews").get_json()
    (criterion,) = body["criteria"]
    agreement = criterion["agreement"]
    assert (agreement["n"], agreement["agreed"]) == (10, 8)
    assert (agreement["judge_yes_human_no"], agreement["judge_no_human_yes"]) == (1, 1)
    assert agreement["kappa"] == pytest.approx(0.6)  # po 0.8, pe 0.5
    assert len(body["reviews"]) == 10 and body["reviews"][4] == {
        "rating_id": ratings[4][0],
        "response_id": ratings[4][1],
        "criterion": "Criterion 1?",
        "judge": "YES",
        "human": "NO",
        "note": "",
        "reviewer": "",
    }


def test_reviews_are_exported_beside_the_verdicts(app: Flask, project: ProjectHandle) -> None:
    seeded = seed(app, project.id, "Exported", 3, n_criteria=1)
    set_verdicts(app, seeded.experiment_id, lambda i, k: True)
    rating_id = ratings_of(app, seeded.experiment_id)[1][0]
    project.put(f"ratings/{rating_id}/review", json={"verdict": "NO", "note": "=not really"})
    table = list(csv.DictReader(io.StringIO(project.get(f"experiments/{seeded.experiment_id}/export").get_data(True))))
    assert [row["Criterion 1? [verdict]"] for row in table] == ["YES", "YES", "YES"]
    assert [row["Criterion 1? [human verdict]"] for row in table] == ["", "NO", ""]
    assert table[1]["Criterion 1? [human note]"] == "'=not really"  # quoted like every cell
    lines = project.get(f"experiments/{seeded.experiment_id}/export?format=jsonl").get_data(as_text=True)
    records = [json.loads(line) for line in lines.splitlines()]
    assert records[1]["ratings"][0]["review"] == {"verdict": "NO", "note": "=not really", "reviewer": ""}
    assert records[0]["ratings"][0]["review"] is None


def test_review_input_is_checked(app: Flask, project: ProjectHandle, other_project: ProjectHandle) -> None:
    seeded = seed(app, project.id, "Checked", 2, n_criteria=1)
    rating_id = ratings_of(app, seeded.experiment_id)[0][0]
    bad = project.put(f"ratings/{rating_id}/review", json={"verdict": "MAYBE"})
    assert bad.status_code == 422 and "body.verdict" in bad.get_json()["detail"]
    assert other_project.put(f"ratings/{rating_id}/review", json={"verdict": "NO"}).status_code == 404
    assert project.delete(f"ratings/{rating_id}/review").status_code == 404  # nothing to withdraw yet
    project.put(f"ratings/{rating_id}/review", json={"verdict": "NO"})
    assert project.delete(f"ratings/{rating_id}/review").status_code == 204
    assert project.get(f"experiments/{seeded.experiment_id}/reviews").get_json()["reviews"] == []
