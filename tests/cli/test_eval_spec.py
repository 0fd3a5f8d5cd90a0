"""The evaluation file: what a valid file resolves to, and bad files answered with their line and field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from cli.evals.spec import DEFAULT_MODEL, SpecError, load, schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "eval"

MINIMAL = """\
name: Demo
prompts:
  - id: p
    text: Explain {{topic}}.
tests:
  rows:
    - topic: AI
criteria:
  - Is it helpful?
"""


def write(tmp_path: Path, text: str, name: str = "eval.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as caught:
        load(write(tmp_path, text))
    return str(caught.value)


def test_published_schema_is_a_valid_json_schema() -> None:
    published = json.loads((Path(__file__).resolve().parents[2] / "cli" / "evals" / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(published)
    assert published == schema()


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_valid_against_the_published_schema(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    jsonschema.validate(yaml.safe_load(example.read_text()), schema())
    assert load(example).prompts


def test_minimal_file_uses_the_default_model_and_inline_rows(tmp_path: Path) -> None:
    spec = load(write(tmp_path, MINIMAL))
    assert spec.models == [DEFAULT_MODEL]
    assert spec.prompts[0].messages == [{"role": "user", "content": "Explain {{topic}}."}]
    assert spec.prompts[0].name == "Demo / p"
    assert spec.tests.rows == [{"topic": "AI"}]
    assert spec.tests.collection == "Demo tests"
    assert (spec.epochs, spec.rating_mode, spec.overall_threshold) == (1, "detailed", None)


def test_prompt_and_test_files_are_read_relative_to_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.txt").write_text("Say {{a}}.")
    (tmp_path / "sub" / "m.yaml").write_text("- {role: system, content: Be brief.}\n- {role: user, content: '{{b}}'}\n")
    (tmp_path / "sub" / "t.csv").write_text("a,b\nx,y\nz,w\n")
    path = write(
        tmp_path,
        """\
        name: Files
        prompts:
          - {id: one, file: sub/p.txt}
          - {id: two, file: sub/m.yaml}
        tests: {file: sub/t.csv, collection: Rows}
        criteria: ["Ok?"]
        """,
    )
    spec = load(path)
    assert spec.prompts[0].messages == [{"role": "user", "content": "Say {{a}}."}]
    assert spec.prompts[1].messages[0] == {"role": "system", "content": "Be brief."}
    assert spec.tests.rows == [{"a": "x", "b": "y"}, {"a": "z", "b": "w"}]


def test_jsonl_tests_and_models_by_name_and_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_URL", "http://models.example/v1")
    (tmp_path / "t.jsonl").write_text('{"q": "a"}\n\n{"q": "b", "n": 2}\n')
    path = write(
        tmp_path,
        """\
        name: Models
        prompts: [{id: p, text: "{{q}}"}]
        models:
          - shared-config
          - {id: platform, default: true}
          - {id: mine, model: m-1, base_url: "${MY_URL}", api_key_env: KEY, temperature: 0.5}
        tests: {file: t.jsonl}
        criteria: ["Ok?"]
        """,
    )
    spec = load(path)
    assert spec.tests.rows == [{"q": "a"}, {"q": "b", "n": 2}]
    assert spec.models[0].config == "shared-config"
    assert (spec.models[1].id, spec.models[1].config, spec.models[1].create) == ("platform", None, None)
    inline = spec.models[2]
    assert inline.id == "mine" and inline.api_key_env == "KEY"
    assert inline.create == {"llm_model_name": "m-1", "llm_base_url": "http://models.example/v1", "temperature": 0.5}


def test_criteria_with_evaluators_and_thresholds_by_label_or_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: Checks
        prompts: [{id: p, text: "{{q}}"}]
        tests: {rows: [{q: a}]}
        criteria:
          - Is it polite?
          - {criterion: "Is it a number?", label: number, evaluator: regex, params: {pattern: '^\\d+$'}, threshold: 1}
          - Is it short?
        thresholds:
          overall: 0.8
          criteria: {"Is it polite?": 0.5, "Is it short?": 0.25}
        """,
    )
    spec = load(path)
    assert [c.threshold for c in spec.criteria] == [0.5, 1, 0.25]
    assert spec.criteria[1].wire() == {
        "criterion_str": "Is it a number?",
        "label": "number",
        "evaluator": "regex",
        "params": {"pattern": "^\\d+$"},
    }
    assert spec.criteria[0].wire() == {"criterion_str": "Is it polite?", "label": None}
    assert spec.overall_threshold == 0.8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL.replace("    text:", "    txt:"), "eval.yaml:4: prompts[0].txt: unknown field"),
        (MINIMAL.replace("name: Demo\n", ""), "eval.yaml:1: (top level): 'name' is required"),
        (MINIMAL + "epochs: 0\n", "eval.yaml:10: epochs: 0 is less than the minimum of 1"),
        (MINIMAL + "rating_mode: slow\n", "eval.yaml:10: rating_mode: 'slow' is not one of ['fast', 'detailed']"),
        (MINIMAL + "thresholds: {overall: 1.5}\n", "eval.yaml:10: thresholds.overall: 1.5 is greater than"),
        (
            MINIMAL.replace("    text: Explain {{topic}}.", "    text: A\n    file: a.txt"),
            "eval.yaml:3: prompts[0]: give exactly one of text, messages or file",
        ),
        (MINIMAL + "models:\n  - model: m\n    temprature: 1\n", "eval.yaml:12: models[0].temprature: unknown field"),
        (
            MINIMAL + "  - {criterion: x, params: {a: 1}}\n",
            "eval.yaml:10: criteria[1]: params need an evaluator",
        ),
        (
            MINIMAL.replace("Explain {{topic}}", "Explain {{subject}}"),
            "eval.yaml:3: prompts[0]: placeholder {{subject}}",
        ),
        (MINIMAL + "thresholds:\n  criteria:\n    Is it kind?: 0.5\n", "eval.yaml:12: thresholds.criteria.Is it kind?"),
        (MINIMAL + "  - Is it helpful?\n", "eval.yaml:10: criteria[1]: duplicate id 'Is it helpful?'"),
        ("name: [unclosed\n", "eval.yaml:2: not valid YAML"),
        ("# nothing yet\n", "eval.yaml:1: the file is empty"),
        ("- a\n- b\n", "eval.yaml:1: (top level): ['a', 'b'] is not of type 'object'"),
        (
            MINIMAL.replace("rows:\n    - topic: AI", "file: missing.csv"),
            "eval.yaml:6: tests.file: cannot read missing.csv",
        ),
        (MINIMAL + "models: [{model: m, base_url: '${NOT_SET_ANYWHERE}'}]\n", "environment variable NOT_SET_ANYWHERE"),
    ],
    ids=[
        "unknown-field",
        "missing-name",
        "epochs",
        "rating-mode",
        "threshold-range",
        "two-prompt-sources",
        "model-typo",
        "params-without-evaluator",
        "placeholder",
        "threshold-names-nothing",
        "duplicate-criterion",
        "yaml-syntax",
        "empty",
        "not-a-mapping",
        "missing-file",
        "unset-env",
    ],
)
def test_bad_files_name_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert expected in message, message


def test_bad_jsonl_names_its_own_line(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"topic": "a"}\n{"topic": \n')
    message = error_of(tmp_path, MINIMAL.replace("rows:\n    - topic: AI", "file: t.jsonl"))
    assert "eval.yaml:6: tests.file: t.jsonl:2: not JSON" in message


def test_the_readme_example_is_valid_against_the_schema() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## From the terminal", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    jsonschema.validate(yaml.safe_load(example), schema())


def test_dates_in_test_rows_stay_text(tmp_path: Path) -> None:
    spec = load(write(tmp_path, MINIMAL.replace("- topic: AI", "- {topic: AI, day: 2024-05-01}")))
    assert spec.tests.rows == [{"topic": "AI", "day": "2024-05-01"}]
