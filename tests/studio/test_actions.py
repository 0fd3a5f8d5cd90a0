"""Studio actions and live updates: cancel, retry failed, and the session-authorised SSE streams."""

from __future__ import annotations

import json

from flask import Flask
from sqlalchemy import distinct, event, func, select

from api.extensions import database
from models.orm import Job, PromptResponse, Rating
from services import studio
from services.states import TaskState
from tests.conftest import ProjectHandle
from tests.studio.conftest import Browser, seed


def events(body: str) -> list[dict]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def test_experiment_stream_needs_the_session_and_ends_with_the_job(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Streamed", 10)
    url = f"/studio/experiments/{seeded.experiment_id}/stream"
    anonymous = studio_app.test_client().get(url, headers={"Accept": "text/event-stream"})
    assert anonymous.status_code == 401
    res = browser.get(url, headers={"Accept": "text/event-stream"})
    assert res.mimetype == "text/event-stream"
    (last,) = events(res.get_data(as_text=True))
    assert last["state"] == "SUCCESS" and last["completed_responses"] == 10 and last["total_responses"] == 10


def test_list_progress_stream(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Listed", 4)
    res = browser.get(f"/studio/experiments/progress?ids={seeded.experiment_id}&ids=999999")
    (event,) = events(res.get_data(as_text=True))
    assert event["experiments"] == {
        str(seeded.experiment_id): {
            "status": "SUCCESS",
            "completed_responses": 4,
            "completed_ratings": 4,
            "total_responses": 4,
        }
    }


def _set_job_status(app: Flask, experiment_id: int, status: TaskState) -> None:
    with app.app_context(), database().session() as session:
        job = session.query(Job).filter_by(experiment_id=experiment_id).one()
        job.status = status


def test_cancel_a_running_job(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Running", 5)
    _set_job_status(studio_app, seeded.experiment_id, TaskState.STARTED)
    page = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    assert 'id="cancel"' in page
    res = browser.post(f"/studio/experiments/{seeded.experiment_id}/cancel")
    assert res.status_code == 303
    after = browser.get(res.headers["Location"]).get_data(as_text=True)
    assert "The run was cancelled" in after and "REVOKED" in after and 'id="cancel"' not in after
    status = project.get(f"experiments/{seeded.experiment_id}").get_json()
    assert status["generation_task_id"] is None
    again = browser.post(f"/studio/experiments/{seeded.experiment_id}/cancel")
    assert "has no running generation" in browser.get(again.headers["Location"]).get_data(as_text=True)


def test_retry_starts_one_job_for_the_failed_responses_and_ratings(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Retry", 100)
    page = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    assert "Retry 2 failed" in page
    with studio_app.app_context(), database().session() as session:
        rating_errors = session.scalar(
            select(func.count(distinct(Rating.response_id)))
            .join(PromptResponse, PromptResponse.id == Rating.response_id)
            .where(PromptResponse.experiment_id == seeded.experiment_id, Rating.error.is_not(None))
        )
    res = browser.post(f"/studio/experiments/{seeded.experiment_id}/retry")
    assert "Retrying: failed responses are regenerated" in browser.get(res.headers["Location"]).get_data(as_text=True)
    with studio_app.app_context(), database().session() as session:
        newest = session.query(Job).filter_by(experiment_id=seeded.experiment_id).order_by(Job.created_at.desc())
        assert rating_errors > 0 and newest.first().total == 2 + rating_errors


def test_actions_without_csrf_are_refused(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Guarded", 5)
    _set_job_status(studio_app, seeded.experiment_id, TaskState.STARTED)
    res = browser.client.post(f"/studio/experiments/{seeded.experiment_id}/cancel")
    assert res.status_code == 403 and "CSRF" in res.get_data(as_text=True)
    assert 'id="cancel"' in browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)


def test_list_progress_of_running_experiments_takes_the_same_queries_for_one_or_many(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = [seed(studio_app, project.id, f"Run {i}", 3 + i) for i in range(5)]
    for s in seeded:
        _set_job_status(studio_app, s.experiment_id, TaskState.STARTED)
    engine = studio_app.extensions["assay_db"].engine
    counts, results = [], []
    for ids in ([seeded[0].experiment_id], [s.experiment_id for s in seeded]):
        statements: list[str] = []

        def listener(*args: object, statements: list[str] = statements) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", listener)
        try:
            with studio_app.app_context(), database().session() as session:
                results.append(studio.progress_of(session, project.id, ids))
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        counts.append(len(statements))
    assert counts[0] == counts[1]
    assert results[1]["status"] == "STARTED" and len(results[1]["experiments"]) == 5
    assert results[1]["experiments"][seeded[4].experiment_id]["completed_responses"] == 7
    html = browser.get("/studio/experiments").get_data(as_text=True)
    assert html.count("<progress") == 5  # the page size: each running row shows its bar
