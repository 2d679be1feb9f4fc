"""Matcher decisions on representative questions (own phrasings, not the dev set)."""

from __future__ import annotations

import pytest

from bot.matching import Decision
from bot.matching.matcher import Matcher, Thresholds


@pytest.fixture(scope="module")
def matcher(knowledge) -> Matcher:
    return knowledge.matcher


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tôi quên mật khẩu đăng nhập VNeID", "vneid.forgot_password"),
        ("quen mat khau vneid", "vneid.forgot_password"),
        ("ad oi quen pass vneid r lam sao a", "vneid.forgot_password"),
        ("không nhận được mã otp kích hoạt vneid", "vneid.no_sms"),
        ("Cổng dịch vụ công quốc gia là gì", "dvc.what_is"),
        ("tra cứu hồ sơ đã nộp trên dịch vụ công", "dvc.track"),
        ("đăng ký khai sinh cho con trên mạng", "dvc.birth_registration"),
        ("lam sao nhan biet lua dao qua dien thoai", "safety.scam_signs"),
        ("bị lừa chuyển khoản mất tiền rồi phải làm gì", "safety.scammed"),
        ("nộp thuế bằng etax mobile", "pay.etax"),
        ("Bình dân học vụ số là gì", "bdhvs.what_is"),
        ("nghị quyết 57 nói về cái gì", "nq57.what_is"),
        ("xác thực sinh trắc học tài khoản ngân hàng", "pay.biometric"),
    ],
)
def test_in_scope_questions_find_their_entry(matcher, text, expected):
    result = matcher.match(text)
    assert result.decision in (Decision.ANSWER, Decision.SUGGEST), (text, result)
    assert result.faq_id == expected, (text, result)


@pytest.mark.parametrize(
    "text",
    [
        "công thức nấu phở bò ngon",
        "đội tuyển bóng đá tối nay đá mấy giờ",
        "giá xăng hôm nay bao nhiêu",
        "con chó nhà tôi bị ốm phải làm sao",
        "asdkjh qwe zxc",
    ],
)
def test_out_of_scope_falls_back(matcher, text):
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK, (text, result)
    assert result.faq_id is None


def test_a_preposition_does_not_sink_a_plain_question(matcher):
    # "trong" (in) is a function word: weighed as one, "... trong vneid" is answered like "... vneid".
    plain, with_in = matcher.match("đổi số điện thoại vneid"), matcher.match("đổi số điện thoại trong vneid")
    assert plain.decision is with_in.decision is Decision.ANSWER
    assert plain.faq_id == with_in.faq_id == "vneid.change_phone"


def test_no_diacritics_scores_like_diacritics(matcher):
    a = matcher.match("Làm sao để đổi số điện thoại đăng ký VNeID")
    b = matcher.match("lam sao de doi so dien thoai dang ky vneid")
    assert a.faq_id == b.faq_id == "vneid.change_phone"
    assert abs(a.score - b.score) < 1e-6


def test_close_call_becomes_suggestion_not_guess(knowledge):
    # With a demanding gap every near-tie is offered as a choice instead of answered.
    strict = Matcher(knowledge.kb, knowledge.normalizer, Thresholds(answer_score=0, min_gap=100, suggest_score=1))
    result = strict.match("mật khẩu vneid")
    assert result.decision is Decision.SUGGEST
    assert result.faq_id is not None and len(result.alternatives) >= 1


def test_thresholds_drive_the_decision(knowledge):
    text = "quên mật khẩu vneid"
    always = Matcher(knowledge.kb, knowledge.normalizer, Thresholds(0, 0, 0))
    best = always.match(text)
    assert best.decision is Decision.ANSWER
    never = Matcher(knowledge.kb, knowledge.normalizer, Thresholds(100, 100, best.score + 0.01))
    assert never.match(text).decision is Decision.FALLBACK


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\t\n", "😀🙏", "👍👍👍", "\x00\x1b[0m\u200b", "a" * 10_000, "ạ ạ ạ", "ạ nhé", "đ" * 5000,
     "\u202eبيانات", "1234567890", "?!..."],
)
def test_input_without_a_question_falls_back(matcher, text):
    # Empty, whitespace, emoji, control characters, filler only, noise: nothing to answer.
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK, (text[:20], result)
    assert result.faq_id is None and result.alternatives == []
    assert 0.0 <= result.score <= 100.0


def test_ten_thousand_character_question_still_decides(matcher):
    text = "Tôi quên mật khẩu đăng nhập VNeID. " + "Tôi đã thử nhiều lần mà không được. " * 280
    assert len(text) > 10_000
    result = matcher.match(text)
    assert result.decision in tuple(Decision)
    assert result.faq_id in (None, "vneid.forgot_password")


def test_abbreviation_expansion_reaches_entry(matcher):
    assert matcher.match("cccd gắn chip đăng ký vneid mức 2 ở đâu").faq_id == "vneid.register_level2"
