"""The compose file, the Procfile and the CLI they call agree with each other."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    # .ci/run installs Debian's docker-compose and fails the run on any skip, so CI always validates.
    pytest.skip("docker-compose is not installed (apt-get install docker-compose)")


def test_compose_file_is_valid_and_has_every_service() -> None:
    out = subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert set(out.stdout.split()) >= {"redis", "postgres", "migrate", "api", "worker", "sweeper", "flower"}


def test_every_procfile_process_is_an_assay_command() -> None:
    processes = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(processes) == {"release", "web", "worker", "sweeper"}
    for command in processes.values():
        words = command.split()
        assert words[0] == "assay"
        subprocess.run([sys.executable, "-m", "cli", words[1], "--help"], check=True, capture_output=True, cwd=ROOT)
