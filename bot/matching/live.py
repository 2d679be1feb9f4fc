"""The knowledge base currently served, swappable without a restart."""

from __future__ import annotations

from bot.matching.matcher import Matcher, Thresholds
from bot.matching.normalize import Normalizer
from knowledge.loader import KnowledgeBase


class LiveKnowledge:
    """Holds the current (knowledge base, matcher) pair; `replace` swaps both at once."""

    def __init__(self, kb: KnowledgeBase, thresholds: Thresholds | None = None,
                 normalizer: Normalizer | None = None):
        self.thresholds = thresholds or Thresholds()
        self.normalizer = normalizer or Normalizer()
        self.matcher = Matcher(kb, self.normalizer, self.thresholds)

    @property
    def kb(self) -> KnowledgeBase:
        return self.matcher.kb

    def replace(self, kb: KnowledgeBase) -> None:
        self.matcher = Matcher(kb, self.normalizer, self.thresholds)
