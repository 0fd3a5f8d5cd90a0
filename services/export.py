"""An experiment's responses and ratings as CSV or JSONL, streamed in pages of responses.

A page is read in its own short session, so a 100,000-response export neither loads every row at
once nor holds a database transaction open while a slow client downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db import Database
from models.orm import Criterion, Entry, Experiment, Prompt, PromptResponse, Rating, Review
from services import collections, results
from services.errors import owned
from services.responses import response_text

ExportFormat = Literal["csv", "jsonl"]
BATCH = 500
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
# A spreadsheet evaluates a cell starting with one of these as a formula (data exfiltration via links).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportPlan:
    """What an export needs before streaming: the columns, decided once."""

    experiment_id: int
    variables: list[str]
    criteria: list[tuple[int, str]]

    def filename(self, fmt: ExportFormat) -> str:
        return f"experiment-{self.experiment_id}.{fmt}"


def plan(session: Session, project_id: int, experiment_id: int) -> ExportPlan:
    """The columns of one of the project's experiments' export (404 for another project's)."""
    experiment = owned(session, Experiment, project_id, experiment_id, "Experiment")
    criteria = [(c.id, c.label or c.criterion_str) for c in results.criteria_of(session, experiment)]
    return ExportPlan(experiment.id, collections.column_names(experiment.collection), criteria)


def _page(session: Session, experiment_id: int, after: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            PromptResponse.id,
            PromptResponse.entry_id,
            PromptResponse.epoch,
            Entry.input_values,
            Prompt.messages,
            PromptResponse.messages,
            PromptResponse.error,
        )
        .join(Entry, Entry.id == PromptResponse.entry_id)
        .join(Prompt, Prompt.id == PromptResponse.prompt_id)
        .where(PromptResponse.experiment_id == experiment_id, PromptResponse.id > after)
        .order_by(PromptResponse.id)
        .limit(BATCH)
    ).all()
    records = {
        r[0]: {
            "response_id": r[0],
            "entry_id": r[1],
            "epoch": r[2],
            "variables": r[3] or {},
            "prompt": r[4] or [],
            "response": response_text(r[5]),
            "error": r[6],
            "ratings": [],
        }
        for r in rows
    }
    ratings = (
        select(
            Rating.response_id,
            Rating.criterion_id,
            Criterion.criterion_str,
            Rating.rating,
            Rating.reasoning,
            Rating.score,
            Rating.error,
            Review.verdict,
            Review.note,
            Review.reviewer,
        )
        .join(Criterion, Criterion.id == Rating.criterion_id)
        .outerjoin(Review, Review.rating_id == Rating.id)
        .where(Rating.response_id.in_(records))
        .order_by(Rating.response_id, Rating.criterion_id)
    )
    for rid, cid, text, verdict, reasoning, score, error, *human in session.execute(ratings) if records else ():
        records[rid]["ratings"].append(
            {
                "criterion_id": cid,
                "criterion": text,
                "rating": verdict,
                "reasoning": reasoning,
                "score": score,
                "error": error,
                "review": _review(*human),
            }
        )
    return list(records.values())


def _review(verdict: str | None, note: str | None, reviewer: str | None) -> dict[str, Any] | None:
    """A person's verdict beside the judge's (null when nobody reviewed the rating)."""
    return None if verdict is None else {"verdict": verdict, "note": note, "reviewer": reviewer}


def records(database: Database, experiment_id: int) -> Iterator[dict[str, Any]]:
    """Every response of the experiment, in id order, each with its ratings; one session per page."""
    after = 0
    while True:
        with database.session() as session:
            page = _page(session, experiment_id, after)
        yield from page
        if len(page) < BATCH:
            return
        after = page[-1]["response_id"]


def prompt_text(messages: list[Any]) -> str:
    return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in messages if isinstance(m, dict))


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_csv_value(v) for v in values])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    """A cell as text a spreadsheet shows but never evaluates (OWASP's advice against CSV injection)."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_lines(database: Database, export: ExportPlan) -> Iterator[str]:
    """A header, then one row per response: variables, prompt, response, error, and per criterion the
    judge's verdict and reasoning and a person's verdict and note (empty when not reviewed)."""
    suffixes = ("verdict", "reasoning", "human verdict", "human note")
    criteria_cols = [f"{name} [{suffix}]" for _, name in export.criteria for suffix in suffixes]
    yield _csv_line(
        ["response_id", "entry_id", "epoch", *export.variables, "prompt", "response", "error", *criteria_cols]
    )
    for record in records(database, export.experiment_id):
        by_criterion = {r["criterion_id"]: r for r in record["ratings"]}
        verdicts: list[Any] = []
        for cid, _ in export.criteria:
            rating = by_criterion.get(cid, {})
            human = rating.get("review") or {}
            verdicts += [
                rating.get("rating") or ("ERROR" if rating.get("error") else ""),
                rating.get("reasoning") or rating.get("error") or "",
                human.get("verdict", ""),
                human.get("note", ""),
            ]
        values = [record["variables"].get(name, "") for name in export.variables]
        yield _csv_line(
            [
                record["response_id"],
                record["entry_id"],
                record["epoch"],
                *values,
                prompt_text(record["prompt"]),
                record["response"],
                record["error"] or "",
                *verdicts,
            ]
        )


def jsonl_lines(database: Database, export: ExportPlan) -> Iterator[str]:
    """One JSON object per response, its ratings as a nested list (failed ratings carry `error`)."""
    for record in records(database, export.experiment_id):
        yield json.dumps(record, ensure_ascii=False) + "\n"


def lines(database: Database, export: ExportPlan, fmt: ExportFormat) -> Iterator[str]:
    return csv_lines(database, export) if fmt == "csv" else jsonl_lines(database, export)
