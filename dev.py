#!/usr/bin/env python3
"""Set up a local virtualenv on first use, then run the service or the tests.

    python3 dev.py run             # install if needed, then `python -m bot` (extra arguments go to it)
    python3 dev.py test            # install if needed, validate the knowledge base, lint, run pytest
                                   # (four workers; extra arguments go to pytest, `-n 0` for one process)
    python3 dev.py install --prod  # a server: the service's dependencies only, no test tools
                                   # (`run` keeps a production install as it is)

Only the standard library is used here, so it works on a fresh machine with Python 3.11+.
"""

from __future__ import annotations

import hashlib
import os
import signal
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


def _installed() -> tuple[str, str]:
    """(fingerprint of the pyproject.toml installed from, "dev" or "prod"); empty if none."""
    text = STAMP.read_text().split() if STAMP.exists() else []
    return (text[0], text[1] if len(text) > 1 else "dev") if text else ("", "")


def ensure_env(flavour: str | None = None) -> None:
    """Install what is missing. `flavour`: "dev" (with the test tools), "prod" (the service's
    dependencies only), or None: whatever is installed now, "dev" on a fresh checkout."""
    if sys.version_info < (3, 11):  # noqa: UP036 - the message is the point
        sys.exit("Python 3.11 or newer is required.")
    if not PY.exists():
        print("Creating virtualenv in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint, installed = _installed()
    wanted = flavour or installed or "dev"
    if fingerprint == _fingerprint() and installed == wanted:
        return
    print(f"Installing dependencies ({'first run or pyproject.toml changed' if installed == wanted else wanted}) ...",
          flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    # A server gets a plain install (no Playwright, bm25s, hypothesis ...); `python -m bot`
    # still runs the code of this checkout, the service's working directory.
    subprocess.run([*pip, "."] if wanted == "prod" else [*pip, "-e", ".[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(f"{_fingerprint()} {wanted}")


def run(*args: str, env: dict[str, str] | None = None) -> int:
    """Run the venv's python and return its exit code. Ctrl+C in a terminal reaches the child
    too, which shuts down on its own: wait for it (no traceback here). A SIGINT sent to this
    process alone is passed on if the child is still running a moment later."""
    child = subprocess.Popen([str(PY), *args], cwd=ROOT, env=env)
    while True:
        try:
            return _status(child.wait())
        except KeyboardInterrupt:
            try:
                return _status(child.wait(timeout=2))
            except subprocess.TimeoutExpired:
                if os.name != "nt":
                    child.send_signal(signal.SIGINT)
            except KeyboardInterrupt:
                continue


def _status(code: int) -> int:
    """A child killed by a signal (negative code) exits as a shell reports it: 128 + signal."""
    return 128 - code if code < 0 else code


def _workers(extra: list[str]) -> list[str]:
    """Four pytest-xdist workers unless told otherwise (`-n 0` runs in one process): most slow
    tests wait on rate limits, retries and restarts rather than the CPU, so four beat two cores.
    Work stealing: a worker that finishes early takes tests queued for a busy one, so the run
    does not end waiting on one worker's backlog of slow process tests."""
    if any(a.startswith(("-n", "--numprocesses")) for a in extra):
        return []
    return ["-n", "4", "--dist", "worksteal"]


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    extra = sys.argv[2:]
    if command == "install":
        if extra not in ([], ["--prod"], ["--dev"]):
            sys.exit("usage: python3 dev.py install [--prod|--dev]")
        ensure_env("prod" if extra == ["--prod"] else "dev")
        return 0
    ensure_env("dev" if command == "test" else None)
    if command == "run":
        (ROOT / "data").mkdir(exist_ok=True)
        return run("-m", "bot", *extra)
    if command == "test":
        # Byte-code for the project's own modules, written once here: the suite starts a few
        # hundred Python processes, and where PYTHONDONTWRITEBYTECODE is set (as on CI) each
        # would compile every module again (about 0.3 s of CPU apiece).
        steps = (["-m", "compileall", "-q", "bot", "handlers", "knowledge", "tests"],
                 ["-m", "bot", "kb", "validate"], ["-m", "ruff", "check", "."])
        for step in steps:
            code = run(*step)
            if code:
                return code
        # pytest keeps its assertion-rewritten test modules only where byte-code may be written;
        # without that cache each of the four workers rewrites and compiles all of them (5 s of
        # CPU apiece on two cores). One collection writes the cache for all of them.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([str(PY), "-m", "pytest", "--collect-only", "-q"], cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return run("-m", "pytest", *_workers(extra), *extra, env=env)
    sys.exit(f"unknown command {command!r}; use 'run', 'test' or 'install [--prod]'")


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # while installing: pip has stopped; no traceback
        raise SystemExit(130) from None
