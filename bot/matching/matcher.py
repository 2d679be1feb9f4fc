"""Score a question against every entry and decide: answer, suggest or fallback.

Why this shape: plain fuzzy ratios over-reward short queries found inside long
questions (rapidfuzz's WRatio) and know nothing of which words matter. Vietnamese
words span syllables, so we weigh syllables and syllable bigrams by how rare they
are across entries (IDF), retrieve candidates with a vectorised sum over postings,
then rerank a few candidates against each question variant with a coverage F-score
and an order-insensitive edit ratio. Two thresholds (minimum score, minimum gap to
the runner-up) turn close calls into suggestions rather than guesses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process

from bot.matching.normalize import Normalizer
from knowledge.loader import KnowledgeBase

# Blend weights (tuned on the development set with bench/accuracy.py).
W_UNIGRAM = 0.30
W_BIGRAM = 0.20
W_VARIANT = 0.50
VARIANT_COVERAGE = 0.75  # share of the variant score from word coverage (rest: edit ratio)
KEYWORD_BONUS = 6.0  # points when a whole multi-word keyword appears in the question
CANDIDATES = 8
STOPWORD_WEIGHT = 0.3
OOV_FACTOR = 1.0  # weight of an unknown word relative to the rarest known word
COVERAGE_POWER = 1.0  # final score is scaled by (evidence) ** this
EVIDENCE_FULL = 12.0  # matched word weight that counts as full evidence, however long the question
SPELL_CUTOFF = 85.0
SPELL_MIN_LEN = 5
MAX_QUERY_TOKENS = 60  # longer messages are cut; questions are short


class Decision(StrEnum):
    ANSWER = "answer"
    SUGGEST = "suggest"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class Thresholds:
    answer_score: float = 50.0
    min_gap: float = 4.0
    suggest_score: float = 50.0


@dataclass(frozen=True)
class MatchResult:
    decision: Decision
    faq_id: str | None
    score: float
    alternatives: list[str] = field(default_factory=list)
    normalized: str = ""

    def as_dict(self) -> dict:
        return {
            "decision": self.decision.value,
            "faq_id": self.faq_id,
            "score": round(self.score, 2),
            "alternatives": list(self.alternatives),
        }


def _bigrams(tokens: list[str]) -> set[str]:
    return {f"{a} {b}" for a, b in zip(tokens, tokens[1:])}


class Matcher:
    """Immutable index over one knowledge base; `match` is pure and synchronous."""

    def __init__(self, kb: KnowledgeBase, normalizer: Normalizer | None = None,
                 thresholds: Thresholds | None = None):
        self.kb = kb
        self.normalizer = normalizer or Normalizer()
        self.thresholds = thresholds or Thresholds()
        self.ids = [entry.id for entry in kb.entries]
        n = len(self.ids)
        variant_sets: list[list[frozenset[str]]] = []
        self._variant_texts: list[str] = []
        self._keywords: list[list[tuple[str, ...]]] = []
        unigram_sets: list[set[str]] = []
        bigram_sets: list[set[str]] = []
        for entry in kb.entries:
            texts = [entry.title, *entry.questions]
            token_lists = [self.normalizer.tokens(t) for t in texts]
            keyword_lists = [self.normalizer.tokens(k) for k in entry.keywords]
            uni: set[str] = set()
            bi: set[str] = set()
            for tokens in token_lists + keyword_lists:
                uni.update(tokens)
                bi.update(_bigrams(tokens))
            unigram_sets.append(uni)
            bigram_sets.append(bi)
            variant_sets.append([frozenset(t) for t in token_lists if t])
            self._variant_texts.extend(" ".join(sorted(t)) for t in token_lists if t)
            self._keywords.append([tuple(k) for k in keyword_lists if len(k) > 1])

        self._idf = self._inverse_document_frequency(unigram_sets, n)
        self._bigram_idf = self._inverse_document_frequency(bigram_sets, n)
        self._stopwords = self.normalizer.lexicon.stopwords
        for word in self._stopwords & self._idf.keys():
            self._idf[word] = STOPWORD_WEIGHT
        self._oov_weight = OOV_FACTOR * math.log(1 + n) if n else 1.0
        self._index_variants(variant_sets)
        self._postings = self._build_postings(unigram_sets)
        self._bigram_postings = self._build_postings(bigram_sets)
        self._vocabulary_by_length: dict[int, list[str]] = {}
        for word in sorted(self._idf):
            self._vocabulary_by_length.setdefault(len(word), []).append(word)
        self._spell = lru_cache(maxsize=16384)(self._correct_uncached)

    def _index_variants(self, variant_sets: list[list[frozenset[str]]]) -> None:
        """Per entry: (words, IDF mass, sorted text) of each question variant, for the rerank."""
        texts = iter(self._variant_texts)
        self._variants = [
            [(words, sum(self._idf[w] for w in words) or 1e-9, next(texts)) for words in per_entry]
            for per_entry in variant_sets
        ]
        del self._variant_texts

    @staticmethod
    def _inverse_document_frequency(term_sets: list[set[str]], n: int) -> dict[str, float]:
        df: dict[str, int] = {}
        for terms in term_sets:
            for term in terms:
                df[term] = df.get(term, 0) + 1
        return {term: math.log(1 + n / count) for term, count in df.items()}

    @staticmethod
    def _build_postings(term_sets: list[set[str]]) -> dict[str, np.ndarray]:
        lists: dict[str, list[int]] = {}
        for index, terms in enumerate(term_sets):
            for term in terms:
                lists.setdefault(term, []).append(index)
        return {term: np.asarray(idx, dtype=np.int32) for term, idx in lists.items()}

    @staticmethod
    def _accumulate(postings: dict[str, np.ndarray], weights: dict[str, float], n: int) -> np.ndarray:
        """Per entry, the summed weight of the given terms it contains (one bincount, no Python loop)."""
        lists = [(postings[term], weight) for term, weight in weights.items() if term in postings]
        if not lists:
            return np.zeros(n)
        indices = np.concatenate([p for p, _ in lists])
        values = np.repeat([w for _, w in lists], [len(p) for p, _ in lists])
        return np.bincount(indices, weights=values, minlength=n)

    def _correct_uncached(self, token: str) -> str | None:
        if len(token) < SPELL_MIN_LEN or token.isdigit():
            return None
        # A ratio >= SPELL_CUTOFF is only possible between words of nearly the same length.
        size = len(token)
        nearby = [w for n in (size - 1, size, size + 1) for w in self._vocabulary_by_length.get(n, ())]
        best = process.extractOne(token, nearby, scorer=fuzz.ratio, score_cutoff=SPELL_CUTOFF)
        return best[0] if best else None

    def _query_terms(self, tokens: list[str]) -> tuple[dict[str, float], dict[str, float]]:
        """Weighted unigrams and bigrams of the question, with misspellings corrected."""
        fixed: list[str] = []
        weights: dict[str, float] = {}
        for token in tokens[:MAX_QUERY_TOKENS]:
            if token in self._idf:
                fixed.append(token)
                weights[token] = self._idf[token]
                continue
            corrected = None if token in self._stopwords else self._spell(token)
            if corrected is None:
                fixed.append(token)
                weights[token] = STOPWORD_WEIGHT if token in self._stopwords else self._oov_weight
            else:
                fixed.append(corrected)
                weights[corrected] = max(weights.get(corrected, 0.0), 0.8 * self._idf[corrected])
        bigrams = {b: self._bigram_idf.get(b, 0.0) for b in _bigrams(fixed)}
        return weights, {b: w for b, w in bigrams.items() if w > 0}

    def scores(self, text: str) -> tuple[str, list[tuple[str, float]]]:
        """Normalised text and (entry id, score) pairs for the best candidates, best first."""
        normalized, tokens = self.normalizer.analyse(text)
        n = len(self.ids)
        if not tokens or n == 0:
            return normalized, []
        weights, bigrams = self._query_terms(tokens)
        total = sum(weights.values())
        acc = self._accumulate(self._postings, weights, n)
        unigram_cov = acc / total
        bigram_total = sum(bigrams.values())
        if bigram_total:
            bigram_cov = self._accumulate(self._bigram_postings, bigrams, n) / bigram_total
        else:
            bigram_cov = unigram_cov
        coarse = W_UNIGRAM * unigram_cov + W_BIGRAM * bigram_cov
        k = min(CANDIDATES, n)
        top = np.argpartition(-coarse, k - 1)[:k] if k < n else np.arange(n)
        top = top[coarse[top] > 0]
        variant = self._best_variants(top, weights, total)
        joined = f" {' '.join(tokens)} "
        ranked = []
        for index, best in zip(top.tolist(), variant.tolist()):
            evidence = min(1.0, acc[index] / min(total, EVIDENCE_FULL))
            score = 100.0 * (coarse[index] + W_VARIANT * best) * evidence**COVERAGE_POWER
            if any(f" {' '.join(k)} " in joined for k in self._keywords[index]):
                score += KEYWORD_BONUS
            ranked.append((self.ids[index], min(score, 100.0)))
        ranked.sort(key=lambda pair: pair[1], reverse=True)
        return normalized, ranked

    def _best_variants(self, entries: np.ndarray, weights: dict[str, float], total: float) -> np.ndarray:
        """Best variant score per candidate entry: coverage F-score blended with an edit ratio.

        Plain Python on purpose: a candidate has ~15 variants, too few for numpy to pay off.
        """
        query_words = weights.keys()
        query_text = " ".join(sorted(weights))  # variant texts are stored with sorted words
        idf = self._idf
        ratio = fuzz.ratio
        best = np.zeros(len(entries))
        for slot, index in enumerate(entries.tolist()):
            top = 0.0
            for words, weight, text in self._variants[index]:
                shared = query_words & words
                if not shared:
                    continue
                recall = sum([weights[w] for w in shared]) / total
                precision = sum([idf[w] for w in shared]) / weight
                coverage = 2 * recall * precision / (recall + precision)
                score = VARIANT_COVERAGE * coverage + (1 - VARIANT_COVERAGE) * ratio(query_text, text) / 100.0
                if score > top:
                    top = score
            best[slot] = top
        return best

    def match(self, text: str) -> MatchResult:
        normalized, ranked = self.scores(text)
        return self.decide(normalized, ranked)

    def decide(self, normalized: str, ranked: list[tuple[str, float]]) -> MatchResult:
        th = self.thresholds
        if not ranked or ranked[0][1] < th.suggest_score:
            best_score = ranked[0][1] if ranked else 0.0
            return MatchResult(Decision.FALLBACK, None, best_score, [], normalized)
        best_id, best = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        close = [fid for fid, s in ranked[1:3] if s >= th.suggest_score * 0.8]
        if best >= th.answer_score and best - runner_up >= th.min_gap:
            return MatchResult(Decision.ANSWER, best_id, best, close, normalized)
        return MatchResult(Decision.SUGGEST, best_id, best, close, normalized)
