"""What the conversation did with a message, in the terms scripts and benchmarks use
(`python -m bot converse`): answered, suggested, fell back, small talk or not covered."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    ANSWER = "answer"
    SUGGEST = "suggest"
    FALLBACK = "fallback"
    SMALLTALK = "smalltalk"
    NOT_COVERED = "not_covered"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    faq_id: str | None = None  # the entry answered
    also: tuple[str, ...] = ()  # entries answered or offered for a second question in the message
    choices: tuple[str, ...] = ()  # entries offered as choices
