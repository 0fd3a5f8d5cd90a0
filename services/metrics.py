"""Prometheus metrics shared by the API and the workers, and the one-line hooks that feed them.

Under gunicorn and Celery's process pool every process writes its samples to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode) and `/metrics` adds them up;
`cli.observability.prepare_metrics_dir` sets that folder before anything imports this module.
State that belongs to the cluster (jobs by state, queue depth, free chunks) is read from the
database and Redis when `/metrics` is scraped, in `ClusterCollector`, never counted per process.
"""

from __future__ import annotations

import collections
import contextvars
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_REQUESTS = Counter("assay_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "assay_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
JOB_TRANSITIONS = Counter("assay_job_transitions_total", "Jobs that entered a state", ["kind", "state"])
CHUNKS_CLAIMED = Counter("assay_chunks_claimed_total", "Chunk leases taken by workers", ["kind"])
MODEL_CALLS = Counter("assay_model_calls_total", "Model calls that ended, by outcome", ["model", "outcome"])
MODEL_LATENCY = Histogram(
    "assay_model_call_duration_seconds",
    "A model call's duration, retries and waits included",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
MODEL_RETRIES = Counter("assay_model_retries_total", "Attempts after the first one", ["model"])
MODEL_RATE_LIMITED = Counter("assay_model_rate_limited_total", "429 answers from the provider", ["model"])
MODEL_LIMIT = Gauge(
    "assay_model_concurrency_limit",
    "The cluster-wide concurrency limit in force per model (a 429 halves it)",
    ["model"],
    multiprocess_mode="mostrecent",
)
TOKENS = Counter("assay_model_tokens_total", "Tokens of finished model calls", ["model", "direction"])
COST = Counter("assay_model_cost_usd_total", "Estimated cost of finished model calls (LLM config prices)", ["model"])
EVALUATOR_RUNS = Counter("assay_evaluator_runs_total", "Evaluator criteria computed", ["evaluator", "outcome"])

LIMIT_REFRESH_SECONDS = 5.0
_limit_read_at: dict[str, float] = {}


@dataclass
class CallTally:
    """One job run's model calls on this process, for the line its run log ends with."""

    succeeded: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed: collections.Counter[str] = field(default_factory=collections.Counter)

    def summary(self) -> str | None:
        """E.g. `Model calls here: 40 answered, 2 failed (timeout: 2); 5 retries, 3 rate-limited (429)`."""
        failed = sum(self.failed.values())
        if not (self.succeeded or failed):
            return None
        line = f"Model calls here: {self.succeeded} answered, {failed} failed"
        if failed:
            line += " (" + ", ".join(f"{kind}: {n}" for kind, n in self.failed.most_common()) + ")"
        return line + f"; {self.retries} retries, {self.rate_limited} rate-limited (429)"

    def take_summary(self) -> str | None:
        """`summary()`, then start counting again from zero (so no call is reported twice)."""
        line = self.summary()
        self.succeeded = self.retries = self.rate_limited = 0
        self.failed.clear()
        return line


_tally: contextvars.ContextVar[CallTally | None] = contextvars.ContextVar("assay_call_tally", default=None)


def track_calls() -> CallTally:
    """Count the model calls of this context from now on (a job run's task; its chunks' tasks inherit it)."""
    tally = CallTally()
    _tally.set(tally)
    return tally


def model_call(model: str, outcome: str, seconds: float, attempts: int = 1) -> None:
    """A model call ended (`outcome` is `success` or the failure's kind)."""
    MODEL_CALLS.labels(model, outcome).inc()
    MODEL_LATENCY.labels(model).observe(seconds)
    if attempts > 1:
        MODEL_RETRIES.labels(model).inc(attempts - 1)
    if (tally := _tally.get()) is not None:
        tally.retries += attempts - 1
        if outcome == "success":
            tally.succeeded += 1
        else:
            tally.failed[outcome] += 1


def tokens(model: str, prompt: int, completion: int, cost: float) -> None:
    TOKENS.labels(model, "input").inc(prompt)
    TOKENS.labels(model, "output").inc(completion)
    COST.labels(model).inc(cost)


def rate_limited(model: str) -> None:
    MODEL_RATE_LIMITED.labels(model).inc()
    if (tally := _tally.get()) is not None:
        tally.rate_limited += 1


def model_limit(model: str, limit: int) -> None:
    """The cluster-wide limit in force for `model`, as this process just read it."""
    MODEL_LIMIT.labels(model).set(limit)
    _limit_read_at[model] = time.monotonic()


def limit_due(model: str) -> bool:
    """Whether this process's reading of `model`'s limit is older than LIMIT_REFRESH_SECONDS."""
    return time.monotonic() - _limit_read_at.get(model, float("-inf")) >= LIMIT_REFRESH_SECONDS


def job_state(kind: str, state: str) -> None:
    JOB_TRANSITIONS.labels(str(kind), str(state)).inc()


def chunk_claimed(kind: str) -> None:
    CHUNKS_CLAIMED.labels(str(kind)).inc()


def evaluator_run(evaluator: str, outcome: str) -> None:
    EVALUATOR_RUNS.labels(evaluator, outcome).inc()


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def registry(*extra: Any) -> CollectorRegistry:
    """Every process's samples (multiprocess mode) or this one's, plus `extra` collectors."""
    combined = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(combined)
    else:
        combined.register(_Forward(REGISTRY.collect))
    for collector in extra:
        combined.register(collector)
    return combined


def render(*extra: Any) -> bytes:
    return generate_latest(registry(*extra))


class _Forward:
    def __init__(self, collect: Callable[[], Iterator[Metric]]) -> None:
        self.collect = collect


class ClusterCollector:
    """Gauges read at scrape time: jobs by kind and state, the queue's length, free chunks."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        state = self._read()
        jobs = GaugeMetricFamily("assay_jobs", "Jobs in the database by kind and state", labels=["kind", "state"])
        for (kind, status), count in state.get("jobs", {}).items():
            jobs.add_metric([kind, status], count)
        yield jobs
        if "queue_depth" in state:
            yield GaugeMetricFamily(
                "assay_queue_depth", "Run messages waiting in the Redis queue", state["queue_depth"]
            )
        if "free_chunks" in state:
            yield GaugeMetricFamily(
                "assay_free_chunks",
                "Chunks of active jobs that no worker holds (free or lease expired)",
                state["free_chunks"],
            )
