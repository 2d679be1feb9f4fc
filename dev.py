#!/usr/bin/env python3
"""Set up a local virtualenv on first use, then run the service or the tests.

    python3 dev.py run     # install if needed, then `python -m bot`
    python3 dev.py test    # install if needed, validate the knowledge base, lint, run pytest
                           # (four workers; extra arguments go to pytest, `-n 0` for one process)

Only the standard library is used here, so it works on a fresh machine with Python 3.11+.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - the message is the point
        sys.exit("Python 3.11 or newer is required.")
    if not PY.exists():
        print("Creating virtualenv in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("Installing dependencies (first run or pyproject.toml changed) ...", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, "-e", ".[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(_fingerprint())


def run(*args: str) -> int:
    return subprocess.run([str(PY), *args], cwd=ROOT).returncode


def _workers(extra: list[str]) -> list[str]:
    """Four pytest-xdist workers unless told otherwise (`-n 0` runs in one process): most slow
    tests wait on rate limits, retries and restarts rather than the CPU, so four beat two cores."""
    if any(a.startswith(("-n", "--numprocesses")) for a in extra):
        return []
    return ["-n", "4"]


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    extra = sys.argv[2:]
    ensure_env()
    if command == "run":
        (ROOT / "data").mkdir(exist_ok=True)
        return run("-m", "bot", *extra)
    if command == "test":
        for step in (["-m", "bot", "kb", "validate"], ["-m", "ruff", "check", "."]):
            code = run(*step)
            if code:
                return code
        return run("-m", "pytest", *_workers(extra), *extra)
    sys.exit(f"unknown command {command!r}; use 'run' or 'test'")


if __name__ == "__main__":
    raise SystemExit(main())
