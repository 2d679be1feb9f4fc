"""The knowledge base must not contain the development questions (or near copies of them).

The dev set measures how the matcher copes with phrasings it has never seen; a variant that
is a copy of a dev question would make the measured accuracy a lie. Compared after lower-casing,
diacritic folding and punctuation stripping, and again after the chat lexicon (so "quen mk" and
"quên mật khẩu" count as the same words), with both the plain and the word-order-insensitive ratio.
Titles are exempt: they are the topic titles of topics.yaml, which the dev set was written from.
"""

from __future__ import annotations

import numpy as np
import pytest
from rapidfuzz import fuzz, process

from bench.devset import CANDIDATES, find_dev_questions, load_questions
from bot.matching.normalize import Normalizer, canonical, fold

LIMIT = 90.0


def similarity_matrix(normalizer: Normalizer, texts: list[str], others: list[str]) -> np.ndarray:
    """Highest of the three ratios for every (text, other) pair."""
    plain = [[fold(canonical(t)) for t in side] for side in (texts, others)]
    lexical = [[" ".join(normalizer.tokens(t)) for t in side] for side in (texts, others)]
    return np.maximum.reduce([
        process.cdist(*plain, scorer=fuzz.ratio),
        process.cdist(*lexical, scorer=fuzz.ratio),
        process.cdist(*plain, scorer=fuzz.token_sort_ratio),
    ])


def similarity(normalizer: Normalizer, a: str, b: str) -> float:
    return float(similarity_matrix(normalizer, [a], [b])[0, 0])


def test_similarity_sees_through_case_accents_punctuation_and_teencode(knowledge):
    normalizer = knowledge.normalizer
    assert similarity(normalizer, "Quên mật khẩu VNeID thì làm sao?", "quen mk vneid thi lam sao") == 100
    assert similarity(normalizer, "VNeID là gì?", "đổi số điện thoại trên VNeID") < LIMIT


def test_no_variant_or_keyword_copies_a_dev_question(knowledge):
    path = find_dev_questions()
    if path is None:
        pytest.skip(f"dev set not found (looked at {', '.join(map(str, CANDIDATES))})")
    dev = load_questions(path)
    normalizer = knowledge.normalizer
    items = [(entry.id, kind, text) for entry in knowledge.kb.entries
             for kind, texts in (("question", entry.questions), ("keyword", entry.keywords)) for text in texts]
    scores = similarity_matrix(normalizer, [text for *_, text in items], [q["text"] for q in dev])
    leaks = [f"{items[i][0]} {items[i][1]} {items[i][2]!r} ~ {dev[j]['id']} {dev[j]['text']!r} ({scores[i, j]:.0f})"
             for i, j in zip(*np.nonzero(scores >= LIMIT))]
    assert not leaks, "knowledge base repeats dev questions:\n" + "\n".join(leaks)
