"""Interpreters with an old `elluminate` SDK installed, for the 0.7.x example scripts.

`sdk_python("0.7.0")` returns the python of a virtual environment that has `elluminate==0.7.0`:

- if `ASSAY_SDK070_PYTHON` (`ASSAY_SDK073_PYTHON` for 0.7.3, ...) names an existing interpreter, that one
  (as is: it is not checked for the SDK);
- otherwise a venv under `$ASSAY_SDK_VENV_DIR/<version>` (default `/tmp/assay-sdk-venvs/<version>`), created
  once with `pip install elluminate==<version> 'httpx>=0.26,<1' python-dotenv` and reused afterwards.

0.7.x imports `httpx` without declaring it, and the batch example calls `load_dotenv`, hence the extras.
Building is guarded by a file lock, so parallel test processes build each venv once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXTRA_REQUIREMENTS = ("httpx>=0.26,<1", "python-dotenv")
# 0.7.x routes even localhost through these; the example tests remove them.
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def env_var(version: str) -> str:
    """`0.7.0` -> `ASSAY_SDK070_PYTHON`."""
    return f"ASSAY_SDK{version.replace('.', '')}_PYTHON"


def venv_root() -> Path:
    return Path(os.environ.get("ASSAY_SDK_VENV_DIR") or "/tmp/assay-sdk-venvs")


def _installed_version(python: Path) -> str | None:
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, httpx, dotenv; print(m.version('elluminate'))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def sdk_python(version: str) -> str:
    """The python of an environment where `import elluminate` gives `version` (built on first use)."""
    override = os.environ.get(env_var(version))
    if override and Path(override).is_file() and os.access(override, os.X_OK):
        return override
    venv = venv_root() / version
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and _installed_version(python) == version:
            return str(python)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"elluminate=={version}", *EXTRA_REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        if install.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"pip install elluminate=={version} failed:\n{install.stdout}\n{install.stderr}")
        installed = _installed_version(python)
        if installed != version:
            raise RuntimeError(f"{python} imports elluminate {installed!r}, expected {version}")
    return str(python)


if __name__ == "__main__":  # python -m tests.e2e.sdk_venvs 0.7.0 0.7.3
    for v in sys.argv[1:] or ["0.7.0", "0.7.3"]:
        print(v, sdk_python(v))
