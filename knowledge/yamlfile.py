"""YAML parsing for every knowledge file: libyaml's C parser when PyYAML has it.

The pure-Python parser took about 0.8 s of CPU to read the knowledge base, most of a process's
start-up; the C one reads the same files in about 0.1 s and accepts the same YAML (safe subset,
same `yaml.YAMLError` with line and column on a mistake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """`yaml.safe_load`, faster."""
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader


def read_yaml(path: Path) -> Any:
    """The YAML file at `path` (UTF-8), parsed."""
    return parse_yaml(path.read_text(encoding="utf-8"))
