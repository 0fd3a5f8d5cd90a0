"""Evaluator criteria run in child processes that can be stopped.

Each worker process keeps up to `ASSAY_EVALUATOR_PROCESSES` children, started on first use, each running
one evaluation at a time, so a slow evaluator never blocks the event loop. An evaluation past
`ASSAY_EVALUATOR_TIMEOUT_SECONDS` kills its child (the next evaluation starts a fresh one) and an
evaluator that raises only fails its own rating. The children are fresh interpreters
(`python -m workers.evaluator_pool`) speaking JSON lines, not forks: a worker process is a Celery pool
child with threads, where forking is unsafe and `multiprocessing` refuses to start children of a
daemonic process (so `ProcessPoolExecutor` cannot be used there).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from contextlib import suppress
from typing import Any, TextIO

from services.evaluators import EvalResult, Sample, evaluate, installed

MAX_LINE = 64 * 1024 * 1024
START_TIMEOUT = 60.0
ERROR_CHARS = 500
PR_SET_PDEATHSIG = 1


class EvaluationFailed(Exception):
    """An evaluation gave no verdict; the message is the failed rating's `error`."""


class _Child:
    """One evaluator process and its two pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> _Child:
        """A ready child: it has loaded every evaluator (plugins included) before it answers."""
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers.evaluator_pool",
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=MAX_LINE,
            )
        except OSError as exc:
            raise EvaluationFailed(f"the evaluator process could not start: {exc}") from None
        child = cls(proc)
        try:
            await asyncio.wait_for(child.read(), START_TIMEOUT)
        except TimeoutError:
            await child.kill()
            raise EvaluationFailed(f"the evaluator process did not start within {START_TIMEOUT:g} s") from None
        except BaseException:
            await child.kill()
            raise
        return child

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise EvaluationFailed(f"the evaluator process exited with code {await self.proc.wait()}") from None
        return await self.read()

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await self.proc.stdout.readline()
        except ValueError:  # longer than MAX_LINE
            raise EvaluationFailed("the evaluator process sent a reply that is too long") from None
        if not line:
            raise EvaluationFailed(f"the evaluator process exited with code {await self.proc.wait()}")
        try:
            return json.loads(line)
        except ValueError:
            raise EvaluationFailed(f"the evaluator process sent an unreadable reply: {line[:100]!r}") from None

    async def kill(self) -> None:
        if self.alive:
            with suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()


class EvaluatorPool:
    """A worker process's evaluator children; use it from the engine's event loop only."""

    def __init__(self, size: int, timeout: float) -> None:
        self.timeout = timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Child] = []

    async def evaluate(self, name: str, params: dict[str, Any], sample: Sample) -> EvalResult:
        """Run one evaluation in a child; `EvaluationFailed` when it raises, times out or its process dies."""
        request = {"evaluator": name, "params": params, **dataclasses.asdict(sample)}
        async with self._slots:
            child = await self._take()
            reply = await self._ask(child, request, name)
            self._idle.append(child)
        if "error" in reply:
            raise EvaluationFailed(f"evaluator {name!r} failed: {reply['error']}")
        return EvalResult(reply["passed"], reply["score"], reply["explanation"])

    async def _take(self) -> _Child:
        while self._idle:
            child = self._idle.pop()
            if child.alive:
                return child
            await child.kill()
        return await _Child.start()

    async def _ask(self, child: _Child, request: dict[str, Any], name: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(child.ask(request), self.timeout)
        except BaseException as exc:
            await child.kill()  # its state is unknown (hung, dead or interrupted): never reuse it
            if isinstance(exc, TimeoutError):
                raise EvaluationFailed(f"evaluator {name!r} timed out after {self.timeout:g} s") from None
            if isinstance(exc, EvaluationFailed):
                raise EvaluationFailed(f"evaluator {name!r}: {exc}") from None
            raise

    async def close(self) -> None:
        """Stop the idle children (a busy one is killed by its own evaluation when that is cancelled)."""
        idle, self._idle = self._idle, []
        for child in idle:
            await child.kill()


# --- the child process -----------------------------------------------------------------------------------


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """One request's reply: the result, or the error's summary."""
    sample = Sample(request["messages"], request["response"], request["variables"])
    try:
        result = evaluate(request["evaluator"], request["params"], sample)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]}
    return {"passed": result.passed, "score": result.score, "explanation": result.explanation}


def serve(parent: int) -> None:
    """The child's loop: one JSON request per line on stdin, one JSON reply per line on the original stdout."""
    _exit_with_parent(parent)
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever an evaluator prints goes to the worker's log, not into the replies
    installed()
    _reply(replies, {"ready": True})
    for line in sys.stdin:
        _reply(replies, answer(json.loads(line)))


def _exit_with_parent(parent: int) -> None:
    """A worker killed outright cannot stop its children, so each one ends with it, even mid-evaluation.

    On Linux the kernel kills it (a thread could not, while an evaluator holds the GIL in C code such as a
    runaway regex); elsewhere a thread notices the new parent.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # it died before this process could ask to follow it
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _reply(replies: TextIO, message: dict[str, Any]) -> None:
    replies.write(json.dumps(message) + "\n")
    replies.flush()


if __name__ == "__main__":
    with suppress(KeyboardInterrupt, BrokenPipeError):
        serve(int(sys.argv[1]))
