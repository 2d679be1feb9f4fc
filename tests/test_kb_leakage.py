"""The knowledge base must not contain the development questions (or near copies of them),
old (v1) or new (v2, tuning and held-out halves alike).

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

from bench.devset import CANDIDATES, CANDIDATES_V2, find_dev_questions, find_dev_questions_v2, load_questions
from bot.matching.normalize import Normalizer, canonical, fold
from knowledge.loader import KnowledgeBase

LIMIT = 90.0
SHORT_WORDS = 3


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


def dev_questions() -> list[dict]:
    """Every dev question, old (v1) and new (v2, both halves): none may be copied into the KB."""
    paths = [path for path in (find_dev_questions(), find_dev_questions_v2()) if path is not None]
    if not paths:
        pytest.skip(f"dev sets not found (looked at {', '.join(map(str, (*CANDIDATES, *CANDIDATES_V2)))})")
    return [q for path in paths for q in load_questions(path)]


def leaks(normalizer: Normalizer, kb, questions: list[dict]) -> list[str]:
    """"entry id kind[index]" of every variant or keyword too close to some dev question.

    Only the entry and the position of its variant are named, never the question: the held-out
    half of dev-v2 must not be shown one question at a time, not even by a failing test.
    """
    items = [(entry.id, kind, index, text) for entry in kb.entries
             for kind, texts in (("questions", entry.questions), ("keywords", entry.keywords))
             for index, text in enumerate(texts)]
    scores = similarity_matrix(normalizer, [text for *_, text in items], [q["text"] for q in questions])
    # A keyword is a topic's name: a dev question of one to three words that is just that name is
    # a coincidence, not a copy. Question variants are compared with every dev question.
    is_keyword = np.array([kind == "keywords" for _, kind, _, _ in items])
    is_short = np.array([len(q["text"].split()) <= SHORT_WORDS for q in questions])
    scores[np.ix_(is_keyword, is_short)] = 0
    hits = sorted({i for i, _ in zip(*np.nonzero(scores >= LIMIT))})
    return [f"{items[i][0]} {items[i][1]}[{items[i][2]}]" for i in hits]


def test_no_variant_or_keyword_copies_a_dev_question(knowledge):
    found = leaks(knowledge.normalizer, knowledge.kb, dev_questions())
    assert not found, ("knowledge-base variants too close (ratio >= 90 after folding) to a dev question; "
                       "rewrite them from how citizens talk:\n" + "\n".join(found))


def test_leak_report_names_the_variant_not_the_question(knowledge):
    # A KB whose one entry copies a question (with other accents and case) is caught, and the
    # report names only the entry and the variant's position.
    entry = knowledge.kb.entries[0]
    question = {"id": "x-1", "text": "Làm Sao Để Đổi Số Điện Thoại Trên Ứng Dụng Này Vậy Bạn"}
    copy = entry.model_copy(update={"questions": ["xin chào", "lam sao de doi so dien thoai tren ung dung nay vay ban"]})
    found = leaks(knowledge.normalizer, KnowledgeBase([copy]), [question])
    assert found == [f"{entry.id} questions[1]"]
    assert not any("doi so" in line or "Đổi" in line for line in found)
