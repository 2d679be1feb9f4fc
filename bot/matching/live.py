"""The knowledge base currently served, swappable without a restart."""

from __future__ import annotations

from bot.matching.matcher import Matcher, Thresholds
from bot.matching.normalize import Normalizer
from knowledge.loader import KnowledgeBase, fill_placeholders


def default_placeholders() -> dict[str, str]:
    """Placeholder values when no settings are given: the settings' own defaults."""
    from bot.settings import Settings

    return {"retention_days": str(Settings.model_fields["log_retention_days"].default)}


class LiveKnowledge:
    """Holds the current (knowledge base, matcher) pair; `replace` swaps both at once.

    Answers have their {placeholders} filled here, the one place every knowledge base served
    passes through (shipped files at start-up, dashboard overlays later).
    """

    def __init__(self, kb: KnowledgeBase, thresholds: Thresholds | None = None,
                 normalizer: Normalizer | None = None, placeholders: dict[str, str] | None = None):
        self.thresholds = thresholds or Thresholds()
        self.normalizer = normalizer or Normalizer()
        self.placeholders = default_placeholders() if placeholders is None else placeholders
        self.matcher = Matcher(fill_placeholders(kb, self.placeholders), self.normalizer, self.thresholds)

    @property
    def kb(self) -> KnowledgeBase:
        return self.matcher.kb

    def replace(self, kb: KnowledgeBase) -> None:
        self.matcher = Matcher(fill_placeholders(kb, self.placeholders), self.normalizer, self.thresholds)
