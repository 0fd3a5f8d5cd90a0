"""Create or reuse an evaluation's resources through the REST API, addressed by their content.

Templates reuse the server's own rule (identical name and messages: 409 with the existing id). A
collection, criterion set or inline LLM config carries a digest of its content in its name, so a rerun
of an unchanged file finds it by name and a changed one makes a new one instead of editing the old.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from cli.evals.spec import Criterion, EvalSpec, Model, Prompt, Tests
from cli.rest import ApiError, Assay, CliError


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Resources:
    """Server ids of what one evaluation runs on."""

    templates: dict[str, int]
    llm_configs: dict[str, int | None]
    collection_id: int
    criterion_set_id: int
    criterion_ids: list[int]


def ensure_all(api: Assay, spec: EvalSpec) -> Resources:
    set_id, criterion_ids = ensure_criteria(api, spec.name, spec.criteria)
    return Resources(
        templates={p.id: ensure_template(api, p) for p in spec.prompts},
        llm_configs={m.id: ensure_llm_config(api, m) for m in spec.models},
        collection_id=ensure_collection(api, spec.tests),
        criterion_set_id=set_id,
        criterion_ids=criterion_ids,
    )


def ensure_template(api: Assay, prompt: Prompt) -> int:
    try:
        return api.post("prompt_templates", {"name": prompt.name, "messages": prompt.messages})["id"]
    except ApiError as exc:
        if exc.status == 409 and "prompt_template_id" in exc.body:
            return int(exc.body["prompt_template_id"])
        raise


def ensure_collection(api: Assay, tests: Tests) -> int:
    if tests.rows is None:
        found = api.find("collections", tests.collection)
        if found is None:
            raise CliError(f"tests.collection: no collection named {tests.collection!r}")
        return found["id"]
    name = f"{tests.collection} [{digest(tests.rows)}]"
    return _find_or_create(api, "collections", name, {"name": name, "variables": tests.rows})["id"]


def ensure_criteria(api: Assay, eval_name: str, criteria: list[Criterion]) -> tuple[int, list[int]]:
    """The criterion set and, in the file's order, the id of each criterion in it."""
    wire = [c.wire() for c in criteria]
    name = f"{eval_name} criteria [{digest(wire)}]"
    found = _find_or_create(api, "criterion_sets", name, {"name": name, "criteria": wire})
    stored = found.get("criteria") or api.get(f"criterion_sets/{found['id']}")["criteria"]
    ids = {(c["criterion_str"], c.get("label")): c["id"] for c in stored}
    return found["id"], [ids[(c.text, c.label)] for c in criteria]


def ensure_llm_config(api: Assay, model: Model) -> int | None:
    if model.config is not None:
        found = api.find("llm_configs", model.config)
        if found is None:
            raise CliError(f"models: no LLM config named {model.config!r}")
        return found["id"]
    if model.create is None:
        return None
    body = {**model.create, "api_key": _provider_key(model)}
    name = f"{model.id} [{digest(body)}]"
    return _find_or_create(api, "llm_configs", name, {**body, "name": name})["id"]


def _provider_key(model: Model) -> str | None:
    if model.api_key_env is None:
        return None
    key = os.environ.get(model.api_key_env)
    if not key:
        raise CliError(f"models.{model.id}.api_key_env: {model.api_key_env} is not set")
    return key


def _find_or_create(api: Assay, path: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    found = api.find(path, name)
    if found is not None:
        return found
    try:
        return api.post(path, body)
    except ApiError as exc:
        if exc.status != 409:
            raise
    # Another run of the same file created it in between.
    return api.find(path, name) or {}
