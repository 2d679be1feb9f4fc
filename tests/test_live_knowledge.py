"""The served knowledge base: one index per content in a process, rebuilt when anything it is
built from changes (entries, suspensions, thresholds), never shared with a caller's lexicon."""

from __future__ import annotations

from bot.matching.live import LiveKnowledge
from bot.matching.matcher import Thresholds
from bot.matching.normalize import Normalizer
from bot.settings import load_settings
from knowledge.loader import KnowledgeBase, load_knowledge_base


def _kb() -> KnowledgeBase:
    settings = load_settings(_env_file=None, telegram_bot_token="")
    return load_knowledge_base(settings.knowledge_dir, settings.knowledge_local_file)


def test_runtimes_on_the_same_knowledge_share_one_index():
    first, second = LiveKnowledge(_kb()), LiveKnowledge(_kb())
    assert first.matcher is second.matcher
    assert second.normalizer is second.matcher.normalizer
    assert second.matcher.match("quên mật khẩu vneid").faq_id == "vneid.forgot_password"


def test_any_change_to_what_an_index_is_built_from_builds_another():
    kb = _kb()
    base = LiveKnowledge(kb).matcher
    entry = kb.get("vneid.forgot_password")
    edited = entry.model_copy(update={"questions": [*entry.questions, "mật khẩu định danh quên mất rồi"]})
    changed = KnowledgeBase([edited if e.id == entry.id else e for e in kb.entries])
    assert LiveKnowledge(changed).matcher is not base
    assert LiveKnowledge(KnowledgeBase(kb.entries, suspended=frozenset({entry.id}))).matcher is not base
    assert LiveKnowledge(kb, Thresholds(answer_score=90.0)).matcher is not base
    assert LiveKnowledge(kb, normalizer=Normalizer()).matcher is not base  # the caller's lexicon


def test_replacing_the_knowledge_base_serves_the_new_one():
    live = LiveKnowledge(_kb())
    kb = live.kb
    entry = kb.get("bot.human")
    live.replace(KnowledgeBase([e.model_copy(update={"questions": [*e.questions, "con mèo nhà tôi bỏ ăn"]})
                                if e.id == entry.id else e for e in kb.entries]))
    assert "con mèo nhà tôi bỏ ăn" in live.kb.get("bot.human").questions
    assert "con mèo nhà tôi bỏ ăn" not in LiveKnowledge(_kb()).kb.get("bot.human").questions
