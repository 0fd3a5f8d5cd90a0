"""The worker's evaluator processes: results cross the process boundary intact, an evaluator's error or
hang fails only its own evaluation, and a hung process is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from services.evaluators import EvalResult, Sample, check_params, evaluate
from workers.evaluator_pool import EvaluationFailed, EvaluatorPool

# Catastrophic backtracking: this search does not finish in any reasonable time.
HANGING_REGEX = ({"pattern": r"(a+)+$"}, Sample([], "a" * 40 + "b", {}))


def _pool_run(test: Callable[[EvaluatorPool], Awaitable[Any]], size: int = 2, timeout: float = 2.0) -> Any:
    async def run() -> Any:
        pool = EvaluatorPool(size, timeout)
        try:
            return await test(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children()}


def test_results_match_the_evaluator_run_in_process() -> None:
    sample = Sample([{"role": "user", "content": "Q"}], "The answer is 42.", {"n": 42})
    cases = [("numeric", {"column": "n"}), ("contains", {"value": "answer"}), ("length", {"max": 3, "unit": "words"})]

    async def test(pool: EvaluatorPool) -> list[EvalResult]:
        return [await pool.evaluate(name, check_params(name, params), sample) for name, params in cases]

    expected = [evaluate(name, check_params(name, params), sample) for name, params in cases]
    assert _pool_run(test) == expected


def test_an_error_fails_only_its_evaluation() -> None:
    async def test(pool: EvaluatorPool) -> EvalResult:
        with pytest.raises(EvaluationFailed, match="evaluator 'exact_match' failed: EvaluatorError: .*no column 'x'"):
            await pool.evaluate(
                "exact_match", {"value": None, "column": "x", "case_sensitive": True}, Sample([], "", {})
            )
        return await pool.evaluate("valid_json", {}, Sample([], "[1]", {}))

    assert _pool_run(test).passed is True


def test_a_hung_evaluation_times_out_its_process_is_killed_and_the_rest_go_on() -> None:
    before = _children()

    async def test(pool: EvaluatorPool) -> tuple[list[Any], set[int], set[int]]:
        hang = pool.evaluate("regex", check_params("regex", HANGING_REGEX[0]), HANGING_REGEX[1])
        quick = [pool.evaluate("valid_json", {}, Sample([], "{}", {})) for _ in range(20)]
        outcomes = await asyncio.gather(hang, *quick, return_exceptions=True)
        return outcomes, _children() - before, {child.proc.pid for child in pool._idle}

    outcomes, alive, idle = _pool_run(test, size=2, timeout=1.0)
    assert isinstance(outcomes[0], EvaluationFailed) and "timed out after 1 s" in str(outcomes[0])
    assert all(isinstance(o, EvalResult) and o.passed for o in outcomes[1:])
    assert alive == idle and len(idle) >= 1  # the hung process is gone; only reusable ones remain
    assert _children() == before  # closing the pool stops its processes


def test_an_unknown_evaluator_on_the_worker_is_a_failed_evaluation() -> None:
    async def test(pool: EvaluatorPool) -> None:
        await pool.evaluate("not_installed_here", {}, Sample([], "", {}))

    with pytest.raises(EvaluationFailed, match="unknown evaluator 'not_installed_here'"):
        _pool_run(test)


ORPHAN_SCRIPT = """
import asyncio, os
import psutil
from services.evaluators import Sample
from workers.evaluator_pool import EvaluatorPool

async def main():
    pool = EvaluatorPool(1, 3600)
    await pool.evaluate("valid_json", {}, Sample([], "{}", {}))  # the child is up
    asyncio.ensure_future(pool.evaluate("regex", {"pattern": r"(a+)+$"}, Sample([], "a" * 40 + "b", {})))
    await asyncio.sleep(1)  # and now stuck in the regex
    print(*[p.pid for p in psutil.Process().children()], flush=True)
    os._exit(0)  # die without stopping the hung evaluation, as a SIGKILLed worker would

asyncio.run(main())
"""


def test_a_child_ends_itself_when_its_worker_dies_outright(tmp_path: Path) -> None:
    # stderr goes to a file: a surviving child would hold a pipe open and block the run until its timeout.
    with open(tmp_path / "stderr", "w") as stderr:
        out = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT], stdout=subprocess.PIPE, stderr=stderr, text=True)
    orphans = [int(pid) for pid in out.stdout.split()]
    assert orphans, (tmp_path / "stderr").read_text()
    deadline = time.monotonic() + 10
    try:
        while any(_running(pid) for pid in orphans):
            assert time.monotonic() < deadline, "the hung evaluator process outlived its worker"
            time.sleep(0.1)
    finally:
        for pid in filter(_running, orphans):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
