"""Where the shared development question sets live, how to read them, and the one fixed split
of the second set into a tuning half and a held-out half.

The dev sets are kept outside the repository (``../shared/kb/`` next to a checkout, or
``/work/shared`` on the team machine) so they cannot be copied into the knowledge base by
accident. Benchmarks and the leakage test find them here, or say clearly that they are absent.

The held-out half of dev-questions-v2 is scored only in aggregate: nothing in this repository
prints its questions one by one (bench/accuracy.py lists misses of the tuning half only), and
no knowledge-base variant may be written from it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELATIVE = Path("shared") / "kb" / "dev-questions.jsonl"
RELATIVE_V2 = Path("shared") / "kb" / "dev-questions-v2.jsonl"
CANDIDATES = (ROOT.parent / RELATIVE, Path("/work") / RELATIVE)
CANDIDATES_V2 = (ROOT.parent / RELATIVE_V2, Path("/work") / RELATIVE_V2)
SPLIT_SEED = 20261206  # fixed once; changing it would leak the held-out half into tuning


def find_dev_questions() -> Path | None:
    """The first v1 dev-set file that exists, or None."""
    return next((path for path in CANDIDATES if path.is_file()), None)


def find_dev_questions_v2() -> Path | None:
    """The first v2 dev-set file that exists, or None."""
    return next((path for path in CANDIDATES_V2 if path.is_file()), None)


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def group_of(question_id: str) -> str:
    """Follow-up pairs (`v2-0342-a`, `v2-0342-b`) fall in the same half."""
    for suffix in ("-a", "-b"):
        if question_id.endswith(suffix):
            return question_id[: -len(suffix)]
    return question_id


def split_v2(questions: list[dict]) -> tuple[list[dict], list[dict]]:
    """(tuning half, held-out half), by SPLIT_SEED over question groups, in file order."""
    groups = sorted({group_of(q["id"]) for q in questions})
    random.Random(SPLIT_SEED).shuffle(groups)
    tuning = set(groups[: len(groups) // 2])
    return ([q for q in questions if group_of(q["id"]) in tuning],
            [q for q in questions if group_of(q["id"]) not in tuning])
