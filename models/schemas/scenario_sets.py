"""Scenario sets (the samples of Persona evaluations): request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from models.schemas.common import PageQuery, RequestModel, UtcDatetime, WireModel

RequiredText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ScenarioSetCreate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=500, description="A random name when omitted")
    description: str = ""
    fields: list[str] = Field(default=[], max_length=1000, description="Declared field names (text fields)")


class ScenarioSetUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = None


class ScenarioSetQuery(PageQuery):
    name_search: str | None = Field(default=None, description="Only sets whose name contains this text")


class FieldIn(RequestModel):
    name: str
    default_value: str | None = Field(default=None, description="Omit to keep a renamed field's default")


class ScenarioIn(RequestModel):
    goal: RequiredText
    expected_conversation_outcome: RequiredText
    field_values: dict[str, Any] = {}


class ScenarioBatch(RequestModel):
    scenarios: list[ScenarioIn] = Field(max_length=100_000)
    skip_existing: bool = False


class ScenarioFieldOut(WireModel):
    id: int
    name: str
    field_type: str
    default_value: str = ""


class ScenarioSetOut(WireModel):
    id: int
    name: str
    description: str = ""
    fields: list[ScenarioFieldOut] = []
    scenarios_count: int = 0
    version: str | None = None
    read_only: bool = False
    is_platform_builtin: bool = False
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ScenarioOut(WireModel):
    id: int
    goal: str
    expected_conversation_outcome: str
    field_values: dict[str, Any]
    created_at: UtcDatetime
