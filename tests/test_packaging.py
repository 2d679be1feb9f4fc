"""A production install (`pip install .`, no source tree) must carry every non-Python file the
service reads: dashboard templates and static files, the migration template, the knowledge base."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_data_file_of_the_packages_is_declared_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    declared = config["package-data"]
    missing = []
    for package in ("bot", "knowledge"):
        patterns = declared.get(package, [])
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT / package).as_posix()
            if not any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
                missing.append(f"{package}/{relative}")
    assert not missing, f"not installed by `pip install .`: {missing}"
