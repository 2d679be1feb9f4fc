"""Property-based tests: any Unicode input is handled, normalisation is idempotent, replies fit limits."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.channels import telegram, zalo_bot, zalo_oa
from bot.channels.choices import render
from bot.channels.telegram import split_text
from bot.contracts.messages import MAX_ACTION_BYTES, IncomingMessage
from bot.matching import Decision
from bot.matching.normalize import Lexicon, canonical, fold
from handlers.answering import Answerer

# Every code point, lone surrogates included (JSON "\ud800" escapes decode to one).
ANY_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=400)
VIETNAMESE = st.text(
    alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ ?!.,\u200b\u202e\u0301ＶＮｅＩＤ",
    max_size=200)
# Chat words, teencode and filler glued together: where rewriting passes interact.
CHAT = st.lists(st.sampled_from(
    ["cho", "e", "em", "hoi", "hỏi", "vs", "với", "ạ", "a", "ad", "ơi", "oi", "ko", "dc", "đc", "sdt", "tk", "mk",
     "vneid", "vn", "eid", "trực", "tuyến", "truc", "tuyen", "mst", "mã", "số", "thuế", "ca", "xa", "phuong",
     "định", "danh", "điện", "tử", "giúp", "mình", "nha", "hoà", "thuỷ", "ＶＮｅＩＤ", "!", "😀"]),
    max_size=30).map(" ".join)
_LEXICON = Lexicon.from_file()
# Runs of the lexicon's own words (keys, expansions, fillers, synonyms): every rewrite interaction.
LEXICON_WORDS = st.lists(st.sampled_from(sorted(
    {w for phrase in [*_LEXICON.abbreviations, *_LEXICON.abbreviations.values(), *_LEXICON.fillers,
                      *_LEXICON.synonyms] for w in phrase})), max_size=25).map(" ".join)
MIXED = st.one_of(
    ANY_TEXT, VIETNAMESE, CHAT, LEXICON_WORDS,
    st.builds(lambda s, n: s * n, st.sampled_from(["ạ ", "😀", "\u202e", "\x00", "vneid ", "𝐕𝐍𝐞𝐈𝐃 "]),
              st.integers(1, 3000)),
)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Platform limits in UTF-16 code units (how both APIs count), and the splitter each adapter uses.
CHANNEL_LIMITS = {"telegram": (4096, telegram.MAX_TEXT), "zalo": (2000, zalo_oa.MAX_TEXT),
                  "zalobot": (2000, zalo_bot.MAX_TEXT)}


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@FAST
@given(MIXED)
@example("ＶＮｅＩＤ")
def test_canonical_and_fold_are_idempotent(text):
    once = canonical(text)
    assert canonical(once) == once
    assert fold(fold(once)) == fold(once)


@FAST
@given(MIXED)
@example("vs")  # expands to a filler word: must not vanish only on the second pass
@example("cho e hoi")  # the expansion completes a filler phrase
@example("trực tuyến")  # matcher synonyms must stay out of the normal form
def test_normalizer_is_idempotent_and_total(knowledge, text):
    normalizer = knowledge.normalizer
    once = normalizer.normalized(text)
    assert isinstance(once, str)
    assert normalizer.normalized(once) == once


def test_full_width_letters_read_as_ascii(knowledge):
    assert knowledge.normalizer.tokens("ＶＮｅＩＤ") == ["vneid"]


@FAST
@given(MIXED)
def test_match_always_decides_one_of_three(knowledge, text):
    result = knowledge.matcher.match(text)
    assert result.decision in tuple(Decision)
    assert 0.0 <= result.score <= 100.0
    assert (result.faq_id is None) == (result.decision is Decision.FALLBACK)


@FAST
@given(MIXED, st.sampled_from(sorted(CHANNEL_LIMITS)))
def test_handler_replies_fit_channel_limits(knowledge, text, channel):
    platform_limit, splitter_limit = CHANNEL_LIMITS[channel]
    conversation = Answerer(knowledge)
    replies = asyncio.run(conversation.handle(IncomingMessage(channel, "1", text=text)))
    assert replies, "every message gets an answer"
    for reply in replies:
        assert reply.text.strip()
        # Zalo sends the numbered-choice rendering; Telegram the text with real buttons.
        body = reply.text if channel == "telegram" else render(reply).text
        for part in split_text(body, splitter_limit):
            assert 0 < utf16_units(part) <= platform_limit
        for row in reply.buttons:
            for button in row:
                assert len(button.action.encode()) <= MAX_ACTION_BYTES and button.label


@FAST
@given(st.one_of(st.text(max_size=20_000), st.text(alphabet="😀𝐕 ab\n", max_size=20_000)),
       st.sampled_from(sorted(CHANNEL_LIMITS)))
@example("😀" * 5000, "telegram")  # 10,000 UTF-16 units in 5,000 characters
@example("ab 😀" * 1500, "zalo")
def test_split_text_keeps_every_character_and_respects_limit(text, channel):
    platform_limit, splitter_limit = CHANNEL_LIMITS[channel]
    parts = split_text(text, splitter_limit)
    assert all(utf16_units(p) <= platform_limit for p in parts)
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split()) or not text.strip()
