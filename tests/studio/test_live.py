"""What the experiment page shows as a run moves: its live fragment (actions that match the state, totals,
charts), the run time across retries, model latency, and the full text of long errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select, update

from api.extensions import database
from models.orm import Job, PromptResponse
from services.states import JobKind, TaskState
from tests.conftest import ProjectHandle
from tests.studio.conftest import Browser, seed

FRAGMENT = {"X-Studio-Fragment": "1"}


def stat(html: str, label: str) -> str:
    return html.split(f'<span class="k">{label}</span><span class="n">', 1)[1].split("</span>", 1)[0]


def test_live_fragment_actions_follow_the_state(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Live", 10)
    url = f"/studio/experiments/{seeded.experiment_id}/live"
    with studio_app.app_context(), database().session() as session:
        session.execute(update(Job).where(Job.experiment_id == seeded.experiment_id).values(status=TaskState.STARTED))
    running = browser.get(url, headers=FRAGMENT).get_data(as_text=True)
    assert "<html" not in running and 'id="cancel"' in running and "data-confirm=" in running
    with studio_app.app_context(), database().session() as session:
        session.execute(update(Job).where(Job.experiment_id == seeded.experiment_id).values(status=TaskState.SUCCESS))
    done = browser.get(url, headers=FRAGMENT).get_data(as_text=True)
    assert 'id="cancel"' not in done and "Pass rate per criterion" in done and 'id="latency"' in done
    assert browser.get(url).status_code == 302  # a browser navigating there gets the whole page


def test_duration_is_the_runs_time_not_the_time_since_creation(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Retried", 4)
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    with studio_app.app_context(), database().session() as session:
        session.execute(
            update(Job)
            .where(Job.experiment_id == seeded.experiment_id)
            .values(started_at=start, finished_at=start + timedelta(seconds=10))
        )
        retry_start = start + timedelta(hours=5)  # retried hours later; the retry took 3 s
        session.add(
            Job(
                id=str(uuid.uuid4()),
                project_id=project.id,
                kind=JobKind.EXPERIMENT,
                experiment_id=seeded.experiment_id,
                status=TaskState.SUCCESS,
                created_at=retry_start,
                started_at=retry_start,
                finished_at=retry_start + timedelta(seconds=3),
            )
        )
    html = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    assert stat(html, "Duration") == "13.0 s (2 runs)"


def test_latency_chart_counts_model_time_of_generated_responses(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Latency", 50)  # the 50th failed: not counted
    with studio_app.app_context(), database().session() as session:
        ids = session.scalars(
            select(PromptResponse.id).where(PromptResponse.experiment_id == seeded.experiment_id).order_by("id")
        ).all()
        for i, response_id in enumerate(ids):
            seconds = 1.0 if i < 30 else 3.0
            session.execute(
                update(PromptResponse).where(PromptResponse.id == response_id).values(duration_seconds=seconds)
            )
    html = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    chart = html.split('id="latency"', 1)[1].split("</section>", 1)[0]
    assert "49 responses from 1.00 s to 3.00 s" in chart
    assert "1.00–1.10 s: 30 responses" in chart and "2.90–3.00 s: 19 responses" in chart
    assert stat(html, "Mean response time") == f"{(30 * 1.0 + 19 * 3.0) / 49:.2f} s"


def test_a_long_error_is_shown_whole_on_demand(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Errors", 50)
    long_error = "APIStatusError: 400 " + "the prompt is too long for this model, " * 8 + "END OF MESSAGE"
    with studio_app.app_context(), database().session() as session:
        session.execute(
            update(PromptResponse)
            .where(PromptResponse.experiment_id == seeded.experiment_id, PromptResponse.error.is_not(None))
            .values(error=long_error)
        )
    html = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    errors = html.split('id="errors-title"', 1)[1].split("</section>", 1)[0]
    assert "<details" in errors and "END OF MESSAGE" in errors


def test_pass_rates_show_their_intervals_per_criterion_and_epoch(
    studio_app: Flask, browser: Browser, project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Epochs", 20, n_criteria=1)
    with studio_app.app_context(), database().session() as session:
        session.execute(
            update(PromptResponse)
            .where(
                PromptResponse.experiment_id == seeded.experiment_id, PromptResponse.entry_id.in_(seeded.entry_ids[10:])
            )
            .values(epoch=2)
        )
    html = browser.get(f"/studio/experiments/{seeded.experiment_id}").get_data(as_text=True)
    assert html.count('class="whisker"') == 3  # the criterion, epoch 1, epoch 2
    epochs = html.split('id="ec-title"', 1)[1].split("</svg>", 1)[0]
    assert "Epoch 1:" in epochs and "Epoch 2:" in epochs and "95% interval" in epochs
