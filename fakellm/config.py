"""Behaviour configuration of the fake server: defaults, validation and per-model merging."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

FAULT_KINDS: tuple[str, ...] = ("429", "500", "401", "hang", "malformed")
"""Fault names accepted in ``faults`` (probabilities) and ``schedule`` (by sequence number)."""

SCHEDULE_OK = "ok"
"""Schedule value that forces a normal answer for that sequence number."""

DEFAULT_CONFIG: dict[str, Any] = {
    "latency_ms": 0,
    "jitter_ms": 0,
    "seed": 0,
    "faults": {kind: 0.0 for kind in FAULT_KINDS},
    "schedule": {},
    "retry_after": 1,
    "hang_seconds": 600,
    "refuse_json_schema": False,
    "judge_junk": False,
    "models": {},
}

# Keys that make no sense per model: the seed drives one shared RNG, and overrides don't nest.
_GLOBAL_ONLY = frozenset({"seed", "models"})


class ConfigError(ValueError):
    """Raised when a behaviour config is invalid; the message says which key and why."""


def default_config() -> dict[str, Any]:
    """Return a fresh copy of the default config."""
    return copy.deepcopy(DEFAULT_CONFIG)


def normalize_config(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``raw`` and return a complete config (missing keys take their defaults).

    Raises:
        ConfigError: on unknown keys, wrong types or out-of-range values.
    """
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError("config must be a JSON object")
    raw = dict(raw or {})
    models = raw.pop("models", None) or {}
    cfg = _merge(default_config(), _check_section(raw, where="config", allow_global=True))
    if not isinstance(models, Mapping):
        raise ConfigError("config.models must be an object mapping model name -> overrides")
    cfg["models"] = {
        str(name): _check_section(dict(override or {}), where=f"models[{name!r}]", allow_global=False)
        for name, override in models.items()
    }
    _check_fault_total(cfg["faults"], "config.faults")
    for name in cfg["models"]:
        _check_fault_total(model_config(cfg, name)["faults"], f"models[{name!r}].faults")
    return cfg


def merge_config(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``patch`` deep-merged over it, then validated."""
    return normalize_config(_merge(copy.deepcopy(dict(base)), patch))


def model_config(cfg: Mapping[str, Any], model: str | None) -> dict[str, Any]:
    """Return the effective config for ``model``: its override (if any) deep-merged over ``cfg``."""
    override = cfg["models"].get(model or "")
    base = {key: value for key, value in cfg.items() if key != "models"}
    return _merge(copy.deepcopy(base), override) if override else base


def _merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict) and key != "schedule":
            base[key] = _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _check_section(section: dict[str, Any], *, where: str, allow_global: bool) -> dict[str, Any]:
    allowed = set(DEFAULT_CONFIG) - (set() if allow_global else _GLOBAL_ONLY)
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    checked = dict(section)
    for key in ("latency_ms", "jitter_ms", "hang_seconds"):
        if key in checked:
            checked[key] = _non_negative(checked[key], f"{where}.{key}")
    if "seed" in checked:
        checked["seed"] = _integer(checked["seed"], f"{where}.seed")
    if checked.get("retry_after") is not None:
        checked["retry_after"] = _non_negative(checked["retry_after"], f"{where}.retry_after")
    for key in ("refuse_json_schema", "judge_junk"):
        if key in checked and not isinstance(checked[key], bool):
            raise ConfigError(f"{where}.{key} must be a boolean")
    if "faults" in checked:
        checked["faults"] = _check_faults(checked["faults"], f"{where}.faults")
    if "schedule" in checked:
        checked["schedule"] = _check_schedule(checked["schedule"], f"{where}.schedule")
    return checked


def _check_faults(faults: Any, where: str) -> dict[str, float]:
    if not isinstance(faults, Mapping):
        raise ConfigError(f"{where} must be an object mapping fault -> probability")
    checked: dict[str, float] = {}
    for kind, prob in faults.items():
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ConfigError(f"{where}: unknown fault {kind!r}; known: {list(FAULT_KINDS)}")
        value = _non_negative(prob, f"{where}[{kind!r}]")
        if value > 1:
            raise ConfigError(f"{where}[{kind!r}] must be a probability in [0, 1]")
        checked[kind] = value
    return checked


def _check_fault_total(faults: Mapping[str, float], where: str) -> None:
    if sum(faults.values()) > 1 + 1e-9:
        raise ConfigError(f"{where}: probabilities add up to more than 1")


def _check_schedule(schedule: Any, where: str) -> dict[str, str]:
    if not isinstance(schedule, Mapping):
        raise ConfigError(f"{where} must be an object mapping sequence number -> fault")
    checked: dict[str, str] = {}
    for seq, fault in schedule.items():
        try:
            number = int(seq)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: key {seq!r} is not a sequence number") from None
        if number < 1:
            raise ConfigError(f"{where}: sequence numbers start at 1, got {number}")
        fault = str(fault)
        if fault not in FAULT_KINDS and fault != SCHEDULE_OK:
            raise ConfigError(f"{where}[{seq!r}]: unknown fault {fault!r}; known: {[*FAULT_KINDS, SCHEDULE_OK]}")
        checked[str(number)] = fault
    return checked


def _non_negative(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where} must be a non-negative number, got {json.dumps(value, default=str)}")
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer")
    return value
