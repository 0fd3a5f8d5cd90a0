"""P1-P6 of the benchmark issue. Each returns a dict of figures; ratios are measured within one run."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import diy
from bench.stack import BenchStack, cpu_seconds, rss_mb
from bench.workload import Api, prepare, run_timed, start, wait

RUNS = 3


def _median(measure: Callable[[int], float], runs: int = RUNS) -> float:
    return statistics.median(measure(i) for i in range(runs))


def _api(stack: BenchStack) -> Api:
    project_id, key = stack.project_key()
    return Api(stack.base_url, project_id, key)


def p1(n: int = 500, k: int = 3, c: int = 64, latency_ms: int = 200) -> dict[str, Any]:
    """One experiment against the latency-bound limit and against the DIY script."""
    stack = BenchStack({"ASSAY_WORKER_MAX_INFLIGHT": str(c), "ASSAY_LLM_MAX_CONNECTIONS": str(c)}).start()
    try:
        stack.fake.configure({"latency_ms": latency_ms})
        api = _api(stack)
        assay = _median(lambda i: run_timed(api, f"P1 run {i}", prepare(api, f"P1 {i}", n, k)))
        mine = _median(lambda i: diy.run_sync(stack.fake.base_url, n, k, c))
    finally:
        stack.stop()
    limit = math.ceil(n * (1 + k) / c) * latency_ms / 1000
    return {"assay_s": assay, "diy_s": mine, "limit_s": limit, "vs_limit": assay / limit, "vs_diy": assay / mine}


def p2(n: int = 200, k: int = 1, c: int = 64, latency_ms: int = 200) -> dict[str, Any]:
    """Three experiments at once, each with its own LLM config, against one alone."""
    settings = {"ASSAY_WORKER_MAX_INFLIGHT": str(4 * c), "ASSAY_LLM_MAX_CONNECTIONS": str(3 * c)}
    stack = BenchStack(settings).start()
    try:
        stack.fake.configure({"latency_ms": latency_ms})
        api = _api(stack)
        configs = [
            api.post(
                "llm_configs",
                json={
                    "name": f"cfg{i}",
                    "llm_model_name": "fake-model",
                    "api_key": f"sk-{i}",
                    "llm_base_url": stack.fake.base_url,
                    "max_connections": c,
                },
            )["id"]
            for i in range(3)
        ]
        alone = _median(lambda i: run_timed(api, f"P2 alone {i}", prepare(api, f"P2a {i}", n, k), configs[0]))
        together = _median(lambda i: _three_at_once(api, configs, i, n, k))
    finally:
        stack.stop()
    return {"one_s": alone, "three_s": together, "ratio": together / alone}


def _three_at_once(api: Api, configs: list[int], run: int, n: int, k: int) -> float:
    setups = [prepare(api, f"P2 {run}-{j}", n, k) for j in range(3)]
    began = time.perf_counter()
    started = [start(api, f"P2 run {run}-{j}", setup, configs[j]) for j, setup in enumerate(setups)]
    for experiment_id, task_id in started:
        wait(api, experiment_id, task_id)
    return time.perf_counter() - began


def p3(n: int = 200, k: int = 1, cap: int = 16, latency_ms: int = 200) -> dict[str, Any]:
    """Two worker processes against one, when the per-worker cap is the limit."""
    times = {workers: _p3_once(workers, n, k, cap, latency_ms) for workers in (1, 2)}
    return {"one_worker_s": times[1], "two_workers_s": times[2], "ratio": times[2] / times[1]}


def _p3_once(workers: int, n: int, k: int, cap: int, latency_ms: int) -> float:
    settings = {"ASSAY_WORKER_MAX_INFLIGHT": str(cap), "ASSAY_LLM_MAX_CONNECTIONS": "1000"}
    stack = BenchStack(settings, workers=workers).start()
    try:
        stack.fake.configure({"latency_ms": latency_ms})
        api = _api(stack)
        time.sleep(1.5)  # every worker has scouted once
        return _median(lambda i: run_timed(api, f"P3 {workers} {i}", prepare(api, f"P3 {i}", n, k)))
    finally:
        stack.stop()


def p4(n: int = 2000, k: int = 1) -> dict[str, Any]:
    """Model calls per worker CPU-second through the platform, against the bare openai client."""
    stack = BenchStack({"ASSAY_WORKER_MAX_INFLIGHT": "64", "ASSAY_LLM_MAX_CONNECTIONS": "64"}).start()
    try:
        api = _api(stack)
        setup = prepare(api, "P4", n, k)
        before = cpu_seconds(stack.worker_processes())
        run_timed(api, "P4 run", setup)
        platform = n * (1 + k) / (cpu_seconds(stack.worker_processes()) - before)
        bare = _bare_calls_per_cpu_second(stack.fake.base_url, n * (1 + k))
    finally:
        stack.stop()
    return {"platform_calls_per_cpu_s": platform, "bare_calls_per_cpu_s": bare, "ratio": platform / bare}


def p7(n: int = 500, k: int = 3, runs: int = 5) -> dict[str, Any]:
    """CPU per model call over consecutive runs on one database (L=0): it must stay flat as history grows.

    Beside each run, the bare client's CPU per call on the same fake server (P4's reference): the host's
    own drift moves both, the database's history only Assay's, so their ratio ("normalised") tells the two
    apart. The target is on the raw figures."""
    stack = BenchStack({"ASSAY_WORKER_MAX_INFLIGHT": "64", "ASSAY_LLM_MAX_CONNECTIONS": "64"}).start()
    per_call_ms, bare_ms = [], []
    try:
        api = _api(stack)
        for i in range(runs):
            setup = prepare(api, f"P7 {i}", n, k)
            before = cpu_seconds(stack.worker_processes())
            run_timed(api, f"P7 run {i}", setup)
            per_call_ms.append((cpu_seconds(stack.worker_processes()) - before) * 1000 / (n * (1 + k)))
            bare_ms.append(1000 / _bare_calls_per_cpu_second(stack.fake.base_url, n * (1 + k)))
    finally:
        stack.stop()
    normalised = [mine / bare for mine, bare in zip(per_call_ms, bare_ms, strict=True)]
    return {
        "spread": max(per_call_ms) / min(per_call_ms) - 1,
        "normalised_spread": max(normalised) / min(normalised) - 1,
        **{f"run{i + 1}_ms": ms for i, ms in enumerate(per_call_ms)},
        **{f"bare{i + 1}_ms": ms for i, ms in enumerate(bare_ms)},
    }


def _bare_calls_per_cpu_second(base_url: str, calls: int) -> float:
    import resource

    from openai import AsyncOpenAI, DefaultAioHttpClient

    async def run() -> None:
        async with AsyncOpenAI(
            base_url=base_url, api_key="x", max_retries=0, http_client=DefaultAioHttpClient()
        ) as client:
            semaphore = asyncio.Semaphore(64)

            async def one() -> None:
                async with semaphore:
                    await client.chat.completions.create(
                        model="fake-model", messages=[{"role": "user", "content": "hi"}]
                    )

            await asyncio.gather(*(one() for _ in range(calls)))

    before = resource.getrusage(resource.RUSAGE_SELF)
    asyncio.run(run())
    after = resource.getrusage(resource.RUSAGE_SELF)
    return calls / ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def p5(submissions: int = 50, streams: int = 500) -> dict[str, Any]:
    """Submit-to-STARTED latency, and how many SSE streams one API holds with events on time."""
    settings = {"ASSAY_WORKER_MAX_INFLIGHT": "64", "BENCH_API_THREADS": str(streams // 2 + 50)}
    stack = BenchStack(settings).start()
    try:
        stack.fake.configure({"latency_ms": 50})
        api = _api(stack)
        setup = prepare(api, "P5", 1, 1)
        measured = [_start_latency(stack, api, setup, i) for i in range(submissions)]
        stream_figures = _streams(stack, api, streams)
    finally:
        stack.stop()
    starts = sorted(start for start, _ in measured)
    posts = sorted(post for _, post in measured)
    return {
        "start_median_ms": statistics.median(starts) * 1000,
        "start_p99_ms": _p99(starts) * 1000,
        "submit_request_median_ms": statistics.median(posts) * 1000,
        **stream_figures,
    }


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.99 * len(values)))]


def _start_latency(stack: BenchStack, api: Api, setup: Any, i: int) -> tuple[float, float]:
    """(job row created -> STARTED, from the job table; the submitting POST's round trip)."""
    began = time.perf_counter()
    experiment_id, task_id = start(api, f"P5 start {i}", setup)
    post = time.perf_counter() - began
    wait(api, experiment_id, task_id)
    latency = stack.job_start_latency(task_id)
    assert latency is not None, f"job {task_id} never started"
    return latency, post


def _streams(stack: BenchStack, api: Api, streams: int) -> dict[str, Any]:
    import aiohttp

    stack.fake.configure({"latency_ms": 2000})
    setup = prepare(api, "P5 streams", 40, 1)
    # 8 connections: 80 calls of 2 s take about 20 s, so the job outlasts the opening of every stream and
    # each stream sees progress every 2 s (however fast the job starts, with or without a slow start).
    config = api.post(
        "llm_configs",
        json={
            "name": "P5 streams",
            "llm_model_name": "fake-model",
            "api_key": "sk-streams",
            "llm_base_url": stack.fake.base_url,
            "max_connections": 8,
        },
    )["id"]
    experiment_id, task_id = start(api, "P5 streams run", setup, config)
    url = api.url(f"experiments/{experiment_id}/generation/{task_id}/stream?polling_interval=1")
    rss_before = rss_mb(stack.api_processes())

    async def watch(session: aiohttp.ClientSession) -> list[float]:
        arrivals = []
        async with session.get(url, headers={"X-API-Key": api.key}) as res:
            async for line in res.content:
                if line.startswith(b"data:"):
                    arrivals.append(time.perf_counter())
        return arrivals

    async def run() -> tuple[list[list[float]], float]:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=600), connector=aiohttp.TCPConnector(limit=0)
        ) as session:
            tasks = [asyncio.create_task(watch(session)) for _ in range(streams)]
            await asyncio.sleep(3)
            rss_peak = rss_mb(stack.api_processes())
            return await asyncio.gather(*tasks), rss_peak

    results, rss_peak = asyncio.run(run())
    on_time = sum(
        1
        for arrivals in results
        if len(arrivals) >= 2 and max(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) < 5.0
    )
    return {
        "streams": streams,
        "streams_on_time": on_time,
        "memory_per_stream_kb": max(0.0, rss_peak - rss_before) * 1024 / streams,
    }


def p6(n: int = 100_000) -> dict[str, Any]:
    """On demand: 100,000 entries, K=1, L=0: worker peak RSS over time and one page read."""
    stack = BenchStack({"ASSAY_WORKER_MAX_INFLIGHT": "64", "ASSAY_LLM_MAX_CONNECTIONS": "64"}).start()
    try:
        api = _api(stack)
        setup = prepare(api, "P6", n, 1)
        experiment_id, task_id = start(api, "P6 run", setup)
        samples = []
        while api.get(f"experiments/{experiment_id}/generation/{task_id}")["status"] in ("PENDING", "STARTED"):
            samples.append(rss_mb(stack.worker_processes()))
            time.sleep(1)
        # Five reads of the same page: the first of each API process also compiles its statements.
        reads = []
        for _ in range(5):
            began = time.perf_counter()
            api.get("responses", params={"experiment_id": experiment_id, "page": n // 100})
            reads.append((time.perf_counter() - began) * 1000)
    finally:
        stack.stop()
    return {
        "worker_peak_rss_mb": max(samples),
        "rss_first_mb": samples[0],
        "rss_last_mb": samples[-1],
        "page_first_ms": reads[0],
        "page_ms": statistics.median(reads),
    }
