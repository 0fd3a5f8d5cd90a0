"""Blueprints: `meta` (version check, projects) and the project-scoped resources, one module each."""

from __future__ import annotations

from flask import Blueprint, Flask

from api.auth import bind_project
from api.resources import (
    agent_results,
    collections,
    comparisons,
    criteria,
    criterion_sets,
    experiments,
    llm_configs,
    meta,
    prompt_templates,
    ratings,
    responses,
    reviews,
    scenario_sets,
)

PROJECT_RESOURCES = (
    prompt_templates,
    collections,
    criterion_sets,
    criteria,
    llm_configs,
    comparisons,
    experiments,
    responses,
    ratings,
    scenario_sets,
    agent_results,
    reviews,
)


def register_resources(app: Flask) -> None:
    project_scope = Blueprint("project", __name__, url_prefix="/api/v0/projects/<int:project_id>")
    project_scope.url_value_preprocessor(bind_project)
    for module in PROJECT_RESOURCES:
        project_scope.register_blueprint(module.bp)
    app.register_blueprint(meta.bp)
    app.register_blueprint(project_scope)
