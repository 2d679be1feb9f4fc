"""How the matcher copes with everyday Vietnamese: background word frequencies, the dialect and
chat lexicon, spelling correction and the knowledge base's boundaries (not_covered).

Questions are the project's own phrasings of how citizens write, not dev-set questions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.matching import Decision
from bot.matching import background as bg
from bot.matching.matcher import NUMBER_WEIGHT, Matcher, Thresholds
from bot.matching.scope import SCOPE_FILE, Scope, Subject
from knowledge.loader import KnowledgeBase
from knowledge.schema import Entry


@pytest.fixture(scope="module")
def matcher(knowledge) -> Matcher:
    return knowledge.matcher


@pytest.fixture(scope="module")
def plain(knowledge) -> Matcher:
    """The same index without background frequencies (the old rule)."""
    return Matcher(knowledge.kb, knowledge.normalizer, knowledge.thresholds, background=False)


def assert_right_first(result, expected: str) -> None:
    """Answered or offered first: the entry the citizen needs is the one the bot leads with."""
    assert result.decision is not Decision.FALLBACK and result.faq_id == expected, result


def assert_answered(result, expected: str) -> None:
    """Answered outright with the entry the citizen needs."""
    assert result.decision is Decision.ANSWER and result.faq_id == expected, result


# --- background frequencies -------------------------------------------------------------------


def test_background_knows_common_words_and_not_jargon():
    assert bg.zipf("cái", "cái") > 5.5
    assert bg.zipf("hông", "hông") > 4.0
    assert bg.zipf("vneid") == 0.0
    # Typed without diacritics, a word reads as its most common accented form.
    assert bg.zipf("hong") >= bg.zipf("hông", "hông")


def test_common_unknown_word_weighs_less_than_a_rare_one(matcher):
    rare = matcher._unknown("qwzxv", None)
    assert rare == pytest.approx(matcher._oov_weight)
    assert matcher._unknown("bua", None) < 0.5 * rare  # "bữa" (Southern "day"), everyday speech
    assert matcher._unknown("karaoke", None) > matcher._unknown("bua", None)


def test_classifier_cai_does_not_sink_a_match(matcher):
    plain_question = matcher.match("passcode là gì")
    for text in ("passcode là cái gì", "passcode la cai gi", "passcode vneid là cái gì vậy ad"):
        result = matcher.match(text)
        assert result.decision is Decision.ANSWER, (text, result)
        assert result.faq_id == plain_question.faq_id == "vneid.passcode"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hông nhận được mã kích hoạt vneid", "vneid.no_sms"),
        ("mần sao lấy lại mật khẩu vneid", "vneid.forgot_password"),
        ("quên pass vneid thì mần răng", "vneid.forgot_password"),
        ("mấy anh chị ơi chỉ giùm em cách nộp thuế trên etax mobile nha", "pay.etax"),
        ("tk ngân hàng bắt xác thực sinh trắc học là sao mn", "pay.biometric"),
    ],
)
def test_dialect_and_forms_of_address_still_find_the_entry(matcher, text, expected):
    result = matcher.match(text)
    assert result.decision is Decision.ANSWER, (text, result)
    assert result.faq_id == expected


def test_everyday_words_unknown_to_the_kb_cost_less_than_before(matcher, plain):
    # "bữa", "tui", "má" are ordinary Southern words the knowledge base never uses.
    text = "bữa tui quên mật khẩu vneid của má"
    assert matcher.match(text).faq_id == "vneid.forgot_password"
    assert matcher.scores(text)[1][0][1] > plain.scores(text)[1][0][1]


def test_function_words_weigh_as_function_words_even_where_a_variant_uses_them(matcher):
    # Southern "kêu" (= "bảo") and "đều", "nhau" occur in a few long variants, which made them
    # weigh as rare words; as stopwords they no longer sink or steer a question.
    result = matcher.match("vneid nó kêu sai mật khẩu hoài, giờ lấy lại sao")
    assert_right_first(result, "vneid.forgot_password")
    weights = [matcher._idf[matcher._vocab[w]] for w in ("keu", "deu", "nhau") if w in matcher._vocab]
    assert weights and max(weights) <= 0.3
    # A husband in the story ("chồng" weighed as "chống" was rare) no longer sinks the question.
    passport = matcher.match("Chồng tui đi biển, muốn làm hộ chiếu cho anh thì làm online được không rứa")
    assert_right_first(passport, "dvc.passport")


@pytest.mark.parametrize("text", ["làm cccd cho bé 5t cần gì mn", "làm căn cước cho bé 5 tuổi cần gì"])
def test_an_amount_with_its_unit_run_together_weighs_as_a_number(matcher, text):
    # "5t" (five years old), "10tr", "500k" are numbers, not rare words that sink the match.
    result = matcher.match(text)
    assert_right_first(result, "id.card_children")
    for amount in ("5t", "10tr", "1tr5", "500k"):
        assert matcher._query_terms([amount], {})[1] == NUMBER_WEIGHT
    # A word that merely starts with a digit stays a word.
    assert matcher._idf[matcher._vocab["2fa"]] > 1.0


@pytest.mark.parametrize(("text", "expected"), [
    ("Tui lỡ chuyển khoản lộn qua số tài khoản người lạ, đòi lại sao đây", "pay.wrong_transfer"),
    ("Mức 2 với mức 1 VNeID khác chi nhau vậy", "vneid.levels"),
    ("Cái app VNeID hắn bắt chụp mặt mà chụp hoài không qua, răng rứa hè?", "vneid.nfc_face_fail"),
    ("Mấy đứa nhỏ chơi điện thoại suốt, làm sao chặn mấy trang bậy bạ cho tụi nó", "safety.children"),
    ("Tui muốn đóng tiền điện bằng điện thoại cho lẹ, khỏi chờ người tới thu", "pay.bills"),
    ("muốn nộp tiền điện mà không biết làm sao", "pay.bills"),  # "nộp", not only "đóng"
    ("căn cước hết hạn muốn làm lại", "id.card_reissue"),  # not the bank's update of an expired card
])
def test_more_everyday_phrasings_find_the_entry(matcher, text, expected):
    result = matcher.match(text)
    assert_right_first(result, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("Hộ khẩu tui ở Thanh Hóa mà làm ăn ở Đồng Nai, làm giấy tờ ở Đồng Nai luôn được không?", "dvc.any_location"),
    ("Tui ở Cần Thơ, muốn làm lại căn cước bị mất thì làm sao?", "id.card_reissue"),
])
def test_place_names_in_the_story_do_not_dilute_the_question(matcher, text, expected):
    """A province's name is an unknown, rare word: it weighed like a topic word and sank the
    answer to a suggestion. Places are the story (lexicon fillers): answered outright."""
    result = matcher.match(text)
    assert_answered(result, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("Hôm qua con trai cài giúp tôi ứng dụng VNeID, sáng nay mở ra thì quên sạch mật khẩu đăng nhập "
     "rồi, xin hỏi giờ tôi phải làm thế nào?", "vneid.forgot_password"),
    ("Tôi lỡ chuyển khoản nhầm 3 triệu sang một tài khoản lạ lúc trả tiền hàng, gọi ngân hàng chưa "
     "được, xin hỏi tôi phải làm gì bây giờ?", "pay.wrong_transfer"),
])
def test_a_question_part_that_names_nothing_leaves_the_story_its_weight(matcher, text, expected):
    """"..., xin hỏi tôi phải làm gì?": the request names nothing, the story is what is asked.
    Weighed at half, the story sank to a suggestion or below; a question part with fewer than
    two content words no longer halves it."""
    result = matcher.match(text)
    assert_answered(result, expected)


def test_a_word_only_answers_use_weighs_by_its_everyday_frequency(matcher, plain):
    # "xây" (to build) appears in an answer, in no question: an everyday word, not the rarest one.
    text = "nhà em mới xây, muốn đăng ký lắp điện thì làm online ở đâu"
    result = matcher.match(text)
    assert_right_first(result, "dvc.electricity_water")
    assert matcher.scores(text)[1][0][1] > plain.scores(text)[1][0][1]


@pytest.mark.parametrize(
    "text",
    [
        "cách hát karaoke hay",
        "vneid có đặt được phòng karaoke không",
        "công thức nấu phở bò ngon",
        "hướng dẫn đăng ký gói cước 4g viettel",
    ],
)
def test_an_unknown_specific_subject_still_declines(matcher, text):
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK, (text, result)
    assert result.faq_id is None


# --- spelling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "meant"), [("vneit", "vneid"), ("passcod", "passcode"), ("pascode", "passcode"),
                                              ("etac", "etax"), ("otpp", "otp")])
def test_one_wrong_letter_in_a_key_word_is_corrected(matcher, typed, meant):
    assert matcher.correction(typed) == meant


@pytest.mark.parametrize("word", ["nghèo", "hong", "thong", "mat", "dich", "chuyen", "bữa", "karaoke", "tao"])
def test_real_words_are_never_corrected_into_others(matcher, word):
    # Ordinary Vietnamese words (with or without diacritics) are what they are.
    assert matcher.correction(word) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quen mat khau vneit", "vneid.forgot_password"),
        ("nộp hồ sơ onlai trên dịch vụ công", "dvc.submit"),
        ("dang ki tai khoan vneid muc 1", "vneid.register_level1"),
        ("nop thue bang etac mobile", "pay.etax"),
    ],
)
def test_typos_in_key_words_still_find_the_entry(matcher, text, expected):
    result = matcher.match(text)
    assert result.decision in (Decision.ANSWER, Decision.SUGGEST), (text, result)
    assert result.faq_id == expected


# --- the knowledge base's boundaries ------------------------------------------------------------


def _entry(entry_id: str, title: str, questions: list[str]) -> Entry:
    return Entry(id=entry_id, category="dvc", title=title, questions=questions,
                 answer="Một câu trả lời đủ dài cho bài kiểm tra.", source="test", reviewed=dt.date(2026, 1, 1))


@pytest.fixture(scope="module")
def bounded(knowledge) -> Matcher:
    kb = KnowledgeBase([
        _entry("ins.pension_account", "Nhận lương hưu qua tài khoản ngân hàng",
               ["nhận lương hưu qua tài khoản ngân hàng", "lương hưu chuyển vào tài khoản"]),
        _entry("ins.card", "Cấp lại thẻ bảo hiểm xã hội", ["làm lại thẻ bảo hiểm bị mất", "cấp lại thẻ bảo hiểm"]),
        _entry("dvc.other", "Tra cứu hồ sơ", ["tra cứu hồ sơ đã nộp"]),
    ])
    scope = Scope([Subject("pension_rules", "Chế độ lương hưu",
                           (tuple(knowledge.normalizer.words("lương hưu")),
                            tuple(knowledge.normalizer.words("tuổi nghỉ hưu"))))])
    return Matcher(kb, knowledge.normalizer, Thresholds(40, 0, 30), scope=scope)


def test_a_subject_the_kb_does_not_cover_is_not_answered(bounded):
    result = bounded.match("cách tính lương hưu khi làm lại thẻ bảo hiểm")
    assert result.not_covered is True
    assert result.decision is Decision.FALLBACK and result.faq_id is None
    assert len(result.alternatives) <= 3
    assert result.as_dict()["not_covered"] is True


def test_an_entry_that_names_the_subject_is_still_answered(bounded):
    result = bounded.match("nhận lương hưu qua tài khoản ngân hàng")
    assert result.not_covered is False
    assert_answered(result, "ins.pension_account")


def test_without_a_subject_phrase_the_question_is_answered(bounded):
    result = bounded.match("cấp lại thẻ bảo hiểm bị mất")
    assert_answered(result, "ins.card")
    assert result.not_covered is False and result.as_dict()["not_covered"] is False


def test_subject_phrases_match_without_diacritics(bounded):
    assert bounded.match("tuoi nghi huu cua nam la bao nhieu").not_covered is True


def test_a_word_typed_with_other_diacritics_is_another_word(knowledge):
    scope = Scope.from_file(knowledge.normalizer)
    words = knowledge.normalizer.words
    assert [s.id for _, s in scope.find(words("cấp lại sổ đỏ"))] == ["land_title"]
    assert [s.id for _, s in scope.find(words("cap lai so do"))] == ["land_title"]
    assert scope.find(words("số đó tôi vẫn dùng hằng ngày")) == []  # "that number", not a land title


def test_near_miss_under_the_thresholds_offers_choices(knowledge):
    text = "quên mật khẩu vneid"
    best = knowledge.matcher.scores(text)[1][0]
    picky = Matcher(knowledge.kb, knowledge.normalizer, Thresholds(100, 100, best[1] / 0.9))
    result = picky.match(text)
    assert result.decision is Decision.FALLBACK and result.faq_id is None
    assert result.not_covered is True and result.alternatives[0] == best[0]
    # Far under the thresholds: a plain fallback, nothing offered.
    far = Matcher(knowledge.kb, knowledge.normalizer, Thresholds(100, 100, 100)).match("con chó nhà tôi bị ốm")
    assert far.decision is Decision.FALLBACK and far.not_covered is False and far.alternatives == []


@pytest.mark.parametrize(
    "text",
    ["cấp lại sổ đỏ bị mất làm ở đâu", "cach tinh luong huu", "mua vé số online trên vneid được không",
     "thủ tục ly hôn nộp online được không", "tra cứu phạt nguội bằng vneid"],
)
def test_real_scope_list_turns_neighbouring_subjects_away(matcher, text):
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK and result.faq_id is None, (text, result)
    assert result.not_covered is True


@pytest.mark.parametrize(
    "text",
    ["xin xác nhận sơ yếu lý lịch ở phường nào", "rút bảo hiểm một lần online được không",
     "lãnh tiền thất nghiệp ở đâu", "quên mật khẩu facebook lấy lại sao", "chuyển nhượng đất cần giấy gì",
     "mở tài khoản ngân hàng online cần căn cước không", "dán thẻ etc cho ô tô ở đâu",
     "Nhà tôi đang dùng điện sinh hoạt, tháng này hóa đơn tăng gấp đôi dù dùng như cũ. Xin hỏi tôi khiếu nại ở đâu?",
     "Tôi muốn đăng ký thành lập hợp tác xã nông nghiệp với 7 hộ trong thôn. Xin hỏi thủ tục ở đâu?",
     "Tôi mua hàng online bị giao hàng giả, shop chặn liên lạc. Xin hỏi tôi khiếu nại ở đâu để lấy lại tiền?",
     "Trường của con thu tiền quỹ phụ huynh 2 triệu mỗi năm, như vậy có đúng quy định không?",
     "chào buổi tối tiếng hàn nói sao", "lương hưu của tôi được tính theo công thức nào",
     "sửa thông tin thẻ bhyt bị sai ngày sinh ở đâu", "mất thẻ atm làm lại mấy ngày",
     "đăng ký chữ ký số cho doanh nghiệp ở đâu", "hộ nghèo có được hỗ trợ tiền điện không",
     "căn cước gắn chip có dùng để rút tiền ở cây atm được không", "mua xe trả góp thì đăng ký xe đứng tên ai",
     "thẻ bảo hiểm y tế có dùng khám ở bệnh viện tư được không",
     "xin cấp phép cải tạo nhà ở cấp 4 gồm những gì",
     "máy tính bị virus thì diệt bằng phần mềm gì", "cách quay màn hình điện thoại iphone",
     "đăng ký mã số thuế cho công ty mới thành lập", "cấp lại giấy chứng nhận kết hôn bị mất",
     "con em bị bạn đánh ở trường, nhà trường không xử lý, em khiếu nại ở đâu",
     "hàng xóm xây nhà lấn sang đất nhà tôi thì làm sao",
     "về quê ở thì chuyển nơi nhận lương hưu như thế nào", "con tôi bị chó cắn, chủ chó có phải bồi thường không",
     "chủ nhà không trả lại tiền cọc thì làm sao", "thanh niên đua xe trong xóm thì báo ai",
     "nhà bên thả rông gà phá vườn thì làm sao"],
)
def test_more_neighbouring_subjects_are_not_covered(matcher, text):
    """Subjects citizens ask next to the KB's topics that no entry explains: no confident answer."""
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK and result.not_covered is True, (text, result)


