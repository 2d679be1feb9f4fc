"""Long messages: a story first, then the question (bot/matching/focus.py).

Messages are the project's own phrasings of how citizens write, not dev-set questions.
"""

from __future__ import annotations

import pytest

from bot.matching import Decision
from bot.matching.focus import split_focus
from bot.matching.matcher import Matcher

STORY_THEN_QUESTION = (
    "Tuần trước tôi vừa đăng ký khai sinh cho cháu nội trên cổng dịch vụ công, nộp hồ sơ xong xuôi "
    "cả rồi. Cho tôi hỏi tài khoản VNeID bị khóa thì mở lại thế nào?"
)


@pytest.fixture(scope="module")
def matcher(knowledge) -> Matcher:
    return knowledge.matcher


@pytest.fixture(scope="module")
def whole(knowledge) -> Matcher:
    """The same index weighing a long message whole (the ablation)."""
    return Matcher(knowledge.kb, knowledge.normalizer, knowledge.thresholds, focus=False)


def test_a_short_message_is_all_question():
    assert split_focus("quên mật khẩu vneid thì làm sao") == ("", "quên mật khẩu vneid thì làm sao")


def test_the_question_starts_at_the_request_after_a_story():
    story, question = split_focus(STORY_THEN_QUESTION)
    assert story.startswith("Tuần trước") and question.startswith("Cho tôi hỏi tài khoản VNeID")
    assert story + question == STORY_THEN_QUESTION


def test_the_question_starts_at_the_first_question_mark_sentence():
    text = ("Mẹ tôi năm nay bảy mươi tuổi, ở quê một mình, mắt kém nên con cháu phải lo giấy tờ giúp. "
            "Quên mật khẩu VNeID thì lấy lại ở đâu? Có phải ra công an xã không?")
    story, question = split_focus(text)
    assert question.startswith("Quên mật khẩu VNeID") and question.endswith("công an xã không?")
    assert story.startswith("Mẹ tôi")


def test_a_message_that_opens_with_its_request_is_not_split():
    # "Tôi muốn đăng ký tạm trú..." names the subject: it is question, not story.
    text = ("Tôi muốn đăng ký tạm trú ở chỗ đang thuê trọ gần khu công nghiệp, xin hỏi nộp hồ sơ "
            "trên mạng được không và cần những giấy tờ gì?")
    assert split_focus(text) == ("", text)


def test_a_message_that_opens_with_a_question_without_a_question_mark_is_not_split():
    # "... có tổ công nghệ số không" asks; what follows ("tôi muốn nhờ ...") is no new subject.
    text = ("Ở xã mình có tổ công nghệ số cộng đồng không, tui muốn nhờ mấy đứa chỉ cho ông bà già "
            "cách xài điện thoại")
    assert split_focus(text) == ("", text)
    # A story that only ends in "không" further on is still a story.
    story, question = split_focus(
        "Mẹ tôi năm nay bảy mươi tuổi, ở quê một mình, mắt kém nên không đọc được chữ nhỏ, "
        "xin hỏi quên mật khẩu VNeID thì lấy lại ở đâu")
    assert story.startswith("Mẹ tôi") and question.startswith("xin hỏi")


def test_a_long_message_is_matched_on_its_question_part(matcher, whole):
    focused = matcher.match(STORY_THEN_QUESTION)
    assert focused.decision is not Decision.FALLBACK and focused.faq_id == "vneid.locked", focused
    # Weighed whole, the story (a birth registration) outranks the question.
    assert whole.match(STORY_THEN_QUESTION).faq_id != "vneid.locked"


def test_a_long_message_about_an_uncovered_subject_is_declined(matcher):
    text = ("Bố tôi mất năm ngoái, mấy anh em đã làm giấy chứng tử và khai tử trên mạng xong rồi. "
            "Xin hỏi thủ tục khai nhận thừa kế mảnh đất bố để lại làm ở đâu?")
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK and result.not_covered is True, result


def test_a_subject_named_only_in_the_story_still_declines(matcher):
    """The story often names the subject and the question stays generic ("khiếu nại ở đâu"): the
    not-covered subjects are searched in the whole message, not only its question part."""
    text = ("Công ty nợ lương công nhân ba tháng nay rồi, tụi tôi muốn khiếu nại thì nộp đơn ở đâu?")
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK and result.not_covered is True, result
