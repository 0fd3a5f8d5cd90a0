"""Scenario sets: the samples of Persona evaluations, with declared fields and their scenarios.

Every scenario stores a value for every declared field (a field left out takes its default), so adding,
renaming or deleting a field rewrites the set's scenarios in the same unit of work.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from models.db import in_batches
from models.orm import Collection, Scenario, ScenarioField, ScenarioSet
from models.schemas.scenario_sets import FieldIn, ScenarioIn, ScenarioSetCreate, ScenarioSetQuery, ScenarioSetUpdate
from services.collections import identity_hash, unseen
from services.errors import Conflict, Invalid, ServiceError, not_found, owned
from services.pagination import Paged, paginate

FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
BUILT_IN_FIELDS = ("goal", "expected_conversation_outcome")


class NameTaken(ServiceError):
    """The SDK documents a 400 (not a 409) for a scenario set name already in use."""

    status = 400


def get(session: Session, project_id: int, set_id: int) -> ScenarioSet:
    return owned(session, ScenarioSet, project_id, set_id, "Scenario set")


# ---- sets


def create(session: Session, project_id: int, body: ScenarioSetCreate) -> ScenarioSet:
    """A new set with text fields named by `fields`; a name already used by a set or a collection is a 400."""
    name = body.name or f"Scenario set {uuid.uuid4().hex[:8]}"
    _ensure_name_free(session, project_id, name)
    for i, field_name in enumerate(body.fields):
        _check_field_name(field_name, f"body.fields[{i}]")
        if field_name in body.fields[:i]:
            raise Invalid(f"body.fields[{i}]: field '{field_name}' is listed twice")
    scenario_set = ScenarioSet(project_id=project_id, name=name, description=body.description)
    scenario_set.fields = [ScenarioField(name=n) for n in body.fields]
    session.add(scenario_set)
    session.flush()
    return scenario_set


def list_(session: Session, project_id: int, query: ScenarioSetQuery, page_size: int) -> Paged[ScenarioSet]:
    stmt: Select[Any] = select(ScenarioSet).where(ScenarioSet.project_id == project_id)
    if query.name_search:
        stmt = stmt.where(ScenarioSet.name.contains(query.name_search, autoescape=True))
    return paginate(session, stmt.order_by(ScenarioSet.id), query.page, page_size)


def update(session: Session, project_id: int, set_id: int, body: ScenarioSetUpdate) -> ScenarioSet:
    scenario_set = get(session, project_id, set_id)
    if body.name is not None and body.name != scenario_set.name:
        _ensure_name_free(session, project_id, body.name)
        scenario_set.name = body.name
    if body.description is not None:
        scenario_set.description = body.description
    session.flush()
    return _refreshed(session, scenario_set)


def delete(session: Session, project_id: int, set_id: int) -> None:
    session.delete(get(session, project_id, set_id))
    session.flush()


def _ensure_name_free(session: Session, project_id: int, name: str) -> None:
    for model, kind in ((ScenarioSet, "scenario set"), (Collection, "collection")):
        if session.scalar(select(model.id).where(model.project_id == project_id, model.name == name)) is not None:
            raise NameTaken(f"body.name: a {kind} named '{name}' already exists")


def _refreshed(session: Session, scenario_set: ScenarioSet) -> ScenarioSet:
    session.refresh(scenario_set)  # scenarios_count and the fields as stored
    return scenario_set


# ---- declared fields


def add_field(session: Session, project_id: int, set_id: int, body: FieldIn) -> ScenarioField:
    """A new text field; every scenario of the set gets its default."""
    scenario_set = get(session, project_id, set_id)
    _check_field_name(body.name, "body.name")
    _ensure_field_free(scenario_set, body.name)
    field = ScenarioField(name=body.name, default_value=body.default_value or "")
    scenario_set.fields.append(field)
    _rewrite_values(session, scenario_set, lambda values: {**values, field.name: field.default_value})
    return field


def rename_field(session: Session, project_id: int, set_id: int, field_id: int, body: FieldIn) -> ScenarioField:
    """Rename a field (and change its default when given); the scenarios keep their values under the new name."""
    scenario_set = get(session, project_id, set_id)
    field = _field(scenario_set, field_id)
    old_name = field.name
    if body.name != old_name:
        _check_field_name(body.name, "body.name")
        _ensure_field_free(scenario_set, body.name)
        field.name = body.name
        _rewrite_values(session, scenario_set, lambda values: _renamed(values, old_name, body.name))
    if body.default_value is not None:
        field.default_value = body.default_value
    session.flush()
    return field


def delete_field(session: Session, project_id: int, set_id: int, field_id: int) -> None:
    scenario_set = get(session, project_id, set_id)
    field = _field(scenario_set, field_id)
    scenario_set.fields.remove(field)
    _rewrite_values(session, scenario_set, lambda values: {k: v for k, v in values.items() if k != field.name})


def _check_field_name(name: str, where: str) -> None:
    if name in BUILT_IN_FIELDS:
        raise Invalid(f"{where}: '{name}' is part of every scenario and cannot be a declared field")
    if not FIELD_NAME.fullmatch(name):
        raise Invalid(
            f"{where}: '{name[:120]}' is not a valid field name (letters, digits and underscores, "
            "not starting with a digit, at most 100 characters)"
        )


def _ensure_field_free(scenario_set: ScenarioSet, name: str) -> None:
    if any(f.name == name for f in scenario_set.fields):
        raise Conflict(f"body.name: scenario set {scenario_set.id} already has a field '{name}'")


def _field(scenario_set: ScenarioSet, field_id: int) -> ScenarioField:
    for field in scenario_set.fields:
        if field.id == field_id:
            return field
    raise not_found("Field", field_id)


def _renamed(values: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {new if key == old else key: value for key, value in values.items()}


def _rewrite_values(
    session: Session, scenario_set: ScenarioSet, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    for scenario in session.scalars(select(Scenario).where(Scenario.scenario_set_id == scenario_set.id)):
        scenario.field_values = change(scenario.field_values)
        scenario.identity_hash = _identity(scenario.goal, scenario.expected_conversation_outcome, scenario.field_values)
    session.flush()


# ---- scenarios


def list_scenarios(session: Session, project_id: int, set_id: int, page: int | None, page_size: int) -> Paged[Scenario]:
    get(session, project_id, set_id)
    stmt = select(Scenario).where(Scenario.scenario_set_id == set_id).order_by(Scenario.id)
    return paginate(session, stmt, page, page_size)


def get_scenario(session: Session, project_id: int, set_id: int, scenario_id: int) -> Scenario:
    get(session, project_id, set_id)
    scenario = session.get(Scenario, scenario_id)
    if scenario is None or scenario.scenario_set_id != set_id:
        raise not_found("Scenario", scenario_id)
    return scenario


def add_scenario(session: Session, project_id: int, set_id: int, body: ScenarioIn) -> Scenario:
    return add_scenarios(session, project_id, set_id, [body], False, lambda _: "body")[0]


def add_scenarios(
    session: Session,
    project_id: int,
    set_id: int,
    items: Sequence[ScenarioIn],
    skip_existing: bool,
    where: Callable[[int], str] = lambda i: f"body.scenarios[{i}]",
) -> list[Scenario]:
    """Check every item first (nothing is written when one is invalid), then store them in order;
    `skip_existing` leaves out those identical to one in the set or earlier in the list."""
    scenario_set = get(session, project_id, set_id)
    rows = [_scenario_row(scenario_set, item, where(i)) for i, item in enumerate(items)]
    if skip_existing:
        rows = _only_new(session, set_id, rows)
    scenarios = [Scenario(scenario_set_id=set_id, **row) for row in rows]
    session.add_all(scenarios)
    session.flush()
    return scenarios


def update_scenario(session: Session, project_id: int, set_id: int, scenario_id: int, body: ScenarioIn) -> Scenario:
    """Replace the goal, outcome and values; declared fields left out go back to their default."""
    scenario = get_scenario(session, project_id, set_id, scenario_id)
    for key, value in _scenario_row(get(session, project_id, set_id), body, "body").items():
        setattr(scenario, key, value)
    session.flush()
    return scenario


def delete_scenario(session: Session, project_id: int, set_id: int, scenario_id: int) -> None:
    session.delete(get_scenario(session, project_id, set_id, scenario_id))
    session.flush()


def _scenario_row(scenario_set: ScenarioSet, item: ScenarioIn, where: str) -> dict[str, Any]:
    declared = {f.name: f for f in scenario_set.fields}
    for key, value in item.field_values.items():
        if key not in declared:
            names = sorted(declared) or "none"
            raise Invalid(f"{where}.field_values.{key}: not a declared field of the scenario set (declared: {names})")
        if not isinstance(value, str):
            raise Invalid(f"{where}.field_values.{key}: a text field's value must be a string")
    values = {name: item.field_values.get(name, field.default_value) for name, field in declared.items()}
    return {
        "goal": item.goal,
        "expected_conversation_outcome": item.expected_conversation_outcome,
        "field_values": values,
        "identity_hash": _identity(item.goal, item.expected_conversation_outcome, values),
    }


def _identity(goal: str, outcome: str, values: dict[str, Any]) -> str:
    # Field names can never be the built-in ones, so the merged mapping is unambiguous.
    return identity_hash({**values, "goal": goal, "expected_conversation_outcome": outcome}, None)


def _only_new(session: Session, set_id: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    for batch in in_batches(sorted({row["identity_hash"] for row in rows})):
        query = select(Scenario.identity_hash).where(
            Scenario.scenario_set_id == set_id, Scenario.identity_hash.in_(batch)
        )
        seen.update(session.scalars(query))
    return unseen(rows, seen)
