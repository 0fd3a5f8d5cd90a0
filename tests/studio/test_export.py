"""Exports: every response with its variables, prompt, answer, error and each criterion's verdict and
reasoning, as CSV or JSONL, through the REST API and the Studio's download button alike."""

from __future__ import annotations

import csv
import io
import json

from flask import Flask
from sqlalchemy import select

from api.extensions import database
from models.orm import Criterion, Entry, PromptResponse
from services import export
from tests.conftest import ProjectHandle
from tests.studio.conftest import Browser, seed


def test_rest_csv_has_a_column_pair_per_criterion(studio_app: Flask, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Export", 100)
    res = project.get(f"experiments/{seeded.experiment_id}/export?format=csv")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    assert f'filename="experiment-{seeded.experiment_id}.csv"' in res.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert len(table) == 100
    assert list(table[0])[:8] == [
        "response_id",
        "entry_id",
        "epoch",
        "question",
        "prompt",
        "response",
        "error",
        "Criterion 1? [verdict]",
    ]
    first = table[0]
    assert first["question"] == "Question number 0?" and first["prompt"] == "user: Answer briefly: Question 0?"
    assert first["response"] == "Answer 0 to question 0." and first["Criterion 3? [reasoning]"] == "Reason 0/2"
    failed = [row for row in table if row["error"]]
    assert len(failed) == 2 and failed[0]["Criterion 1? [verdict]"] == ""
    assert {row["Criterion 2? [verdict]"] for row in table} == {"YES", "NO", "ERROR", ""}


def test_rest_jsonl_nests_the_ratings_and_crosses_page_boundaries(
    studio_app: Flask, project: ProjectHandle, monkeypatch: object
) -> None:
    monkeypatch.setattr(export, "BATCH", 7)  # type: ignore[attr-defined]
    seeded = seed(studio_app, project.id, "Lines", 100)
    res = project.get(f"experiments/{seeded.experiment_id}/export?format=jsonl")
    assert res.mimetype == "application/x-ndjson"
    records = [json.loads(line) for line in res.get_data(as_text=True).splitlines()]
    assert len(records) == 100 and len({r["response_id"] for r in records}) == 100
    assert records[0]["variables"] == {"question": "Question number 0?"}
    assert [r["criterion"] for r in records[0]["ratings"]] == ["Criterion 1?", "Criterion 2?", "Criterion 3?"]
    assert records[0]["ratings"][0]["reasoning"] == "Reason 0/0"
    assert any(r["error"] for r in records) and any(x["error"] for r in records for x in r["ratings"])


def test_rest_export_checks_format_and_project(
    studio_app: Flask, project: ProjectHandle, other_project: ProjectHandle
) -> None:
    seeded = seed(studio_app, project.id, "Mine", 3)
    assert project.get(f"experiments/{seeded.experiment_id}/export?format=xml").status_code == 422
    assert other_project.get(f"experiments/{seeded.experiment_id}/export").status_code == 404
    spec = project.client.get("/api/v0/openapi.json").get_json()
    content = spec["paths"]["/api/v0/projects/{project_id}/experiments/{experiment_id}/export"]["get"]["responses"]
    assert set(content["200"]["content"]) == {"text/csv", "application/x-ndjson"}


def test_studio_download_matches_the_rest_export(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Same", 12)
    for fmt in ("csv", "jsonl"):
        studio = browser.get(f"/studio/experiments/{seeded.experiment_id}/export.{fmt}")
        assert studio.status_code == 200 and "attachment" in studio.headers["Content-Disposition"]
        rest = project.get(f"experiments/{seeded.experiment_id}/export?format={fmt}")
        assert studio.get_data() == rest.get_data()


def _rewrite_first(app: Flask, experiment_id: int, answer: str, question: str) -> None:
    with app.app_context(), database().session() as session:
        response = session.scalars(
            select(PromptResponse).where(PromptResponse.experiment_id == experiment_id).order_by(PromptResponse.id)
        ).first()
        assert response is not None
        response.messages = [{"role": "assistant", "content": answer}]
        session.get_one(Entry, response.entry_id).input_values = {"question": question}


def _rename_criteria(app: Flask, criterion_ids: list[int], text: str) -> None:
    with app.app_context(), database().session() as session:
        for criterion_id in criterion_ids:
            session.get_one(Criterion, criterion_id).criterion_str = text


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_quoted(studio_app: Flask, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Evil", 3)
    formula = '=HYPERLINK("http://evil","x")'
    _rewrite_first(studio_app, seeded.experiment_id, formula, "+1-2")
    _rename_criteria(studio_app, seeded.criterion_ids[:1], "=1+1")
    res = project.get(f"experiments/{seeded.experiment_id}/export?format=csv")
    header, first, *_ = csv.reader(io.StringIO(res.get_data(as_text=True)))
    assert first[header.index("response")] == "'" + formula
    assert first[header.index("question")] == "'+1-2"
    assert "'=1+1 [verdict]" in header  # a header cell is a cell too
    jsonl = project.get(f"experiments/{seeded.experiment_id}/export?format=jsonl").get_data(as_text=True)
    assert json.loads(jsonl.splitlines()[0])["response"] == formula  # JSON is data, not a spreadsheet


def test_csv_round_trips_commas_quotes_and_newlines(studio_app: Flask, project: ProjectHandle) -> None:
    seeded = seed(studio_app, project.id, "Quoted", 2)
    answer = 'Yes, "quoted",\nand a second line\r\nand a third, café'
    _rewrite_first(studio_app, seeded.experiment_id, answer, 'a "b", c\nd')
    res = project.get(f"experiments/{seeded.experiment_id}/export?format=csv")
    table = list(csv.DictReader(io.StringIO(res.get_data(as_text=True), newline="")))
    assert len(table) == 2
    assert table[0]["response"] == answer and table[0]["question"] == 'a "b", c\nd'
