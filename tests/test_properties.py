"""Property-based tests: any Unicode input is handled, normalisation is idempotent, replies fit limits."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.telegram import MAX_TEXT, split_text
from bot.matching import Decision
from bot.matching.normalize import canonical, fold
from handlers.conversation import Conversation
from handlers.messages import MAX_ACTION_BYTES, IncomingMessage

ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
MIXED = st.one_of(
    ANY_TEXT,
    st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ ?!.,\u200b\u202e\u0301",
            max_size=200),
    st.builds(lambda s, n: s * n, st.sampled_from(["ạ ", "😀", "\u202e", "\x00", "vneid "]),
              st.integers(1, 3000)),
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(MIXED)
def test_canonical_is_idempotent(text):
    once = canonical(text)
    assert canonical(once) == once
    assert fold(fold(once)) == fold(once)


@FAST
@given(MIXED)
def test_normalizer_is_idempotent_and_total(knowledge, text):
    normalizer = knowledge.normalizer
    words = normalizer.normalized(text)
    assert isinstance(words, str)
    assert normalizer.normalized(words) == normalizer.normalized(normalizer.normalized(words))


@FAST
@given(MIXED)
def test_match_always_decides_one_of_three(knowledge, text):
    result = knowledge.matcher.match(text)
    assert result.decision in tuple(Decision)
    assert 0.0 <= result.score <= 100.0
    assert (result.faq_id is None) == (result.decision is Decision.FALLBACK)


@FAST
@given(MIXED)
def test_handler_replies_fit_channel_limits(knowledge, text):
    conversation = Conversation(knowledge)
    replies = asyncio.run(conversation.handle(IncomingMessage("telegram", "1", text=text)))
    assert replies, "every message gets an answer"
    for reply in replies:
        assert reply.text.strip()
        for part in split_text(reply.text):
            assert len(part) <= MAX_TEXT
        for row in reply.buttons:
            for button in row:
                assert len(button.action.encode()) <= MAX_ACTION_BYTES and button.label


@FAST
@given(st.text(max_size=20_000))
def test_split_text_keeps_every_character_and_respects_limit(text):
    parts = split_text(text)
    assert all(len(p) <= MAX_TEXT for p in parts)
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split()) or not text.strip()
