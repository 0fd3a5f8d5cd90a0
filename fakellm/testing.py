"""``FakeLLM``: run the fake server in a subprocess and drive its control API (stdlib only)."""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_LISTENING_PREFIX = "fakellm listening on "
# Control calls go straight to the local server, never through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeLLMError(RuntimeError):
    """The fake server failed to start, or a control call failed."""


class FakeLLM:
    """A fake model server in a subprocess (``python -m fakellm --port 0``).

    Use as a context manager (or call :meth:`start`/:meth:`close`)::

        with FakeLLM(latency_ms=5) as fake:
            client = AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
            ...
            assert fake.stats()["calls"] == 3

    Keyword arguments (and/or ``config``) are the initial behaviour config (see README.md).
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 120.0,
        log_size: int | None = None,
        **config_kwargs: Any,
    ) -> None:
        self._config = {**(config or {}), **config_kwargs}
        self._host = host
        self._startup_timeout = startup_timeout
        self._log_size = log_size
        self._process: subprocess.Popen[str] | None = None
        self._stderr: Any = None
        self.base_url = ""
        """The OpenAI base URL, ``http://127.0.0.1:<port>/v1`` (set once started)."""
        self.control_url = ""
        """The server root, ``http://127.0.0.1:<port>`` (set once started)."""

    # ------------------------------------------------------------- lifecycle

    def start(self) -> FakeLLM:
        """Start the subprocess and wait until it listens. Idempotent."""
        if self._process is not None:
            return self
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            self._command(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=_child_env(),
        )
        atexit.register(self.close)
        try:
            line = self._wait_for_listening_line()
        except BaseException:
            self.close()
            raise
        self.base_url = line[len(_LISTENING_PREFIX) :].strip()
        self.control_url = self.base_url.removesuffix("/v1")
        return self

    def _command(self) -> list[str]:
        command = [sys.executable, "-u", "-m", "fakellm", "--host", self._host, "--port", "0"]
        if self._config:
            command += ["--config-json", json.dumps(self._config)]
        if self._log_size is not None:
            command += ["--log-size", str(self._log_size)]
        return command

    def _wait_for_listening_line(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        # A thread rather than select(): works on every platform, and keeps draining stdout.
        threading.Thread(target=_pump, args=(self._process.stdout, lines), daemon=True).start()
        try:
            line = lines.get(timeout=self._startup_timeout)
        except queue.Empty:
            raise FakeLLMError(f"fakellm did not start within {self._startup_timeout}s{self._stderr_tail()}") from None
        if not line.startswith(_LISTENING_PREFIX):
            raise FakeLLMError(f"fakellm failed to start (got {line!r}){self._stderr_tail()}")
        return line

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read()[-4000:]
        return f"; stderr:\n{text}" if text else ""

    def close(self) -> None:
        """Terminate the subprocess and wait for it (killing it if it won't stop). Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.close)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    # ----------------------------------------------------------- control API

    def configure(self, config: Mapping[str, Any] | None = None, /, **config_kwargs: Any) -> dict[str, Any]:
        """Replace the behaviour config (keys left out take their defaults); returns the new config."""
        return self._call("POST", "/_fake/config", {**(config or {}), **config_kwargs})

    def update_config(self, config: Mapping[str, Any] | None = None, /, **config_kwargs: Any) -> dict[str, Any]:
        """Deep-merge into the current config; returns the new config."""
        return self._call("PATCH", "/_fake/config", {**(config or {}), **config_kwargs})

    def config(self) -> dict[str, Any]:
        """The current behaviour config."""
        return self._call("GET", "/_fake/config")

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset: calls, by_status, in_flight, max_in_flight, by_model, by_kind."""
        return self._call("GET", "/_fake/stats")

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Request records with ``seq > since`` (oldest first)."""
        return self._call("GET", f"/_fake/requests?since={int(since)}")["requests"]

    def reset(self) -> None:
        """Zero counters and the request log, and free hanging requests; the config is kept."""
        self._call("POST", "/_fake/reset", {})

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        if not self.control_url:
            raise FakeLLMError("FakeLLM is not started")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.control_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise FakeLLMError(f"{method} {path} -> {exc.code}: {exc.read().decode(errors='replace')}") from None


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):  # stream closed by close() while reading
        pass
    lines.put("")  # EOF: the process exited


def _child_env() -> dict[str, str]:
    # Make `-m fakellm` importable whatever the caller's working directory is.
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env
