"""`/scenario-sets`: scenario sets (Persona samples), their declared fields and their scenarios."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_project_id
from api.extensions import db_session, settings
from api.routing import endpoint
from models.schemas.common import Page, PageQuery
from models.schemas.scenario_sets import (
    FieldIn,
    ScenarioBatch,
    ScenarioFieldOut,
    ScenarioIn,
    ScenarioOut,
    ScenarioSetCreate,
    ScenarioSetOut,
    ScenarioSetQuery,
    ScenarioSetUpdate,
)
from services import scenario_sets

bp = Blueprint("scenario_sets", __name__, url_prefix="/scenario-sets")


@endpoint(bp, "", "POST", body=ScenarioSetCreate, response=ScenarioSetOut, status=201)
def create_scenario_set(body: ScenarioSetCreate) -> object:
    """Create a scenario set with text fields; a name used by a set or a collection is a 400."""
    return scenario_sets.create(db_session(), current_project_id(), body)


@endpoint(bp, "", query=ScenarioSetQuery, response=Page[ScenarioSetOut])
def list_scenario_sets(query: ScenarioSetQuery) -> object:
    """List scenario sets by id; `name_search` keeps those whose name contains it."""
    return scenario_sets.list_(db_session(), current_project_id(), query, settings().page_size)


@endpoint(bp, "/<int:set_id>", response=ScenarioSetOut)
def get_scenario_set(set_id: int) -> object:
    """One scenario set with its fields and the number of its scenarios."""
    return scenario_sets.get(db_session(), current_project_id(), set_id)


@endpoint(bp, "/<int:set_id>", "PUT", body=ScenarioSetUpdate, response=ScenarioSetOut)
def update_scenario_set(set_id: int, body: ScenarioSetUpdate) -> object:
    """Change the name and/or the description."""
    return scenario_sets.update(db_session(), current_project_id(), set_id, body)


@endpoint(bp, "/<int:set_id>", "DELETE")
def delete_scenario_set(set_id: int) -> None:
    """Delete a scenario set with its fields and scenarios."""
    scenario_sets.delete(db_session(), current_project_id(), set_id)


@endpoint(bp, "/<int:set_id>/fields", "POST", body=FieldIn, response=ScenarioFieldOut, status=201)
def add_field(set_id: int, body: FieldIn) -> object:
    """Declare a text field; every scenario of the set takes its default."""
    return scenario_sets.add_field(db_session(), current_project_id(), set_id, body)


@endpoint(bp, "/<int:set_id>/fields/<int:field_id>", "PUT", body=FieldIn, response=ScenarioFieldOut)
def rename_field(set_id: int, field_id: int, body: FieldIn) -> object:
    """Rename a field (the scenarios keep their values) and, when given, change its default."""
    return scenario_sets.rename_field(db_session(), current_project_id(), set_id, field_id, body)


@endpoint(bp, "/<int:set_id>/fields/<int:field_id>", "DELETE")
def delete_field(set_id: int, field_id: int) -> None:
    """Delete a field and its values in every scenario."""
    scenario_sets.delete_field(db_session(), current_project_id(), set_id, field_id)


@endpoint(bp, "/<int:set_id>/scenarios", query=PageQuery, response=Page[ScenarioOut])
def list_scenarios(set_id: int, query: PageQuery) -> object:
    """List a set's scenarios, oldest first."""
    return scenario_sets.list_scenarios(db_session(), current_project_id(), set_id, query.page, settings().page_size)


@endpoint(bp, "/<int:set_id>/scenarios", "POST", body=ScenarioIn, response=ScenarioOut, status=201)
def add_scenario(set_id: int, body: ScenarioIn) -> object:
    """Add one scenario; declared fields left out take their default, undeclared ones are a 422."""
    return scenario_sets.add_scenario(db_session(), current_project_id(), set_id, body)


@endpoint(bp, "/<int:set_id>/scenarios/batch", "POST", body=ScenarioBatch, response=list[ScenarioOut], status=201)
def add_scenarios(set_id: int, body: ScenarioBatch) -> object:
    """Add many scenarios at once (all or none); returns only those created."""
    session = db_session()
    return scenario_sets.add_scenarios(session, current_project_id(), set_id, body.scenarios, body.skip_existing)


@endpoint(bp, "/<int:set_id>/scenarios/<int:scenario_id>", response=ScenarioOut)
def get_scenario(set_id: int, scenario_id: int) -> object:
    """One scenario."""
    return scenario_sets.get_scenario(db_session(), current_project_id(), set_id, scenario_id)


@endpoint(bp, "/<int:set_id>/scenarios/<int:scenario_id>", "PUT", body=ScenarioIn, response=ScenarioOut)
def update_scenario(set_id: int, scenario_id: int, body: ScenarioIn) -> object:
    """Replace a scenario; declared fields left out go back to their default."""
    return scenario_sets.update_scenario(db_session(), current_project_id(), set_id, scenario_id, body)


@endpoint(bp, "/<int:set_id>/scenarios/<int:scenario_id>", "DELETE")
def delete_scenario(set_id: int, scenario_id: int) -> None:
    """Delete one scenario."""
    scenario_sets.delete_scenario(db_session(), current_project_id(), set_id, scenario_id)
