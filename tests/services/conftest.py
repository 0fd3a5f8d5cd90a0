"""Helpers for service tests that need an experiment and a job of it in the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models.db import Database
from models.orm import Entry, Experiment
from services import execution, jobs
from services.settings import Settings
from services.states import JobKind
from tests.conftest import ProjectHandle


def experiment_refs(project: ProjectHandle, n: int) -> dict[str, int]:
    """A template, a collection of `n` entries and a one-criterion set: an experiment body's references."""
    template = project.post("prompt_templates", json={"name": "T", "messages": [{"role": "user", "content": "{{q}}"}]})
    collection = project.post("collections", json={"name": "C"}).json
    for i in range(n):
        project.post(f"collections/{collection['id']}/entries", json={"input_values": {"q": f"q{i}"}})
    criteria = project.post("criterion_sets", json={"name": "S", "criteria": [{"criterion_str": "Ok?"}]}).json
    return {
        "prompt_template_id": template.json["id"],
        "collection_id": collection["id"],
        "criterion_set_id": criteria["id"],
    }


def make_experiment(project: ProjectHandle, n: int) -> int:
    return project.post("experiments", json={"name": "E", **experiment_refs(project, n)}).json["id"]


def new_run(database: Database, project: ProjectHandle, experiment_id: int) -> tuple[Any, list[Any]]:
    """A new job of the experiment, its plan and its items as a worker loads them."""
    with database.session() as session:
        experiment = session.get_one(Experiment, experiment_id)
        entry_ids = session.scalars(select(Entry.id).where(Entry.collection_id == experiment.collection_id)).all()
        job = jobs.create(
            session,
            Settings(),
            project_id=project.id,
            kind=JobKind.EXPERIMENT,
            items=[[e, 1] for e in entry_ids],
            experiment_id=experiment_id,
        )
        plan = execution.experiment_plan(session, job, Settings())
        return plan, execution.load_items(session, plan, [[e, 1] for e in entry_ids])
