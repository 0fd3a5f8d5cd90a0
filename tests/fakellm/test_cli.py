"""The command line (``python -m fakellm`` / the click command) and the FakeLLM process helper."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fakellm import FakeLLM
from fakellm.cli import fake_llm
from fakellm.testing import FakeLLMError

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fakellm", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_announces_once_applies_flags_and_exits_on_signal(sig: signal.Signals) -> None:
    process, line = start_cli(
        "--latency-ms",
        "7",
        "--fault",
        "429=0.1",
        "--fault",
        "500=0.05",
        "--retry-after",
        "3",
        "--seed",
        "9",
        "--refuse-json-schema",
        "--schedule",
        "2=hang",
        "--config-json",
        json.dumps({"jitter_ms": 4, "latency_ms": 1}),
    )
    try:
        assert line.startswith("fakellm listening on http://127.0.0.1:") and line.endswith("/v1\n")
        root = line.split(" on ", 1)[1].strip().removesuffix("/v1")
        with NO_PROXY.open(root + "/_fake/config", timeout=10) as response:
            config = json.loads(response.read())
        assert config["latency_ms"] == 7 and config["jitter_ms"] == 4 and config["seed"] == 9
        assert config["faults"]["429"] == 0.1 and config["faults"]["500"] == 0.05
        assert config["retry_after"] == 3 and config["refuse_json_schema"] is True
        assert config["schedule"] == {"2": "hang"}
    finally:
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert stdout == ""  # nothing after the listening line
    assert "Traceback" not in stderr


def test_cli_rejects_bad_config() -> None:
    result = CliRunner().invoke(fake_llm, ["--fault", "teapot=0.5"])
    assert result.exit_code != 0 and "unknown fault" in result.output


def test_click_command_mounts_as_fake_llm() -> None:
    group = click.Group("assay")
    group.add_command(fake_llm)
    result = CliRunner().invoke(group, ["fake-llm", "--help"])
    assert result.exit_code == 0 and "--latency-ms" in result.output and "--config-json" in result.output


def test_fakellm_helper_starts_configures_and_stops() -> None:
    with FakeLLM(latency_ms=2, models={"m": {"faults": {"500": 1.0}}}) as fake:
        assert fake.running and fake.base_url.endswith("/v1")
        assert fake.config()["latency_ms"] == 2 and "m" in fake.config()["models"]
        process = fake._process
    assert process is not None and process.poll() is not None
    assert not fake.running
    fake.close()  # idempotent


def test_fakellm_helper_reports_startup_failure() -> None:
    with pytest.raises(FakeLLMError, match="unknown key"):
        FakeLLM(not_a_key=1).start()


def test_close_does_not_wait_for_hanging_requests() -> None:
    with FakeLLM(faults={"hang": 1.0}, hang_seconds=600) as fake:
        request = urllib.request.Request(
            fake.base_url + "/chat/completions",
            data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        worker = threading.Thread(target=_swallow, args=(request,), daemon=True)
        worker.start()
        deadline = time.monotonic() + 10
        while fake.stats()["in_flight"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        started = time.monotonic()
        fake.close()
        assert time.monotonic() - started < 8  # generous; hang_seconds is 600
    worker.join(timeout=10)


def _swallow(request: urllib.request.Request) -> None:
    try:
        NO_PROXY.open(request, timeout=30).read()
    except OSError:
        pass


def test_package_import_is_light() -> None:
    code = "import sys, fakellm; assert 'aiohttp' not in sys.modules and 'click' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