@pytest.mark.parametrize(
    "text",
    ["nhận lương hưu qua tài khoản ngân hàng được không", "quên mật khẩu vneid lấy lại sao",
     "bị lừa đầu tư tiền ảo trên facebook thì báo ở đâu"],
)
def test_scope_phrases_leave_covered_questions_alone(matcher, text):
    _normalized, ranked, outside = matcher.assess(text)
    assert ranked and not outside, text


@pytest.mark.parametrize(("text", "expected"), [
    ("làm mất điện thoại có sim đăng ký vneid thì đổi số sao", "vneid.change_phone"),
    ("mat dien thoai thi vneid co bi lo thong tin khong", None),
    ("ho so de nghi huong tro cap huu tri xa hoi nop o dau", "ins.social_pension"),
])
def test_a_subject_phrase_does_not_start_or_end_inside_a_word(matcher, text, expected):
    # "mất điện" (a power cut) is a scope phrase; in "mất điện thoại" (a lost phone) it is not
    # there, nor "so de" (lottery numbers) in "ho so de nghi" (an application, typed bare).
    _normalized, ranked, outside = matcher.assess(text)
    assert ranked and not outside, text
    if expected:
        assert matcher.match(text).faq_id == expected
    assert matcher.assess("khu tôi mất điện cả ngày, báo ai")[2]  # the power cut itself is still out


