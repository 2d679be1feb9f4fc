"""Conversation skills through the in-process harness (real Conversation, SQLite and PostgreSQL):
small talk, two questions in one message, follow-ups with a database context, not covered."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from bot.contracts import texts
from bot.contracts.messages import IncomingMessage
from bot.contracts.payloads import AlsoAsked, FacetChoice, PayloadError
from bot.storage.models import ConversationContext, QuestionLog, User
from handlers.router import Turn
from tests.conversation_harness import actions, conversation

RESIDENCE = "vneid.residence_register"
FEE_TEXT = "Lệ phí đăng ký tạm trú trực tuyến: thử nghiệm (văn bản của bài kiểm thử)."


@pytest.fixture
async def bot(database_url, knowledge):
    residence = knowledge.kb.get(RESIDENCE)
    with_facets = residence.model_copy(update={"facets": {"fee": FEE_TEXT, "where": "Nơi làm: thử nghiệm."}})
    async with conversation(database_url, [with_facets]) as harness:
        yield harness


SMALL_TALK = [
    ("xin chào", texts.SMALLTALK_GREETING), ("xin chao", texts.SMALLTALK_GREETING), ("alo", texts.SMALLTALK_GREETING),
    ("cảm ơn nhiều nha", texts.SMALLTALK_THANKS), ("cam on ban nhieu", texts.SMALLTALK_THANKS),
    ("tks ad", texts.SMALLTALK_THANKS), ("tạm biệt nhé", texts.SMALLTALK_GOODBYE), ("bye bye", texts.SMALLTALK_GOODBYE),
    ("bạn là ai", texts.SMALLTALK_IDENTITY), ("ban la nguoi hay may vay", texts.SMALLTALK_IDENTITY),
    ("giỏi quá", texts.SMALLTALK_PRAISE), ("bot trả lời sai hoài, chán quá", texts.SMALLTALK_COMPLAINT),
    ("xin chàooo", texts.SMALLTALK_GREETING), ("okkk", texts.SMALLTALK_ACK), ("ok", texts.SMALLTALK_ACK), ("dạ", texts.SMALLTALK_ACK), ("👍", texts.SMALLTALK_ACK), ("vâng ạ", texts.SMALLTALK_ACK),
]


async def test_small_talk_replies_and_is_never_unanswered(bot):
    chat = bot.chat("st")
    [first] = await chat.say("con mèo nhà tôi bỏ ăn mấy hôm nay")  # one real fallback: streak 1
    assert first.kind == "fallback"
    for message, expected in SMALL_TALK:
        outcome = await chat.send(message)
        assert outcome.verdict.kind == "smalltalk", message
        [reply] = outcome.replies
        assert reply.text == expected, message
    logged = await bot.rows(QuestionLog)
    assert [q.decision for q in logged].count("smalltalk") == len(SMALL_TALK)
    assert [q.decision for q in logged].count("fallback") == 1
    [user] = await bot.rows(User)
    assert user.fallback_streak == 1  # small talk neither counts nor resets the streak
    assert await bot.store.questions.recent_unanswered() == [logged[0].normalized]


async def test_greeting_shows_menu_complaint_offers_the_team(bot):
    chat = bot.chat("menu")
    [greeting] = await chat.say("xin chào")
    assert {"cat:vneid", "cat:dvc", "human"} <= set(actions(greeting))
    [complaint] = await chat.say("trả lời lạc đề quá, làm ăn kiểu gì vậy")
    assert complaint.text == texts.SMALLTALK_COMPLAINT and any(a.startswith("human") for a in actions(complaint))
    [identity] = await chat.say("bạn là người thật hay máy trả lời vậy")
    assert "không phải người thật" in identity.text
    [ask] = await chat.press(next(a for a in actions(complaint) if a.startswith("human")))
    assert ask.text == texts.ASK_QUESTION_FOR_TEAM  # the team gets what the citizen types, not the complaint
    [handed] = await chat.say("cách nhận lương hưu qua tài khoản ngân hàng")
    assert handed.kind == "handoff"


async def test_greeting_or_thanks_inside_a_question_answers_it(bot):
    chat = bot.chat("q")
    for message in ("chào bạn, cho mình hỏi quên mật khẩu vneid", "cảm ơn, mà quên mật khẩu vneid thì làm sao"):
        outcome = await chat.send(message)
        assert (outcome.verdict.kind, outcome.verdict.faq_id) == ("answer", "vneid.forgot_password"), message


async def test_two_questions_first_answered_second_offered_then_other_one(bot):
    chat = bot.chat("two")
    outcome = await chat.send("quên mật khẩu vneid với cả muốn đổi số điện thoại luôn thì làm sao")
    assert outcome.verdict.faq_id == "vneid.forgot_password" and outcome.verdict.also == ("vneid.change_phone",)
    assert "Quên mật khẩu VNeID" in outcome.replies[0].text
    offered = [a for r in outcome.replies[1:] for a in actions(r)]
    also = next(a for a in offered if a.startswith("also:"))
    assert AlsoAsked.unpack(also).entry == "vneid.change_phone"
    [second] = await chat.press(also)
    assert "Đổi số điện thoại" in second.text
    other = await bot.chat("two-b").send("quên mật khẩu vneid với cả muốn đổi số điện thoại luôn thì làm sao")
    assert other.verdict.also == ("vneid.change_phone",)
    again = await bot.chat("two-b").send("còn cái kia thì sao")
    assert again.verdict.faq_id == "vneid.change_phone"


async def test_unmatched_second_question_is_said_and_logged_for_staff(bot):
    chat = bot.chat("lost")
    outcome = await chat.send("Quên mật khẩu VNeID thì lấy lại sao? Con mèo nhà tôi bỏ ăn mấy hôm nay thì làm sao?")
    assert outcome.verdict.faq_id == "vneid.forgot_password"
    notice = outcome.replies[-1]
    assert "Con mèo nhà tôi bỏ ăn" in notice.text and any(a.startswith("human") for a in actions(notice))
    decisions = sorted(q.decision for q in await bot.rows(QuestionLog))
    assert decisions == ["answer", "fallback"]


async def test_followups_get_the_right_part_from_another_process(bot):
    chat = bot.chat("f")
    first = await chat.send("đăng ký tạm trú online thế nào")
    assert first.verdict.faq_id == RESIDENCE
    other_process = bot.chat("f", bot.process())  # context is in the database, not in memory
    fee = await other_process.send("còn lệ phí thì sao?")
    assert (fee.verdict.kind, fee.verdict.faq_id) == ("answer", RESIDENCE)
    assert FEE_TEXT in fee.replies[0].text and "Lệ phí" in fee.replies[0].text
    where = await chat.send("làm ở đâu vậy?")
    assert where.verdict.faq_id == RESIDENCE and "Nơi làm: thử nghiệm." in where.replies[0].text
    whole = await chat.send("cái đó mất bao lâu")  # no facet: the entry itself, not some other entry
    assert whole.verdict.faq_id == RESIDENCE
    # ... said to be the whole guide, not an answer about the time, with the team one press away
    assert "chưa có thông tin riêng về thời gian" in whole.replies[0].text
    assert [b.label for row in whole.replies[0].buttons for b in row] == ["Gửi câu hỏi cho cán bộ"]
    assert whole.replies[1].kind == "answer"
    unrelated = await chat.send("con mèo nhà tôi bỏ ăn mấy hôm nay")
    assert unrelated.verdict.kind == "fallback"
    stranger = await bot.chat("g").send("còn lệ phí thì sao?")  # nobody else's context
    assert stranger.verdict.faq_id != RESIDENCE


async def test_unclear_followup_offers_parts_of_the_topic(bot):
    chat = bot.chat("unsure")
    await chat.send("đăng ký tạm trú online thế nào")
    outcome = await chat.send("còn cái xe máy thì sao")
    assert outcome.verdict.kind == "suggest" and RESIDENCE in outcome.verdict.choices
    [reply] = outcome.replies
    assert FacetChoice("fee", RESIDENCE).pack() in actions(reply) and actions(reply)[-1].startswith("no:")
    assert reply.text == texts.FOLLOWUP_CHOICES.format(title=bot.knowledge.kb.get(RESIDENCE).title)


async def test_context_expires_after_fifteen_minutes(bot):
    chat = bot.chat("old")
    await chat.send("đăng ký tạm trú online thế nào")
    fresh = await chat.send("còn lệ phí thì sao?")
    assert fresh.verdict.faq_id == RESIDENCE
    async with bot.store.sessions.begin() as s:
        await s.execute(update(ConversationContext).values(
            updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)))
    stale = await chat.send("còn lệ phí thì sao?")
    assert stale.verdict.faq_id != RESIDENCE


async def test_facet_button_and_deleted_with_the_user(bot):
    chat = bot.chat("btn")
    await chat.send("đăng ký tạm trú online thế nào")
    [part] = await chat.press(FacetChoice("fee", RESIDENCE).pack())
    assert FEE_TEXT in part.text and f"faq:{RESIDENCE}" in actions(part)
    assert len(await bot.rows(ConversationContext)) == 1
    [user] = await bot.rows(User)
    await bot.store.users.delete_data(user.id)
    assert await bot.rows(ConversationContext) == []


async def test_not_covered_is_honest_offers_team_and_is_logged_unanswered(bot):
    chat = bot.chat("nc")
    outcome = await chat.send("làm sổ đỏ online ở đâu vậy")
    assert outcome.verdict.kind == "not_covered"
    [reply] = outcome.replies
    assert reply.text.startswith("Mình chưa có hướng dẫn riêng cho việc này")
    assert any(a.startswith("human") for a in actions(reply))
    assert [a.split(":")[-1] for a in actions(reply) if a.startswith("pick:")] == list(outcome.verdict.choices)
    [logged] = await bot.rows(QuestionLog)
    assert logged.decision == "fallback" and logged.faq_id is None


def test_payloads_pack_unpack_and_refuse_bad_input():
    packed = AlsoAsked(12, "vneid.change_phone").pack()
    assert packed == "also:12:vneid.change_phone" and AlsoAsked.unpack(packed) == AlsoAsked(12, "vneid.change_phone")
    assert FacetChoice.unpack(FacetChoice("fee", "a.b").pack()) == FacetChoice("fee", "a.b")
    for bad in ("also:x:a.b", "also:1", "facet:fee:a.b", "also:1:a.b:c", "also::a.b", "also:1:" + "x" * 70):
        assert AlsoAsked.unpack(bad) is None, bad
    with pytest.raises(PayloadError):
        AlsoAsked(1, "x" * 70).pack()
    with pytest.raises(PayloadError):
        FacetChoice("fee", "a:b").pack()


async def test_contexts_are_grouped_writes_last_one_wins(bot):
    from bot.storage.group_commit import SaveContext

    [user] = [await bot.store.users.touch("web", "grouped")]
    before = bot.store.group.groups
    await bot.store.group.submit(SaveContext(user.id, "a.first", ()), SaveContext(user.id, "a.second", ("x.y",)))
    assert bot.store.group.groups == before + 1  # one transaction for both
    [row] = await bot.rows(ConversationContext)
    assert (row.faq_id, row.choices) == ("a.second", ["x.y"])
    loaded = await bot.conversation.dialogue.load(Turn(IncomingMessage("web", "grouped"), user))
    assert (loaded.faq_id, loaded.choices) == ("a.second", ("x.y",))


async def test_two_short_answers_are_both_given(database_url, knowledge):
    import datetime as _dt

    from knowledge.schema import Entry

    def entry(entry_id: str, title: str, answer: str) -> Entry:
        return Entry(id=entry_id, category="bot", title=title, questions=[f"{title} thế nào?", f"Cách {title.lower()}"],
                     answer=answer, source="Bài kiểm thử", reviewed=_dt.date(2026, 12, 6))

    fan = entry("test.fan", "Bật quạt trần phòng họp", "Bấm công tắc thứ hai cạnh cửa phòng họp.")
    light = entry("test.light", "Tắt đèn hành lang tầng ba", "Bấm công tắc ở đầu cầu thang tầng ba.")
    async with conversation(database_url, [fan, light]) as harness:
        outcome = await harness.chat("short").send("bật quạt trần phòng họp thế nào, còn tắt đèn hành lang tầng ba thì sao")
        assert (outcome.verdict.faq_id, outcome.verdict.also) == ("test.fan", ("test.light",))
        assert [r.kind for r in outcome.replies] == ["answer", "answer"]
        assert "công tắc thứ hai" in outcome.replies[0].text and "đầu cầu thang" in outcome.replies[1].text


def test_a_lone_letter_is_not_small_talk():
    """"bb" (bye bye) squeezed to "b" made any message with an HTML <b> tag a goodbye."""
    from handlers.smalltalk import SmallTalk

    detect = SmallTalk().detect
    assert detect("<b>con mèo</b> bỏ ăn") is None and detect("b") is None
    assert detect("bb").intent == "goodbye" and detect("chàooo").intent == "greeting"


async def test_a_new_question_with_where_is_not_read_as_a_followup(bot):
    """"... ở đâu" names a place facet, but a question about a subject the last answer never
    mentions is a question of its own, not the "where" part of the last answer."""
    chat = bot.chat("new-subject")
    await chat.send("đăng ký tạm trú online thế nào")
    outcome = await chat.send("đăng ký câu lạc bộ dưỡng sinh của phường ở đâu")
    assert outcome.verdict.faq_id != RESIDENCE and outcome.verdict.kind in ("fallback", "not_covered")
    where = await chat.send("làm ở đâu vậy?")  # a real follow-up still reads the context
    assert where.verdict.faq_id == RESIDENCE


# --- as citizens write: follow-ups, two questions, small talk (own examples, not the dev set) ---

FOLLOWUPS = [
    # (first message, follow-up, entry expected): the previous topic settles what the matcher
    # alone hesitates over, an age or a "gọi số nào" points at a related entry devoted to it
    ("kích hoạt tài khoản vneid thế nào", "không nhận được mã thì sao", "vneid.no_sms"),
    ("thanh toán lệ phí trực tuyến thế nào", "có được giảm không", "dvc.fee_reductions"),
    ("tra cứu hồ sơ ở đâu", "thế còn nhận kết quả thì sao", "dvc.e_results"),
    ("tài khoản vneid bị khóa rồi", "gọi số nào để mở", "vneid.hotline"),
    ("cấp đổi căn cước", "con 10 tuổi thì sao", "id.card_children"),
    ("bị lừa chuyển tiền rồi phải làm sao", "báo cho ai", "safety.report_scam"),
    ("học kỹ năng số ở đâu", "học xong có giấy chứng nhận không", "bdhvs.certificate"),  # names its title
    ("nộp hồ sơ dịch vụ công trực tuyến", "nộp rồi thì xem tiến độ ở đâu", "dvc.track"),
    ("đăng ký nhận tin của phường", "muốn hủy thì sao", "bot.unsubscribe"),
    # as citizens word them: in dialect, describing the person or the papers, asking only
    # "what if I don't", or saying what went wrong instead of asking
    ("học kỹ năng số ở đâu", "học xong có được cấp giấy chứng nhận không", "bdhvs.certificate"),
    ("xác thực khuôn mặt với ngân hàng làm sao", "không làm thì có sao không", "pay.biometric"),
    ("thẻ bhyt có trong vneid không", "ông bà già không xài smartphone thì sao", "vneid.health_insurance"),
    ("làm sao lấy lại mk vneid", "lỡ nhập sai nhiều lần bị khóa r", "vneid.locked"),
    ("vneid của tôi bị khóa rồi", "tự mở trên điện thoại được không hay phải đi", "vneid.locked"),
    ("nhà tôi mới sinh em bé muốn làm giấy khai sinh", "làm luôn bảo hiểm y tế cho bé được không",
     "dvc.birth_registration"),
    ("kích hoạt tài khoản vneid thế nào", "xong rồi thì đăng nhập dịch vụ công được chưa", "dvc.login"),
    ("cập nhật căn cước mới cho ngân hàng", "làm trên app được không", "pay.bank_ekyc_update"),
    # alone, the message points at another entry; read with the previous topic, only that topic fits
    ("đăng ký thường trú cho vợ về ở nhà chồng", "có cần chủ hộ ký tên không", "vneid.residence_register"),
    ("quét chip căn cước không được", "máy không có nfc thì sao", "vneid.nfc_face_fail"),
    ("xin phiếu lý lịch tư pháp số 2", "khác số 1 chỗ nào", "vneid.judicial_record"),
    ("tải vssid ở đâu", "đăng nhập lần đầu thế nào", "ins.vssid"),
    ("sổ sức khỏe điện tử", "không thấy dữ liệu khám bệnh thì sao", "health.e_health_book"),
    # ... unless it opens with "còn/thế": a new part of the topic, as the message alone says
    ("mức 1 với mức 2 khác nhau sao", "thế đăng ký mức 2 ở đâu", "vneid.register_level2"),
    ("kích hoạt tài khoản vneid thế nào", "còn passcode là gì vậy", "vneid.passcode"),
]


@pytest.mark.parametrize("first, followup, expected", FOLLOWUPS)
async def test_followups_move_within_the_topic(bot, first, followup, expected):
    chat = bot.chat("move")
    await chat.send(first)
    outcome = await chat.send(followup)
    assert (outcome.verdict.kind, outcome.verdict.faq_id) == ("answer", expected)


async def test_followups_in_chat_shorthand_get_the_facet(bot):
    """Without diacritics, with "bn", "z", "ko", urgency as a time question."""
    facets = bot.knowledge.kb.get("dvc.passport").facets
    chat = bot.chat("short")
    await chat.send("lam ho chieu online the nao")
    for message, facet in (("con le phi thi sao", "fee"), ("mất bn tiền z", "fee"),
                           ("di nuoc ngoai gap thi co lam nhanh duoc ko", "time"), ("can mang theo j", "documents")):
        outcome = await chat.send(message)
        assert outcome.verdict.faq_id == "dvc.passport", message
        assert facets[facet].strip() in outcome.replies[0].text, message


def test_followup_after_choices_reads_the_choice_it_is_about(knowledge):
    """Nothing was answered, only choices shown: the follow-up is about the choice that has the
    part it asks for, or the one it names, not always the first."""
    from bot.storage.context import DialogueContext
    from handlers.followup import FollowupReader, Move

    reader, matcher, kb = FollowupReader(), knowledge.matcher, knowledge.kb
    shown = DialogueContext(None, ("dvc.submit", "dvc.birth_registration", "vneid.what_is"))
    fee = reader.read("có mất phí không", shown, matcher, kb, matcher.match("có mất phí không"))
    assert (fee.move, fee.entry_id, fee.facet) == (Move.FACET, "dvc.birth_registration", "fee")
    elderly = reader.read("bà 80 tuổi rồi có cần đi không", DialogueContext(RESIDENCE), matcher, kb,
                          matcher.match("bà 80 tuổi rồi có cần đi không"))
    assert (elderly.move, elderly.facet) == (Move.FACET, "elderly")


TWO_QUESTIONS = [
    ("cách tải vneid. à còn nữa, kích hoạt tài khoản thế nào", "vneid.install", "vneid.activate"),
    ("lam ho chieu online can gi vs cho hoi tra cuu ho so o dau", "dvc.passport", "dvc.track"),
    ("học kỹ năng số ở đâu, học xong có được cấp chứng nhận không", "bdhvs.learn", "bdhvs.certificate"),
    ("làm căn cước cho con thế nào? và cho hỏi thêm đăng ký khai sinh online được không",
     "id.card_children", "dvc.birth_registration"),
    ("quen mat khau vneid lam sao? doi so dien thoai the nao?", "vneid.forgot_password", "vneid.change_phone"),
    ("tk vneid bị khóa thì sao\nvới lại passcode quên thì lấy lại thế nào", "vneid.locked", "vneid.passcode"),
    # a numbered or bulleted list, a "2 việc:" preface, a request that covers both, "... luôn"
    ("Cho mình hỏi 2 việc: 1. đổi số điện thoại vneid 2. quên passcode", "vneid.change_phone", "vneid.passcode"),
    ("1) làm sao tích hợp bằng lái vào vneid 2) đăng ký xe online thế nào",
     "vneid.driving_licence", "dvc.vehicle_registration"),
    ("- quên mật khẩu vneid\n- đăng nhập trên điện thoại mới", "vneid.forgot_password", "vneid.change_device"),
    ("tui muốn đăng ký khai sinh cho cháu và làm căn cước cho cháu luôn", "dvc.birth_registration", "id.card_children"),
    ("hướng dẫn em cài vneid với ạ, xong rồi đăng ký tài khoản mức 1 luôn", "vneid.install", "vneid.register_level1"),
]


@pytest.mark.parametrize("message, first, second", TWO_QUESTIONS)
async def test_two_questions_as_citizens_join_them(bot, message, first, second):
    outcome = await bot.chat("two-ways").send(message)
    assert (outcome.verdict.faq_id, outcome.verdict.also) == (first, (second,))


async def test_a_clause_with_only_a_procedure_verb_is_no_second_question(bot):
    """"... thì đăng ký thế nào?" names no topic of its own: one question, not two."""
    outcome = await bot.chat("verb").send("Tôi muốn nhận tin của phường mỗi khi có thông báo mới. Vậy thì đăng ký thế nào?")
    assert outcome.verdict.also == ()


async def test_a_story_before_the_question_is_not_a_second_question(bot):
    story = ("Hôm trước tôi ra phường làm giấy tờ, chờ cả buổi sáng mới tới lượt. Cán bộ bảo lần sau "
             "nộp hồ sơ online cho nhanh. Nộp hồ sơ trên cổng dịch vụ công thế nào?")
    outcome = await bot.chat("story").send(story)
    assert outcome.verdict.also == ()


MORE_SMALL_TALK = [
    ("sai rồi", "complaint"), ("không phải cái đó", "complaint"), ("tôi không hiểu", "complaint"),
    ("Có phải đang nói chuyện với người máy không vậy?", "identity"), ("đang chat với máy hả trời", "identity"),
    ("cho em hỏi chút", "greeting"), ("chúc mừng năm mới", "greeting"), ("tuyệt", "praise"),
    ("ủa", "ack"), ("rồi", "ack"), ("😂", "ack"), ("ko sao đâu", "ack"), ("thôi khỏi", "goodbye"),
    ("Cảm ơn cháu nhiều nha, bác làm theo được rồi", "thanks"), ("Dạ em cảm ơn ạ, em sẽ làm thử xem sao", "thanks"),
    ("thôi bác đi đón cháu đây, hôm nào hỏi tiếp nha", "goodbye"),
    ("trả lời gì mà dài dòng quá, tôi già rồi đọc không nổi", "complaint"),
]


async def test_more_small_talk_as_citizens_write_it(bot):
    from handlers.smalltalk import SmallTalk

    detect = SmallTalk().detect
    chat = bot.chat("chatty")
    for message, intent in MORE_SMALL_TALK:
        assert detect(message) is not None and detect(message).intent == intent, message
        outcome = await chat.send(message)
        assert outcome.verdict.kind == "smalltalk", message
    assert {q.decision for q in await bot.rows(QuestionLog)} == {"smalltalk"}


async def test_words_small_talk_only_alone_still_ask_in_a_question(bot):
    """"sai", "không hiểu", "muốn hỏi" are small talk only as the whole message."""
    chat = bot.chat("asks")
    for message, expected in (("nhập sai mật khẩu vneid nhiều lần bị khóa thì sao", "vneid.locked"),
                              ("tôi không hiểu cách kích hoạt tài khoản vneid", "vneid.activate")):
        outcome = await chat.send(message)
        assert (outcome.verdict.kind, outcome.verdict.faq_id) == ("answer", expected), message
    outcome = await chat.send("tôi muốn hỏi về thuế thu nhập cá nhân")
    assert outcome.verdict.kind != "smalltalk" and "tax.personal_income" in (
        outcome.verdict.faq_id, *outcome.verdict.choices)


async def test_followup_gets_the_part_whose_text_it_names(bot):
    """No cue word, but the words are those of one part of the last answer: that part."""
    where = bot.knowledge.kb.get("id.card_reissue").facets["where"].strip()
    chat = bot.chat("told")
    await chat.send("cấp đổi căn cước")
    outcome = await chat.send("làm ở công an xã được không")
    assert outcome.verdict.faq_id == "id.card_reissue" and where in outcome.replies[0].text
    again = await chat.send("thế còn làm căn cước cho con dưới 14 tuổi thì sao")  # another entry named: not a part
    assert again.verdict.faq_id == "id.card_children"
