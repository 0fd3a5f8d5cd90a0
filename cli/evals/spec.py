"""The evaluation file: YAML checked against `schema.json`, errors naming the line and the field.

The schema is the published contract; this module turns a valid document into an `EvalSpec`, reading
the prompt and test files it names (paths relative to the YAML file) and checking what a schema cannot
say: unique ids, placeholders the tests provide, thresholds that name a criterion.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from services.templates import PLACEHOLDER

Path_ = Sequence[str | int]
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SpecError(Exception):
    """A bad evaluation file; the message names the file, the line and the field."""


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of the file format."""
    return json.loads(resources.files("cli.evals").joinpath("schema.json").read_text())


@dataclass(frozen=True)
class Prompt:
    id: str
    name: str
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class Model:
    """An existing LLM config (`config`), an inline one (`create`), or neither: the server's default model."""

    id: str
    config: str | None = None
    create: dict[str, Any] | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class Criterion:
    text: str
    label: str | None = None
    evaluator: str | None = None
    params: dict[str, Any] | None = None
    threshold: float | None = None

    @property
    def key(self) -> str:
        return self.label or self.text

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"criterion_str": self.text, "label": self.label}
        if self.evaluator:
            body |= {"evaluator": self.evaluator, "params": self.params or {}}
        return body


@dataclass(frozen=True)
class Tests:
    """Rows to store as a collection named after `collection`, or (rows None) an existing collection."""

    collection: str
    rows: list[dict[str, Any]] | None


@dataclass(frozen=True)
class EvalSpec:
    name: str
    prompts: list[Prompt]
    models: list[Model]
    tests: Tests
    criteria: list[Criterion]
    description: str = ""
    epochs: int = 1
    rating_mode: str = "detailed"
    overall_threshold: float | None = None
    time_limit_seconds: int | None = None
    source: Path = field(default=Path("."))


