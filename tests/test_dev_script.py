"""dev.py (stdlib only): Ctrl+C on `run` ends quietly with the service's exit code, and
`install --prod` installs without the development extras.

Each test copies dev.py and pyproject.toml into a scratch project whose `.venv/bin/python` is a
small shell script: it runs this test run's interpreter (the real service), or records the
pip commands dev.py gives it (nothing is downloaded)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals and shell scripts")


def project(tmp_path: Path, python_script: str) -> Path:
    where = tmp_path / "project"
    (where / ".venv" / "bin").mkdir(parents=True)
    for name in ("dev.py", "pyproject.toml"):
        shutil.copy(ROOT / name, where / name)
    python = where / ".venv" / "bin" / "python"
    python.write_text("#!/bin/sh\n" + python_script)
    python.chmod(0o755)
    return where


def stamp(where: Path, flavour: str) -> None:
    fingerprint = hashlib.sha256((where / "pyproject.toml").read_bytes()).hexdigest()
    (where / ".venv" / ".installed").write_text(f"{fingerprint} {flavour}")



RESTORE_SIGINT_AND_RUN = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                          "os.execv(sys.executable, [sys.executable, 'dev.py', 'run'])")


def start_service(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    where = project(tmp_path, f'exec "{sys.executable}" "$@"\n')
    stamp(where, "dev")
    (where / "empty.env").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL"))}
    env.update(PYTHONPATH=str(ROOT), ENV_FILE=str(where / "empty.env"), WEB_PORT=str(free_port()),
               WEB_HOST="127.0.0.1", USER_KEY_SECRET="test-secret", LOG_FORMAT="text")
    log = where / "out.log"
    with log.open("wb") as out:
        # Its own session, like a terminal's foreground job: killpg = Ctrl+C. With SIGINT's
        # default disposition, as in a terminal: a runner started in the background (a shell's
        # `&`) ignores SIGINT, and its children would inherit that.
        proc = subprocess.Popen([sys.executable, "-c", RESTORE_SIGINT_AND_RUN], cwd=where, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while b"listening on" not in log.read_bytes():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return proc, log


@pytest.mark.parametrize("to", ["terminal", "dev.py alone"])
def test_ctrl_c_on_run_exits_quietly_with_the_service_code(tmp_path, to):
    proc, log = start_service(tmp_path)
    if to == "terminal":  # the terminal signals the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0  # the service's own code after a clean shutdown
    output = log.read_text()
    assert "shutting down" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output


def test_install_prod_installs_without_dev_extras_and_run_keeps_it(tmp_path):
    where = project(tmp_path, 'echo "$*" >> "$(dirname "$0")/../../pip.log"\n')
    pip_log = where / "pip.log"

    def dev(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "dev.py", *args], cwd=where, capture_output=True, text=True,
                              timeout=60)

    assert dev("install", "--prod").returncode == 0
    installs = pip_log.read_text().splitlines()
    assert installs[-1].endswith("-m pip install --disable-pip-version-check -q .")
    assert not any("[dev]" in line for line in installs)
    assert dev("install", "--prod").returncode == 0 and pip_log.read_text().splitlines() == installs  # done once

    assert dev("run", "--version").returncode == 0  # a production install stays as it is
    assert pip_log.read_text().splitlines()[-1] == "-m bot --version"
    assert not any("[dev]" in line for line in pip_log.read_text().splitlines())

    (where / "pyproject.toml").write_text((where / "pyproject.toml").read_text() + "\n# changed\n")
    assert dev("run", "--version").returncode == 0  # pyproject changed: reinstalled, still without extras
    assert not any("[dev]" in line for line in pip_log.read_text().splitlines())

    assert dev("install", "--bogus").returncode != 0
    assert dev("test", "--collect-only").returncode == 0  # the tests need the extras
    assert any(line.endswith("-e .[dev]") for line in pip_log.read_text().splitlines())


def test_a_plain_install_carries_every_data_file_of_the_packages():
    """`pip install .` (the production install) copies only the package data pyproject names:
    every non-Python file under the packages must match a pattern (templates, static files,
    the migration template, the knowledge base), or the installed service would lack it."""
    import tomllib
    from fnmatch import fnmatch

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = config["package-data"]
    for package in ("bot", "handlers", "knowledge"):
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc"):
                continue
            relative = path.relative_to(ROOT / package).as_posix()
            assert any(fnmatch(relative, p) for p in patterns.get(package, [])), f"{package}/{relative}"
