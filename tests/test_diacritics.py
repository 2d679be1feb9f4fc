"""The diacritics restorer: a syllable bigram model from accented text (bench/diacritics.py)."""

import pytest

from bench.diacritics import DiacriticsRestorer
from bot.matching.normalize import fold


@pytest.fixture(scope="module")
def small() -> DiacriticsRestorer:
    return DiacriticsRestorer([
        "Làm lại căn cước công dân ở đâu?",
        "Cấp lại căn cước khi bị mất",
        "Tài khoản định danh điện tử mức 2",
        "Cà phê ở đâu ngon",
        "Mức phí cấp đổi căn cước",
    ])


def test_restores_the_accented_form_seen_in_the_text(small):
    assert small.restore("lam lai can cuoc o dau") == "làm lại căn cước ở đâu"


def test_neighbours_choose_between_forms_of_the_same_folded_syllable(small):
    # "ca" is written "cà" before "phê" in the text, "căn" is "can" folded: context decides.
    assert small.restore_words(["ca", "phe"]) == ["cà", "phê"]
    assert small.restore_words(["muc", "phi"]) == ["mức", "phí"]


def test_unknown_syllables_stay_as_typed(small):
    assert small.restore("vneid cua toi") == "vneid cua toi"


def test_a_message_written_with_diacritics_is_left_as_typed(small):
    text = "Làm lại căn cuoc ở đâu vậy?"
    assert small.restore(text) == text


def test_abbreviations_are_expanded_before_restoring(small):
    # The chat lexicon expands "cccd" (knowledge/lexicon/chat.yaml); the rest is restored.
    restored = small.restore("lam lai cccd o dau")
    assert restored.startswith("làm lại") and restored.endswith("ở đâu")
    assert "căn cước" in restored


def test_empty_and_punctuation_only_messages():
    restorer = DiacriticsRestorer([])
    assert restorer.restore("") == ""
    assert restorer.restore("???") == "???"
    assert restorer.restore_words([]) == []


def test_the_real_knowledge_base_restores_most_syllables(knowledge):
    """Trained on the shipped knowledge base, folded KB questions come back mostly as written."""
    restorer = DiacriticsRestorer.from_knowledge_base(knowledge.kb)
    words = [w for e in knowledge.kb.entries[:40] for q in e.questions[:2]
             for w in restorer.normalizer.words(q)]
    restored = restorer.restore_words([fold(w) for w in words])
    assert sum(a == b for a, b in zip(restored, words)) / len(words) > 0.9
