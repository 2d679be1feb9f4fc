"""Score a question against every entry and decide: answer, suggest or fallback.

Why this shape: plain fuzzy ratios over-reward short queries found inside long
questions (rapidfuzz's WRatio) and know nothing of which words matter. Vietnamese
words span syllables, so we weigh syllables and syllable bigrams by how rare they
are across entries (IDF), retrieve candidates with a vectorised sum over postings,
then rerank a few candidates against each question variant with a coverage F-score.
Two thresholds (minimum score, minimum gap to the runner-up) turn close calls into
suggestions rather than guesses.

Out of scope is recognised by what the knowledge base does not know: a word found in no title,
question, keyword or answer counts against the question, so a question about something else covers
too little of itself to reach the threshold. How much it counts comes from background frequencies
of everyday Vietnamese (`wordfreq`, bundled, see bot/matching/background.py), not from the KB alone:
the KB's IDF can only say a word is absent from a hundred entries, which is as true of "hông",
"bữa" or "tui" as of "karaoke" or "sổ đỏ". Weighting every absent word as the rarest known one (the
old rule) sank good questions written in dialect or with fillers; weighting absent words by how rare
they are in general Vietnamese lets common words cost little while rare, specific ones (jargon,
brands, a misspelt key word) still cost fully. A word only answers use ("xây" in "nhà mới xây")
is weighed the same way: no question asks with it, so the KB's IDF says nothing of it either.
bench/accuracy.py prints the ablation (no-bg).
Alternatives considered: a hand list of fillers only (kept, in knowledge/lexicon, but it can never
be complete) and capping known words' IDF by background frequency too (tried; no gain on the tuning
sets, and for words typed without diacritics the frequency of the folded form is unreliable).
What frequencies cannot tell apart ("sổ đỏ" and "lương hưu" are everyday words) is handled as data:
knowledge/meta/not_covered.yaml lists neighbouring subjects the KB has no guide for (scope.py).

Long messages (a story, then "xin hỏi ..."): the story's words weigh STORY_WEIGHT of their weight,
the question part's fully (focus.py), so a story that resembles another entry does not outrank
the question, while the story still counts (it often names the subject). Ablation: no-focus.

Spelling: a word unknown to the KB that is not ordinary Vietnamese is read as the KB word one edit
away ("vneit" -> "vneid"); common words are never "corrected" into others.

The index is a handful of flat numpy arrays (postings and variants in CSR form), so it
stays compact and quick to build at 10,000 entries.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from bot.matching import background as bg
from bot.matching.focus import split_focus
from bot.matching.normalize import Normalizer, canonical, fold
from bot.matching.scope import Scope
from knowledge.loader import KnowledgeBase

# Blend weights (chosen with bench/accuracy.py on the development set).
W_UNIGRAM = 0.30
W_BIGRAM = 0.20
W_VARIANT = 0.50
KEYWORD_BONUS = 6.0  # points when a whole multi-word keyword appears in the question
CANDIDATES = 6  # entries reranked against their variants
STOPWORD_WEIGHT = 0.3
OOV_FACTOR = 1.0  # weight of a word unknown to the whole knowledge base, relative to the rarest known word
ANSWER_CREDIT = 0.5  # share of a word's weight an entry earns when only its answer text has the word
EVIDENCE_FULL = 14.0  # matched word weight that counts as full evidence, however long the question
COVER_CAP = 8.0  # question weight that counts as fully covered: a long question need not match every word
SPELL_MIN_LEN = 4  # shorter words are too often other words one letter away
SPELL_LONG = 8  # words this long may be two edits away from the right one
SPELL_MAX_ZIPF = 3.0  # a word at least this common in Vietnamese is a real word, never "corrected"
SPELL_RATIO = 85.0  # the fallback rule for long words typed without diacritics
SPELL_RATIO_MIN_LEN = 5
# Background frequency (bot/matching/background.py): an unknown word as rare as Zipf BG_RARE_ZIPF
# or rarer weighs fully (OOV_FACTOR); as common as BG_COMMON_ZIPF or more, BG_FLOOR of that.
BG_RARE_ZIPF = 2.5
BG_COMMON_ZIPF = 6.0
BG_FLOOR = 0.05
# A syllable pair in this many entries, and in this share of the entries using the rarer of its two
# syllables, is one word: a scope phrase does not start or end inside it (Scope.find).
COMPOUND_MIN_ENTRIES = 10
COMPOUND_MIN_SHARE = 0.4
NEAR_FACTOR = 0.8  # scores from this share of the suggest threshold are near: offered as choices on fallback
CORRECTED_WEIGHT = 0.8  # a spelling-corrected word is less certain than one typed right
NUMBER_WEIGHT = 1.0  # weight of a number, known or not
# An amount with its unit run together ("5t" five years old, "10tr" ten million, "1tr5", "500k",
# "2h", "50.000đ"): a number, not a rare word that sinks the match. Units only: "2fa" is a word.
_AMOUNT = re.compile(r"\d+(?:t|tr|k|h|d|m|km|p|ph|th|ty)\d*")
MAX_QUERY_TOKENS = 60  # longer messages are cut (the story first, see focus.py); questions are short
STORY_WEIGHT = 0.5  # weight of a long message's story words, relative to its question part (focus.py)
QUESTION_MIN_CONTENT = 2  # a question part with fewer content words leaves the story its full weight


class Decision(StrEnum):
    ANSWER = "answer"
    SUGGEST = "suggest"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class Thresholds:
    """Defaults as in bot/settings.py (MATCH_*), calibrated with bench/accuracy.py on v1 and the
    dev-v2 tuning half (gap held at 5)."""

    answer_score: float = 77.0
    min_gap: float = 5.0
    suggest_score: float = 56.5


@dataclass(frozen=True)
class MatchResult:
    decision: Decision
    faq_id: str | None
    score: float
    alternatives: list[str] = field(default_factory=list)
    normalized: str = ""
    # The knowledge base has no guide for this question (a neighbouring subject it does not cover,
    # or a near miss under the thresholds): decision is FALLBACK, faq_id None, and `alternatives`
    # holds up to three closest entries (possibly none) to offer beside the hand-off.
    not_covered: bool = False

    def as_dict(self) -> dict:
        return {
            "decision": self.decision.value,
            "faq_id": self.faq_id,
            "score": round(self.score, 2),
            "alternatives": list(self.alternatives),
            "not_covered": self.not_covered,
        }


class _Postings:
    """term id -> sorted entry indices, as one CSR pair of arrays (a dict of arrays costs ~100 B/term)."""

    def __init__(self, terms: np.ndarray, entries: np.ndarray, n_terms: int):
        order = np.lexsort((entries, terms))
        self.entries = entries[order].astype(np.int32)
        counts = np.bincount(terms, minlength=n_terms)
        self.ptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(counts, out=self.ptr[1:])
        self.df = counts
        self._bounds = self.ptr.tolist()  # plain ints: slicing with numpy scalars is slower

    def accumulate(self, ids: Sequence[int], weights: Sequence[float], n: int) -> np.ndarray:
        """Per entry, the summed weight of the given terms it contains (one bincount)."""
        if not ids:
            return np.zeros(n)
        bounds, entries = self._bounds, self.entries
        parts = [entries[bounds[t] : bounds[t + 1]] for t in ids]
        values = np.repeat(np.asarray(weights, dtype=np.float64), [len(p) for p in parts])
        return np.bincount(np.concatenate(parts), weights=values, minlength=n)


def _bigram_keys(ids: list[int], base: int) -> list[int]:
    return [a * base + b for a, b in zip(ids, ids[1:])]


def _entry_tokens(kb: KnowledgeBase, normalizer: Normalizer, batch: int = 64
                  ) -> Iterator[tuple[list[list[str]], list[list[str]]]]:
    """Per entry: tokens of its title and questions, and of its keywords (normalised in batches)."""
    entries = kb.entries
    for begin in range(0, len(entries), batch):
        part = entries[begin : begin + batch]
        texts = [t for e in part for t in (e.title, *e.questions, *e.keywords)]
        tokens = iter(normalizer.tokens_many(texts))
        for e in part:
            variants = [next(tokens) for _ in range(1 + len(e.questions))]
            yield variants, [next(tokens) for _ in e.keywords]


def _int64(buffer: array) -> np.ndarray:
    return np.frombuffer(buffer, dtype=np.int64) if len(buffer) else np.zeros(0, dtype=np.int64)


class Matcher:
    """Immutable index over one knowledge base; `match` is pure and synchronous."""

    def __init__(self, kb: KnowledgeBase, normalizer: Normalizer | None = None,
                 thresholds: Thresholds | None = None, *, background: bool = True,
                 scope: Scope | None = None, focus: bool = True):
        """`background=False` weighs every unknown word as the rarest known one (the old rule, kept
        for the ablation in bench/accuracy.py); `scope` defaults to knowledge/meta/not_covered.yaml."""
        self.kb = kb
        self.normalizer = normalizer or Normalizer()
        self.thresholds = thresholds or Thresholds()
        self.background = background
        self.focus = focus  # False: a long message is weighed whole (the ablation)
        if background:
            bg.load()
        self.scope = scope if scope is not None else Scope.from_file(self.normalizer)
        self.ids = [entry.id for entry in kb.entries]
        self._index = {entry_id: i for i, entry_id in enumerate(self.ids)}
        n = self._n = len(self.ids)
        # Build into compact int buffers (array), not lists of Python ints: at 10,000 entries the
        # lists alone would take hundreds of MB at peak.
        vocab: dict[str, int] = {}
        uni_terms, uni_owners = array("q"), array("q")
        bi_keys, bi_owners = array("q"), array("q")
        var_terms, var_lengths, entry_variants = array("q"), array("q"), array("q")
        self._keywords: list[tuple[str, ...]] = []
        # Bigram keys are a*BASE+b; BASE bounds the vocabulary.
        base = 1 << 31
        for index, (variants, keywords) in enumerate(_entry_tokens(kb, self.normalizer)):
            uni: set[int] = set()
            bi: set[int] = set()
            count = 0
            for words in variants:
                ids = [vocab.setdefault(w, len(vocab)) for w in words]
                if not ids:
                    continue
                distinct = sorted(set(ids))
                var_terms.extend(distinct)
                var_lengths.append(len(distinct))
                count += 1
                uni.update(distinct)
                bi.update(_bigram_keys(ids, base))
            for words in keywords:
                ids = [vocab.setdefault(w, len(vocab)) for w in words]
                uni.update(ids)
                bi.update(_bigram_keys(ids, base))
            entry_variants.append(count)
            uni_terms.extend(uni)
            uni_owners.extend(array("q", [index]) * len(uni))
            bi_keys.extend(bi)
            bi_owners.extend(array("q", [index]) * len(bi))
            self._keywords.append(tuple(f" {' '.join(k)} " for k in keywords if len(k) > 1))
        self._question_vocab = len(vocab)  # ids below this occur in some title, question or keyword

        # Words only the answers use: known (not out of scope) and a little evidence for that entry.
        answer_terms, answer_owners = array("q"), array("q")
        answer_words = lru_cache(maxsize=256)(lambda text: frozenset(fold(canonical(text)).split()))
        for index, entry in enumerate(kb.entries):
            found = {vocab.setdefault(w, len(vocab)) for w in answer_words(entry.answer)}
            only = [t for t in found if t >= self._question_vocab]
            answer_terms.extend(only)
            answer_owners.extend(array("q", [index]) * len(only))
        self._vocab = vocab
        size = len(vocab)

        self._postings = _Postings(_int64(uni_terms), _int64(uni_owners), size)
        self._answer_postings = _Postings(_int64(answer_terms), _int64(answer_owners), size)
        df = self._postings.df[: self._question_vocab]
        self._rare = math.log(1 + n) if n else 1.0
        idf = np.full(size, self._rare)  # answer-only words: at most this (_query_terms)
        idf[: self._question_vocab] = np.log1p(n / np.maximum(df, 1))
        stop = [vocab[w] for w in self.normalizer.lexicon.stopwords if w in vocab]
        idf[stop] = STOPWORD_WEIGHT
        idf[[t for w, t in vocab.items() if _is_number(w)]] = NUMBER_WEIGHT
        self._idf = idf
        self._oov_weight = OOV_FACTOR * self._rare

        self._bigram_keys, inverse = np.unique(_int64(bi_keys), return_inverse=True)
        self._bigrams = _Postings(inverse.ravel(), _int64(bi_owners), len(self._bigram_keys))
        self._bigram_idf = np.log1p(n / np.maximum(self._bigrams.df, 1))
        self._base = base

        # Variant v has terms var_terms[var_ptr[v]:var_ptr[v+1]]; entry e owns variants
        # entry_ptr[e]:entry_ptr[e+1]; var_mass is each variant's summed IDF.
        self._var_terms = _int64(var_terms).astype(np.int32)
        self._var_ptr = np.zeros(len(var_lengths) + 1, dtype=np.int64)
        np.cumsum(_int64(var_lengths), out=self._var_ptr[1:])
        self._entry_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(_int64(entry_variants), out=self._entry_ptr[1:])
        self._var_mass = (np.add.reduceat(idf[self._var_terms], self._var_ptr[:-1]) if len(var_lengths)
                          else np.zeros(0))

        # Spelling candidates by word length: a ratio >= SPELL_CUTOFF is only possible between words
        # of nearly the same length, so each length gets the words one shorter to one longer.
        by_length: dict[int, list[str]] = {}
        for word, term in vocab.items():
            if term < self._question_vocab and not _is_number(word):
                by_length.setdefault(len(word), []).append(word)
        self._spell_pool = {size: tuple(w for k in range(size - 2, size + 3) for w in by_length.get(k, ()))
                            for size in range(SPELL_MIN_LEN, max(by_length, default=0) + 3)}
        self._spell = lru_cache(maxsize=16384)(self._correct_uncached)
        self._unknown = lru_cache(maxsize=16384)(self._unknown_uncached)
        self._entry_phrases = lru_cache(maxsize=1024)(self._entry_phrases_uncached)

    def _correct_uncached(self, token: str) -> str | None:
        """The knowledge-base word one edit away (two for long words), if exactly one is closest;
        failing that, for a long word typed without diacritics, the closest by rapidfuzz ratio
        >= SPELL_RATIO (a letter added or dropped: the rule before this one, kept so that nothing
        it corrected is lost).

        Only for words that are not ordinary Vietnamese (see `_may_correct`): "vneit" becomes
        "vneid", but "nghèo" never becomes "nghe" and "hong" never "thong".
        """
        found = self._closest(token)
        if found is None and len(token) >= SPELL_RATIO_MIN_LEN and token.isascii():
            pool = [w for w in self._spell_pool.get(len(token), ()) if abs(len(w) - len(token)) <= 1]
            best = process.extractOne(token, pool, scorer=fuzz.ratio, score_cutoff=SPELL_RATIO)
            found = best[0] if best else None
        return found

    def _closest(self, token: str) -> str | None:
        pool = self._spell_pool.get(len(token))
        if not pool:
            return None
        limit = 2 if len(token) >= SPELL_LONG else 1
        found = process.extract(token, pool, scorer=Levenshtein.distance, score_cutoff=limit, limit=3)
        if not found:
            return None
        best = found[0][1]
        closest = [word for word, distance, _ in found if distance == best]
        if len(closest) > 1:  # a tie: a typo more often swaps a letter than adds or drops one
            closest = [word for word in closest if len(word) == len(token)]
        return closest[0] if len(closest) == 1 else None

    def correction(self, word: str) -> str | None:
        """The knowledge-base word the matcher would read `word` as, if it corrects it (else None)."""
        words = self.normalizer.words(word)
        if len(words) != 1:
            return None
        token = fold(words[0])
        typed = words[0] if words[0] != token else None
        if token in self._vocab or not self._may_correct(token, typed):
            return None
        return self._spell(token)

    def _may_correct(self, token: str, typed: str | None) -> bool:
        if len(token) < SPELL_MIN_LEN or token.isdigit():
            return False
        if typed is None and len(token) >= SPELL_RATIO_MIN_LEN:
            return True  # as before background frequencies: long words typed without diacritics
        if not self.background:
            return False
        return bg.zipf(token, typed) < SPELL_MAX_ZIPF

    def _unknown_uncached(self, token: str, typed: str | None) -> float:
        """Weight of a word the knowledge base does not know: less the more common it is."""
        if not self.background:
            return self._oov_weight
        share = (BG_COMMON_ZIPF - bg.zipf(token, typed)) / (BG_COMMON_ZIPF - BG_RARE_ZIPF)
        return self._oov_weight * min(1.0, max(BG_FLOOR, share))

    def _entry_phrases_uncached(self, index: int) -> str:
        """The entry's title, questions and keywords, normalised with their diacritics, for
        `outside_scope`: "số đó" in an entry is not "sổ đỏ"; a line written without diacritics
        is matched by the phrase's folded form."""
        entry = self.kb.entries[index]
        texts = (entry.title, *entry.questions, *entry.keywords)
        return "|".join(f" {self.normalizer.normalized(text)} " for text in texts)

    def _query_terms(self, tokens: list[str], accented: dict[str, str], story: int = 0
                     ) -> tuple[dict[int, float], float, list[int]]:
        """Weights of the known terms, the weight of unknown words, and the term sequence (-1 unknown).

        Numbers weigh little (a "2" or "5" says nothing of the topic; "mức 2", "nghị quyết 57" count
        through their bigrams). Known words weigh their IDF; unknown words, and words only answers
        use (at most their IDF), weigh by background frequency (`_unknown_uncached`); spelling is
        corrected only in words that are not ordinary Vietnamese (`_may_correct`). The first
        `story` tokens are a long message's story (focus.py): they weigh STORY_WEIGHT of their
        weight, a word the question part repeats fully.
        """
        vocab, idf, stopwords = self._vocab, self._idf, self.normalizer.lexicon.stopwords
        weights: dict[int, float] = {}
        unknown = 0.0
        sequence: list[int] = []
        for position, token in enumerate(tokens):
            factor = STORY_WEIGHT if position < story else 1.0
            typed = accented.get(token)
            term = vocab.get(token)
            if term is not None:
                weight = float(idf[term])
                if term >= self._question_vocab and self.background:  # a word only answers use
                    weight = min(weight, self._unknown(token, typed))
                weights[term] = max(weights.get(term, 0.0), factor * weight)
                sequence.append(term)
                continue
            sequence.append(-1)
            if token in stopwords:
                unknown += factor * STOPWORD_WEIGHT
            elif _is_number(token):
                unknown += factor * NUMBER_WEIGHT
            elif not self._may_correct(token, typed) or (corrected := self._spell(token)) is None:
                unknown += factor * self._unknown(token, typed)
            else:
                term = vocab[corrected]
                weights[term] = max(weights.get(term, 0.0), factor * CORRECTED_WEIGHT * float(idf[term]))
                sequence[-1] = term
        return weights, unknown, sequence

    def _says_little(self, tokens: list[str]) -> bool:
        """Whether a question part names too little to be weighed above its story: fewer than
        QUESTION_MIN_CONTENT words that are neither everyday function words nor numbers."""
        stopwords = self.normalizer.lexicon.stopwords
        content = sum(1 for t in tokens if t not in stopwords and not _is_number(t))
        return content < QUESTION_MIN_CONTENT

    def scores(self, text: str) -> tuple[str, list[tuple[str, float]]]:
        """Normalised text and (entry id, score) pairs for the best candidates, best first."""
        normalized, _tokens, ranked = self._scores(text)
        return normalized, ranked

    def _scores(self, text: str) -> tuple[str, list[str], list[tuple[str, float]]]:
        story_text, question = split_focus(text) if self.focus else ("", text)
        normalized, tokens, accented = self.normalizer.analyse(question)
        story = 0
        if story_text:
            before, story_tokens, story_accented = self.normalizer.analyse(story_text)
            # Cut a very long message in its story, never in its question.
            story_tokens = story_tokens[max(0, len(story_tokens) + len(tokens) - MAX_QUERY_TOKENS):]
            normalized = f"{before} {normalized}".strip()
            # "..., xin hỏi tôi phải làm sao?": a question part that names nothing leaves the story
            # its full weight, as the story is what is asked.
            story = 0 if self._says_little(tokens) else len(story_tokens)
            tokens = story_tokens + tokens
            accented = {**story_accented, **accented}
        return normalized, tokens, self._rank(tokens[:MAX_QUERY_TOKENS], accented, story)

    def _rank(self, tokens: list[str], accented: dict[str, str], story: int = 0) -> list[tuple[str, float]]:
        n = self._n
        if not tokens or n == 0:
            return []
        weights, unknown, sequence = self._query_terms(tokens, accented, story)
        total = sum(weights.values()) + unknown
        question_terms = [t for t in weights if t < self._question_vocab]
        answer_terms = [t for t in weights if t >= self._question_vocab]
        acc = self._postings.accumulate(question_terms, [weights[t] for t in question_terms], n)
        if answer_terms:
            acc += ANSWER_CREDIT * self._answer_postings.accumulate(
                answer_terms, [weights[t] for t in answer_terms], n)
        cover = min(total, COVER_CAP)
        unigram_cov = np.minimum(1.0, acc / cover)
        bigram_cov = self._bigram_coverage(sequence)
        coarse = W_UNIGRAM * unigram_cov + W_BIGRAM * (unigram_cov if bigram_cov is None else bigram_cov)
        k = min(CANDIDATES, n)
        top = np.argpartition(-coarse, k - 1)[:k] if k < n else np.arange(n)
        top = top[coarse[top] > 0]
        if not len(top):
            return []
        variant = self._best_variants(top, weights, cover)
        evidence = np.minimum(1.0, acc[top] / min(total, EVIDENCE_FULL))
        score = 100.0 * (coarse[top] + W_VARIANT * variant) * evidence
        joined = f" {' '.join(tokens)} "
        ranked = []
        for index, value in zip(top.tolist(), score.tolist()):
            if any(k in joined for k in self._keywords[index]):
                value += KEYWORD_BONUS
            ranked.append((self.ids[index], min(value, 100.0)))
        ranked.sort(key=lambda pair: pair[1], reverse=True)
        return ranked

    def _bigram_coverage(self, sequence: list[int]) -> np.ndarray | None:
        """Per entry, the IDF share of the question's known bigrams it contains (None: no bigram)."""
        pairs = [(a, b) for a, b in zip(sequence, sequence[1:]) if a >= 0 and b >= 0]
        if not pairs:
            return None
        keys = np.unique(np.asarray([a * self._base + b for a, b in pairs], dtype=np.int64))
        pos = np.searchsorted(self._bigram_keys, keys)
        inside = pos < len(self._bigram_keys)
        pos, keys = pos[inside], keys[inside]
        found = pos[self._bigram_keys[pos] == keys]
        if not len(found):
            return None
        weights = self._bigram_idf[found]
        return self._bigrams.accumulate(found.tolist(), weights.tolist(), self._n) / weights.sum()

    def _best_variants(self, entries: np.ndarray, weights: dict[int, float], total: float) -> np.ndarray:
        """Best coverage F-score (recall of the question, precision of the variant) per candidate."""
        start, end = self._entry_ptr[entries], self._entry_ptr[entries + 1]
        counts = end - start
        variants = _ranges(start, counts)
        v_start, v_end = self._var_ptr[variants], self._var_ptr[variants + 1]
        v_len = v_end - v_start
        terms = self._var_terms[_ranges(v_start, v_len)]
        query = np.fromiter(weights.keys(), dtype=np.int64, count=len(weights))
        order = np.argsort(query)
        query, query_w = query[order], np.fromiter(weights.values(), dtype=np.float64, count=len(weights))[order]
        pos = np.minimum(np.searchsorted(query, terms), len(query) - 1)
        hit = query[pos] == terms
        offsets = np.zeros(len(variants), dtype=np.int64)
        np.cumsum(v_len[:-1], out=offsets[1:])
        recall = np.minimum(1.0, np.add.reduceat(np.where(hit, query_w[pos], 0.0), offsets) / total)
        precision = np.add.reduceat(np.where(hit, self._idf[terms], 0.0), offsets) / self._var_mass[variants]
        both = recall + precision
        f_score = np.divide(2 * recall * precision, both, out=np.zeros_like(both), where=both > 0)
        entry_offsets = np.zeros(len(entries), dtype=np.int64)
        np.cumsum(counts[:-1], out=entry_offsets[1:])
        best = np.zeros(len(entries))
        has = counts > 0
        if has.all():
            return np.maximum.reduceat(f_score, entry_offsets)
        best[has] = np.maximum.reduceat(f_score, entry_offsets[has])
        return best

    def match(self, text: str) -> MatchResult:
        normalized, ranked, outside = self.assess(text)
        if outside:
            near = [fid for fid, s in ranked[:3] if s >= self.thresholds.suggest_score * NEAR_FACTOR]
            return MatchResult(Decision.FALLBACK, None, ranked[0][1], near, normalized, not_covered=True)
        return self.decide(normalized, ranked)

    def assess(self, text: str) -> tuple[str, list[tuple[str, float]], bool]:
        """Normalised text, ranking, and whether the question names a subject outside the knowledge
        base that its best entry does not cover (then no threshold may answer it)."""
        normalized, _tokens, ranked = self._scores(text)
        outside = bool(ranked and self.scope.subjects and self.outside_scope(normalized.split(), ranked[0][0]))
        return normalized, ranked, outside

    def outside_scope(self, words: list[str], entry_id: str) -> list[str]:
        """Ids of not-covered subjects the question (normalised words) names and the entry does
        not (see scope.py)."""
        hits = self.scope.find(words, joined=self._compound)
        if not hits:
            return []
        index = self._index[entry_id]
        category = self.kb.entries[index].category
        if self.scope.as_context(words, entry_id, category):
            return []  # the subject is context (a scam's bait, the file being tracked): the entry answers
        own = "" if self.scope.baited(entry_id, category) else self._entry_phrases(index)
        return [subject.id for phrase, subject in hits
                if f" {' '.join(phrase)} " not in own and f" {fold(' '.join(phrase))} " not in own]

    def _compound(self, first: str, second: str) -> bool:
        """Whether two folded syllables are one word in the KB ("điện thoại", "hồ sơ"): together in
        many entries, and in a good share of the entries that use the rarer of the two. The share
        keeps apart a folded syllable that stands for several ("so": "số", "sổ", the "sơ" of
        "hồ sơ online")."""
        a, b = self._vocab.get(first), self._vocab.get(second)
        if a is None or b is None or max(a, b) >= self._question_vocab or not len(self._bigram_keys):
            return False
        key = a * self._base + b
        at = int(np.searchsorted(self._bigram_keys, key))
        if at >= len(self._bigram_keys) or int(self._bigram_keys[at]) != key:
            return False
        together = int(self._bigrams.df[at])
        rarer = min(int(self._postings.df[a]), int(self._postings.df[b]))
        return together >= COMPOUND_MIN_ENTRIES and together >= COMPOUND_MIN_SHARE * rarer

    def decide(self, normalized: str, ranked: list[tuple[str, float]]) -> MatchResult:
        return decide(ranked, self.thresholds, normalized)


def _is_number(token: str) -> bool:
    return token.isdigit() or _AMOUNT.fullmatch(token) is not None


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)


def decide(ranked: list[tuple[str, float]], thresholds: Thresholds, normalized: str = "") -> MatchResult:
    """Answer, suggest or fall back, from (entry id, score) pairs best first.

    A module function so bench/accuracy.py applies exactly this rule to the baselines' rankings.
    """
    th = thresholds
    if not ranked or ranked[0][1] < th.suggest_score:
        best_score = ranked[0][1] if ranked else 0.0
        near = [fid for fid, s in ranked[:3] if s >= th.suggest_score * NEAR_FACTOR]
        return MatchResult(Decision.FALLBACK, None, best_score, near, normalized, not_covered=bool(near))
    best_id, best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    close = [fid for fid, s in ranked[1:3] if s >= th.suggest_score * NEAR_FACTOR]
    if best >= th.answer_score and best - runner_up >= th.min_gap:
        return MatchResult(Decision.ANSWER, best_id, best, close, normalized)
    return MatchResult(Decision.SUGGEST, best_id, best, close, normalized)
