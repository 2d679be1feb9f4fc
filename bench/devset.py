"""Where the shared development question set lives, and how to read it.

The dev set is kept outside the repository (``../shared/kb/dev-questions.jsonl`` next to a
checkout, or ``/work/shared`` on the team machine) so it cannot be copied into the knowledge base
by accident. Benchmarks and the leakage test find it here, or say clearly that it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELATIVE = Path("shared") / "kb" / "dev-questions.jsonl"
CANDIDATES = (ROOT.parent / RELATIVE, Path("/work") / RELATIVE)


def find_dev_questions() -> Path | None:
    """The first dev-set file that exists, or None."""
    return next((path for path in CANDIDATES if path.is_file()), None)


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
