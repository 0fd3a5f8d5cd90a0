"""Command line: ``python -m fakellm`` / ``assay fake-llm``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .config import FAULT_KINDS, ConfigError, merge_config, normalize_config


def _parse_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key.strip()] = rest.strip()
    return pairs


def _fault_probabilities(values: tuple[str, ...]) -> dict[str, float]:
    faults: dict[str, float] = {}
    for kind, prob in _parse_pairs(values, "--fault").items():
        try:
            faults[kind] = float(prob)
        except ValueError:
            raise click.BadParameter(
                f"probability for {kind!r} is not a number: {prob!r}", param_hint="--fault"
            ) from None
    return faults


def build_config(
    config_json: str | None,
    latency_ms: float | None,
    jitter_ms: float | None,
    seed: int | None,
    faults: tuple[str, ...],
    schedule: tuple[str, ...],
    retry_after: float | None,
    hang_seconds: float | None,
    refuse_json_schema: bool,
    judge_junk: bool,
) -> dict[str, Any]:
    """Combine ``--config-json`` with the individual flags (flags win) into a validated config."""
    try:
        base = normalize_config(json.loads(config_json) if config_json else None)
    except (ValueError, ConfigError) as exc:
        raise click.BadParameter(str(exc), param_hint="--config-json") from None
    patch: dict[str, Any] = {}
    for key, value in (
        ("latency_ms", latency_ms),
        ("jitter_ms", jitter_ms),
        ("seed", seed),
        ("retry_after", retry_after),
        ("hang_seconds", hang_seconds),
    ):
        if value is not None:
            patch[key] = value
    if faults:
        patch["faults"] = _fault_probabilities(faults)
    if schedule:
        patch["schedule"] = {**base["schedule"], **_parse_pairs(schedule, "--schedule")}
    if refuse_json_schema:
        patch["refuse_json_schema"] = True
    if judge_junk:
        patch["judge_junk"] = True
    try:
        return merge_config(base, patch)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _announce(url: str) -> None:
    # Exactly one line on stdout: parent processes (FakeLLM) wait for it to learn the port.
    sys.stdout.write(f"fakellm listening on {url}\n")
    sys.stdout.flush()


@click.command("fake-llm", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to bind; 0 picks a free one.")
@click.option("--latency-ms", type=float, help="Base latency added to every chat request.")
@click.option("--jitter-ms", type=float, help="Extra uniform random latency in [0, jitter-ms].")
@click.option("--seed", type=int, help="Seed of the random generator (faults, jitter).")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=P",
    help=f"Fault probability per request; KIND is one of {', '.join(FAULT_KINDS)}. Repeatable.",
)
@click.option(
    "--schedule",
    multiple=True,
    metavar="SEQ=KIND",
    help="Force a fault (or 'ok') for request number SEQ (1-based, since reset). Repeatable.",
)
@click.option("--retry-after", type=float, help="Retry-After seconds sent with 429 faults.")
@click.option("--hang-seconds", type=float, help="How long a 'hang' fault sleeps before answering.")
@click.option("--refuse-json-schema", is_flag=True, help="Answer 400 to response_format json_schema requests.")
@click.option("--judge-junk", is_flag=True, help="Answer judge requests with unparseable text.")
@click.option("--config-json", help="Full behaviour config as JSON; the flags above override it.")
@click.option(
    "--log-size",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many request records /_fake/requests keeps.",
)
def fake_llm(
    host: str,
    port: int,
    latency_ms: float | None,
    jitter_ms: float | None,
    seed: int | None,
    faults: tuple[str, ...],
    schedule: tuple[str, ...],
    retry_after: float | None,
    hang_seconds: float | None,
    refuse_json_schema: bool,
    judge_junk: bool,
    config_json: str | None,
    log_size: int,
) -> None:
    """Run a fake OpenAI-compatible model server (deterministic answers, scripted faults)."""
    from .server import run  # keeps `--help` and the click group import free of aiohttp

    config = build_config(
        config_json,
        latency_ms,
        jitter_ms,
        seed,
        faults,
        schedule,
        retry_after,
        hang_seconds,
        refuse_json_schema,
        judge_junk,
    )
    run(config, host=host, port=port, log_size=log_size, on_listening=_announce)


def main() -> None:
    """Entry point of ``python -m fakellm``."""
    fake_llm(prog_name="python -m fakellm")
