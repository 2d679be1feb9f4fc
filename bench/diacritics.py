"""Restore Vietnamese diacritics in a message typed without them, from the knowledge base's own text.

Why: a sentence-embedding model reads "lam can cuoc o dau" as a different language from "làm căn
cước ở đâu" (it ranks the right entry first for about a third of unaccented questions against four
fifths of accented ones). No offline restorer for Vietnamese ships as a small package, but the
knowledge base is itself a few hundred kilobytes of correctly accented Vietnamese on exactly the
subjects citizens ask about: a syllable bigram model trained on it picks, for each folded syllable,
the accented form that best fits its neighbours (Viterbi over the candidates the KB has seen).

Only messages typed (mostly) without diacritics are touched; a syllable the KB never wrote accented
stays as typed. Pure Python, built in milliseconds; no dependency.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from bot.matching.normalize import Normalizer, canonical, fold

START = "<s>"
BIGRAM_WEIGHT = 0.8  # interpolation with the unigram: the KB is small, many bigrams are unseen
UNSEEN = 1e-6  # probability of a syllable the KB never wrote (kept as typed)
MAX_ACCENTED_SHARE = 0.2  # a message with more accented syllables than this is left as typed


class DiacriticsRestorer:
    """Syllable bigram model over accented text; `restore` returns the most likely accented words."""

    def __init__(self, texts: Iterable[str], normalizer: Normalizer | None = None):
        self.normalizer = normalizer or Normalizer()
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[tuple[str, str]] = Counter()
        self.forms: dict[str, Counter[str]] = {}
        for text in texts:
            words = canonical(text).split()
            for prev, word in zip([START, *words], words):
                self.unigrams[word] += 1
                self.bigrams[prev, word] += 1
                self.forms.setdefault(fold(word), Counter())[word] += 1
        self.unigrams[START] = sum(self.bigrams[k] for k in self.bigrams if k[0] == START)
        self.total = max(1, sum(self.unigrams.values()))

    @classmethod
    def from_knowledge_base(cls, kb, normalizer: Normalizer | None = None) -> DiacriticsRestorer:
        texts = [t for e in kb.entries for t in (e.title, *e.questions, *e.keywords, *e.answer.splitlines())]
        return cls(texts, normalizer)

    def _log_p(self, prev: str, word: str) -> float:
        unigram = self.unigrams.get(word, 0) / self.total
        seen = self.unigrams.get(prev, 0)
        bigram = self.bigrams.get((prev, word), 0) / seen if seen else 0.0
        p = BIGRAM_WEIGHT * bigram + (1 - BIGRAM_WEIGHT) * unigram
        return math.log(p if p > 0 else UNSEEN)

    def candidates(self, word: str) -> list[str]:
        """Accented forms the KB wrote for this syllable (the typed word itself when it has none)."""
        if not word.isascii():
            return [word]
        forms = self.forms.get(word)
        return list(forms) if forms else [word]

    def restore_words(self, words: list[str]) -> list[str]:
        """Viterbi over each syllable's candidates; syllables already accented are kept."""
        if not words:
            return []
        lattice: list[dict[str, tuple[float, list[str]]]] = [{START: (0.0, [])}]
        for word in words:
            column: dict[str, tuple[float, list[str]]] = {}
            for candidate in self.candidates(word):
                column[candidate] = max(
                    ((score + self._log_p(prev, candidate), path) for prev, (score, path) in lattice[-1].items()),
                    key=lambda pair: pair[0],
                )
            lattice.append({c: (s, [*p, c]) for c, (s, p) in column.items()})
        return max(lattice[-1].values(), key=lambda pair: pair[0])[1]

    def restore(self, text: str) -> str:
        """The message with diacritics restored, normalised (lower case, abbreviations expanded);
        a message already written with diacritics comes back as typed."""
        words = self.normalizer.words(text)
        if not words:
            return text
        typed = sum(not w.isascii() for w in canonical(text).split())
        if typed > MAX_ACCENTED_SHARE * len(words):
            return text
        return " ".join(self.restore_words(words))