DEFAULT_MODEL = Model(id="default")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 without timestamps: a test value `2024-05-01` stays the text the prompt will show."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Document:
    """The parsed YAML with its node tree, so any field's path maps back to a line."""

    def __init__(self, text: str, source: Path) -> None:
        self.source = source
        try:
            self.root = yaml.compose(text, Loader=_Loader)
            self.data = yaml.load(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            raise SpecError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from None

    def line(self, path: Path_) -> int:
        node = self.root
        for step in path:
            child = _child(node, step)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1 if node is not None else 1

    def error(self, path: Path_, message: str) -> SpecError:
        where = _dotted(path) or "(top level)"
        return SpecError(f"{self.source}:{self.line(path)}: {where}: {message}")


def _child(node: yaml.Node | None, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((value for key, value in node.value if key.value == step), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        return node.value[step]
    return None


def _key_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((k for k, _ in node.value if k.value == key), None)
    return None


def _dotted(path: Path_) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def load(path: str | Path) -> EvalSpec:
    """Read, validate and resolve an evaluation file; raises `SpecError` naming the line and field."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror}") from None
    return parse(text, source)


def parse(text: str, source: Path) -> EvalSpec:
    doc = _Document(text, source)
    _validate(doc)
    doc.data = _interpolate(doc, doc.data, [])
    return _Builder(doc).build()


def _interpolate(doc: _Document, value: Any, path: list[str | int]) -> Any:
    """`${NAME}` in any string is the environment variable NAME (endpoints differ between machines)."""
    if isinstance(value, dict):
        return {k: _interpolate(doc, v, [*path, k]) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(doc, v, [*path, i]) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        if match.group(1) not in os.environ:
            raise doc.error(path, f"environment variable {match.group(1)} is not set")
        return os.environ[match.group(1)]

    return ENV_VAR.sub(lookup, value)


def _validate(doc: _Document) -> None:
    if doc.data is None:
        raise SpecError(f"{doc.source}:1: the file is empty (see cli/evals/schema.json for the format)")
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(doc.data))
    if not errors:
        return
    error = _narrow(max(errors, key=jsonschema.exceptions.relevance))
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        node = _key_node(_walk(doc.root, path), extra[0])
        line = node.start_mark.line + 1 if node is not None else doc.line(path)
        raise SpecError(f"{doc.source}:{line}: {_dotted([*path, extra[0]])}: unknown field")
    raise doc.error(path, _message(error))


def _narrow(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Inside a `oneOf`, report the error of the one branch whose type and required keys fit."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [errs for errs in branches.values() if not any(_misfit(e) for e in errs)]
        if len(fitting) != 1:
            return error
        error = max(fitting[0], key=jsonschema.exceptions.relevance)
    return error


def _misfit(error: jsonschema.ValidationError) -> bool:
    return not error.relative_path and error.validator in ("type", "required")


def _walk(node: yaml.Node | None, path: Path_) -> yaml.Node | None:
    for step in path:
        node = _child(node, step)
    return node


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "oneOf" and isinstance(error.instance, dict) and "id" in error.instance:
        return "give exactly one of text, messages or file"
    if error.validator == "oneOf":
        return "matches none of the accepted forms (see cli/evals/schema.json)"
    if error.validator == "not" and isinstance(error.instance, dict):
        return "give rows or file, not both"
    if error.validator == "dependentRequired":
        return "params need an evaluator (the LLM judge takes none)"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    return error.message


class _Builder:
    def __init__(self, doc: _Document) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.base = doc.source.parent

    def build(self) -> EvalSpec:
        criteria = self._criteria()
        spec = EvalSpec(
            name=self.data["name"],
            description=self.data.get("description", ""),
            prompts=self._prompts(),
            models=self._models(),
            tests=self._tests(),
            criteria=criteria,
            epochs=self.data.get("epochs", 1),
            rating_mode=self.data.get("rating_mode", "detailed"),
            overall_threshold=self.data.get("thresholds", {}).get("overall"),
            time_limit_seconds=self.data.get("time_limit_seconds"),
            source=self.doc.source,
        )
        self._check_placeholders(spec)
        return spec

    def _prompts(self) -> list[Prompt]:
        prompts = [self._prompt(i, item) for i, item in enumerate(self.data["prompts"])]
        self._unique("prompts", [p.id for p in prompts])
        return prompts

    def _prompt(self, i: int, item: dict[str, Any]) -> Prompt:
        name = item.get("name") or f"{self.data['name']} / {item['id']}"
        if "text" in item:
            return Prompt(item["id"], name, [{"role": "user", "content": item["text"]}])
        if "messages" in item:
            return Prompt(item["id"], name, item["messages"])
        return Prompt(item["id"], name, self._prompt_file(["prompts", i, "file"], item["file"]))

    def _prompt_file(self, path: Path_, name: str) -> list[dict[str, str]]:
        text = self._read(path, name)
        if Path(name).suffix not in (".json", ".yaml", ".yml"):
            return [{"role": "user", "content": text}]
        try:
            messages = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            raise self.doc.error(path, f"{name} is not valid JSON or YAML: {exc}") from None
        item_schema = {"type": "array", "minItems": 1, "items": schema()["$defs"]["message"]}
        problem = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(item_schema).iter_errors(messages))
        if problem is not None:
            where = _dotted(list(problem.absolute_path)) or "the file"
            raise self.doc.error(path, f"{name}: {where}: {problem.message}")
        return messages

    def _read(self, path: Path_, name: str) -> str:
        try:
            return (self.base / name).read_text(encoding="utf-8")
        except OSError as exc:
            raise self.doc.error(path, f"cannot read {name}: {exc.strerror}") from None

    def _models(self) -> list[Model]:
        models = [self._model(item) for item in self.data.get("models", [])] or [DEFAULT_MODEL]
        self._unique("models", [m.id for m in models])
        return models

    @staticmethod
    def _model(item: str | dict[str, Any]) -> Model:
        if isinstance(item, str):
            return Model(id=item, config=item)
        if "default" in item:
            return Model(id=item.get("id", DEFAULT_MODEL.id))
        if "config" in item:
            return Model(id=item.get("id", item["config"]), config=item["config"])
        settings = {k: v for k, v in item.items() if k not in ("id", "model", "base_url", "api_key_env")}
        create = {"llm_model_name": item["model"], "llm_base_url": item.get("base_url"), **settings}
        return Model(id=item.get("id", item["model"]), create=create, api_key_env=item.get("api_key_env"))

    def _tests(self) -> Tests:
        tests = self.data["tests"]
        name = tests.get("collection") or f"{self.data['name']} tests"
        if "rows" in tests:
            return Tests(name, tests["rows"])
        if "file" in tests:
            return Tests(name, self._rows_file(tests["file"]))
        return Tests(name, None)

    def _rows_file(self, name: str) -> list[dict[str, Any]]:
        try:
            return rows_of(name, self._read(["tests", "file"], name))
        except ValueError as exc:
            raise self.doc.error(["tests", "file"], str(exc)) from None

    def _criteria(self) -> list[Criterion]:
        items = [_criterion(item) for item in self.data["criteria"]]
        self._unique("criteria", [c.key for c in items])
        by_key = {c.key: i for i, c in enumerate(items)} | {c.text: i for i, c in enumerate(items)}
        for key, rate in self.data.get("thresholds", {}).get("criteria", {}).items():
            if key not in by_key:
                raise self.doc.error(["thresholds", "criteria", key], "names no criterion (use its label or text)")
            i = by_key[key]
            if items[i].threshold is not None:
                raise self.doc.error(["thresholds", "criteria", key], f"criteria[{i}] already has a threshold")
            items[i] = Criterion(**{**items[i].__dict__, "threshold": rate})
        return items

    def _unique(self, section: str, ids: list[str]) -> None:
        seen: set[str] = set()
        for i, value in enumerate(ids):
            if value in seen:
                raise self.doc.error([section, i], f"duplicate id {value!r} (give each an 'id')")
            seen.add(value)

    def _check_placeholders(self, spec: EvalSpec) -> None:
        if spec.tests.rows is None:
            return
        columns = set().union(*(row.keys() for row in spec.tests.rows))
        for i, prompt in enumerate(spec.prompts):
            missing = sorted(_placeholders(prompt.messages) - columns)
            if missing:
                raise self.doc.error(["prompts", i], f"placeholder {{{{{missing[0]}}}}} is not a column of the tests")


def _criterion(item: str | dict[str, Any]) -> Criterion:
    if isinstance(item, str):
        return Criterion(item)
    return Criterion(
        item["criterion"], item.get("label"), item.get("evaluator"), item.get("params"), item.get("threshold")
    )


def rows_of(name: str, text: str) -> list[dict[str, Any]]:
    """Test cases from a CSV (header row = columns) or JSONL text; ValueError names the bad line."""
    rows = [dict(row) for row in csv.DictReader(text.splitlines())] if name.endswith(".csv") else _jsonl(name, text)
    if not rows:
        raise ValueError(f"{name} holds no test cases")
    return rows


def _jsonl(name: str, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not row:
            raise ValueError(f"{name}:{number}: each line must be a non-empty JSON object")
        rows.append(row)
    return rows


def _placeholders(messages: Iterable[dict[str, str]]) -> set[str]:
    return {name for m in messages for name in PLACEHOLDER.findall(m["content"])}