def test_an_entry_exempts_a_subject_only_by_the_phrase_itself_not_a_homograph(matcher):
    # An entry saying "số đó" (that number) does not make "sổ đỏ" (a land title) its subject.
    for text in ("làm sổ đỏ online", "lam so do online"):
        result = matcher.match(text)
        assert result.decision is Decision.FALLBACK and result.not_covered, (text, result)


def test_scope_file_loads_and_every_subject_has_phrases(knowledge, tmp_path: Path):
    scope = Scope.from_file(knowledge.normalizer, SCOPE_FILE)
    assert len(scope.subjects) >= 10
    assert all(subject.phrases for subject in scope.subjects)
    assert Scope.from_file(knowledge.normalizer, tmp_path / "absent.yaml").subjects == []
    broken = tmp_path / "broken.yaml"
    broken.write_text("subjects: [not, a, mapping]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="subjects"):
        Scope.from_file(knowledge.normalizer, broken)
    assert any("safety" in rule.categories and ("lừa",) in rule.cues for rule in scope.context)
    broken.write_text("as_context: [{categories: [safety]}]\nsubjects: {x: {phrases: [abc]}}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="as_context"):
        Scope.from_file(knowledge.normalizer, broken)


@pytest.mark.parametrize(("text", "expected"), [
    ("Tôi bị lừa đầu tư chứng khoán qua mạng mất 50 triệu, giờ phải làm gì?", "safety.scammed"),
    ("Bị lừa tìm việc làm online, đóng tiền cọc rồi mất liên lạc thì báo ai?", "safety.scammed"),
    ("Tin nhắn báo phạt nguội bắt bấm link nộp phạt có phải lừa đảo không?", "safety.scam_signs"),
])
def test_a_scam_told_by_its_bait_is_answered_by_the_scam_guides(matcher, text, expected):
    # "chứng khoán", "việc làm", "phạt nguội" are subjects the KB does not cover; here they are
    # the scam's bait, and the question is the scam.
    result = matcher.match(text)
    assert_right_first(result, expected)


def test_a_scam_guides_bait_does_not_make_the_subject_its_own(matcher):
    # The impersonation guide mentions "cập nhật lương hưu" as a scam's bait; that does not make
    # a question about pension rules its own (it was offered as the first choice).
    pension = matcher.match("huong luong huu can dong bhxh bao nhieu nam")
    assert pension.decision is Decision.FALLBACK and pension.not_covered, pension
    # The hotline guides warn of fake fines messages: that does not make paying fines theirs.
    fines = matcher.match("vneid có nộp phạt giao thông được không")
    assert fines.decision is Decision.FALLBACK and fines.not_covered, fines
    # With a cue that the call itself is asked about, the same bait is the scam's.
    call = matcher.match("Hắn gọi xưng bên điện lực đòi cắt điện nhà tui, bắt chuyển tiền, răng chừ")
    assert_right_first(call, "safety.fake_officials")


@pytest.mark.parametrize(("text", "expected"), [
    ("Tôi nộp hồ sơ tách thửa trên dịch vụ công, giờ tra cứu tình trạng hồ sơ ở đâu?", "dvc.track"),
    ("Hồ sơ xin giấy phép xây dựng của tôi quá hẹn 2 tuần, muốn phản ánh thì gửi ở đâu?", "dvc.feedback"),
    ("chứng thực bản sao sổ đỏ online được không", "dvc.certified_copy"),
    ("Đi máy bay có cần mang căn cước không, tôi đã mua vé máy bay rồi, dùng VNeID được không?",
     "vneid.e_id_card"),
    ("Nộp thuế cho thuê nhà qua eTax Mobile được không?", "pay.etax"),
    ("Thi bằng lái xong rồi thì tích hợp bằng lái vào VNeID thế nào?", "vneid.driving_licence"),
])
def test_a_guide_that_takes_the_subject_as_context_answers(matcher, text, expected):
    # Land titles, building permits and plane tickets are not covered; tracking a file, complaining
    # that it is overdue, certifying a copy of any paper and flying with VNeID are.
    result = matcher.match(text)
    assert_right_first(result, expected)


@pytest.mark.parametrize("text", ["tra cứu phạt nguội ở đâu", "đầu tư chứng khoán cho người mới",
                                  "tìm việc làm online ở đâu uy tín", "thủ tục tách thửa cần giấy tờ gì",
                                  "mua vé máy bay giá rẻ ở đâu", "làm sổ đỏ online",
                                  "thuế cho thuê nhà tính thế nào", "đăng ký thi bằng lái xe máy"])
def test_the_bait_subject_asked_for_itself_is_still_not_covered(matcher, text):
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK, (text, result)


# --- the decision rule ----------------------------------------------------------------------------


def test_decide_offers_near_entries_on_fallback_only_within_reach():
    from bot.matching.matcher import NEAR_FACTOR, decide

    th = Thresholds(answer_score=80, min_gap=5, suggest_score=60)
    near = decide([("a", 60 * NEAR_FACTOR + 1), ("b", 60 * NEAR_FACTOR - 1)], th)
    assert near.decision is Decision.FALLBACK and near.faq_id is None
    assert near.not_covered is True and near.alternatives == ["a"]
    far = decide([("a", 60 * NEAR_FACTOR - 1)], th)
    assert far.not_covered is False and far.alternatives == []
    answered = decide([("a", 90), ("b", 70)], th)
    assert answered.decision is Decision.ANSWER and answered.not_covered is False
    assert set(answered.as_dict()) == {"decision", "faq_id", "score", "alternatives", "not_covered"}


def test_without_background_every_unknown_word_weighs_as_the_rarest(plain):
    assert plain._unknown("bua", None) == plain._unknown("qwzxv", None) == pytest.approx(plain._oov_weight)


@pytest.mark.parametrize(
    "text",
    ["Công ty nợ lương công nhân ba tháng nay rồi, tụi tôi muốn khiếu nại thì nộp đơn ở đâu?",
     "Xe máy của tôi bị tạm giữ mười ngày vì vi phạm nồng độ cồn, giờ hết hạn thì lên lấy xe cần giấy tờ gì?"],
)
def test_a_near_but_uncovered_procedure_is_declined_with_choices(matcher, text):
    """Wage arrears share "khiếu nại ở đâu" with the feedback entry, an impounded motorbike shares
    "giấy tờ" with several: the bot says it has no guide and offers the closest entries."""
    result = matcher.match(text)
    assert result.decision is Decision.FALLBACK and result.faq_id is None, (text, result)
    assert result.not_covered is True and result.alternatives, result


def test_a_long_message_in_southern_speech_is_still_answered(matcher):
    text = ("Má tui năm nay bảy chục tuổi rồi, mắt yếu, hổng biết xài điện thoại. Cho tui hỏi vneid "
            "của má quên mật khẩu thì mần sao lấy lại?")
    result = matcher.match(text)
    assert_answered(result, "vneid.forgot_password")
