"""Which model a call goes to: LLM configs, the platform default, named judges and generation params."""

from __future__ import annotations

from services.execution import judge_spec, resolve_rating_version, with_generation_params
from services.settings import load_settings


def test_rating_version_selects_a_configured_judge_and_falls_back_to_the_default() -> None:
    settings = load_settings({"judge_model": "judge-default", "judge_versions": {"v2": "judge-two"}})
    assert judge_spec(settings, "v2").model == "judge-two"
    for requested in (None, "latest", "unknown"):
        assert resolve_rating_version(settings, requested) == "default"
        assert judge_spec(settings, requested).model == "judge-default"


def test_without_a_judge_model_the_default_model_judges() -> None:
    settings = load_settings({"llm_model": "base", "judge_model": None})
    assert judge_spec(settings).model == "base"


def test_generation_params_override_only_what_they_set() -> None:
    spec = judge_spec(load_settings({"llm_model": "m"}))
    tuned = with_generation_params(spec, {"temperature": 0.2, "max_tokens": 50, "top_p": None, "max_connections": 3})
    assert (tuned.temperature, tuned.max_tokens, tuned.top_p) == (0.2, 50, None)
    assert tuned.max_connections == spec.max_connections
    assert with_generation_params(spec, None) is spec
