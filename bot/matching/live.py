"""The knowledge base currently served, swappable without a restart."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from bot.matching.matcher import Matcher, Thresholds
from bot.matching.normalize import LEXICON_FILE, Normalizer
from bot.matching.scope import SCOPE_FILE
from knowledge.loader import KnowledgeBase, fill_placeholders

# Indexes built in this process, by everything that goes into one. An index is never changed
# once built, so a process that opens several runtimes on the same knowledge base (a preview
# beside the service, the test suite) builds it once; kept small, as at 10,000 entries each is
# large.
_BUILT: OrderedDict[str, Matcher] = OrderedDict()
_BUILT_MAX = 3


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
        self._lexicon = normalizer  # a caller's own lexicon: its index is never shared
        self.placeholders = default_placeholders() if placeholders is None else placeholders
        self.matcher = self._index(kb)

    @property
    def kb(self) -> KnowledgeBase:
        return self.matcher.kb

    @property
    def normalizer(self) -> Normalizer:
        """The normaliser the served index was built with."""
        return self.matcher.normalizer

    def replace(self, kb: KnowledgeBase) -> None:
        self.matcher = self._index(kb)

    def _index(self, kb: KnowledgeBase) -> Matcher:
        filled = fill_placeholders(kb, self.placeholders)
        if self._lexicon is not None:
            return Matcher(filled, self._lexicon, self.thresholds)
        key = _content_key(filled, self.thresholds)
        matcher = _BUILT.get(key)
        if matcher is None:  # the lexicon file is read only for an index not built yet
            matcher = _BUILT[key] = Matcher(filled, Normalizer(), self.thresholds)
            while len(_BUILT) > _BUILT_MAX:
                _BUILT.popitem(last=False)
        _BUILT.move_to_end(key)
        return matcher


def _content_key(kb: KnowledgeBase, thresholds: Thresholds) -> str:
    """A digest of everything an index is built from: entries, ward variants and suspensions,
    thresholds, and the lexicon and scope files the default normaliser and scope read."""
    digest = hashlib.blake2b(digest_size=20)
    for entry in kb.entries:
        digest.update(entry.model_dump_json().encode())
    for (entry_id, ward), entry in sorted(kb.ward_variants.items()):
        digest.update(f"\0{entry_id}\0{ward}\0".encode() + entry.model_dump_json().encode())
    digest.update(repr((sorted(kb.suspended), thresholds)).encode())
    for path in (LEXICON_FILE, SCOPE_FILE):
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()
