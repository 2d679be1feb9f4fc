"""Whole conversations through the real PTB Application against the fake Bot API, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.storage.models import Feedback, Handoff, QuestionLog, Subscription, User
from tests.telegram_harness import ADMIN, FAST_CHAT, TEAM_A, TEAM_DEFAULT, buttons, human, running_bot


@pytest.fixture
async def bot(database_url):
    async with running_bot(database_url, **FAST_CHAT) as harness:
        yield harness


async def rows(harness, model, *where):
    async with harness.store.sessions() as s:
        return (await s.scalars(select(model).where(*where))).all()


async def test_commands_registered_at_startup(bot):
    names = [c["command"] for c in bot.fake.commands_for()]
    for name in ("start", "menu", "help", "dangky", "huydangky", "quyenriengtu", "xoadulieu"):
        assert name in names


async def test_start_menu_category_question_answer_feedback(bot):
    [greeting] = await bot.say(1, "/start")
    assert "Xin chào" in greeting.plain_text
    assert {"cat:vneid", "cat:dvc", "cat:payments", "cat:safety", "cat:bdhvs", "human"} <= set(buttons(greeting))

    [listing] = await bot.press(1, greeting, "cat:vneid")
    assert "faq:vneid.forgot_password" in buttons(listing)

    [answer] = await bot.press(1, listing, "faq:vneid.forgot_password")
    assert "Quên mật khẩu VNeID" in answer.plain_text

    [reply] = await bot.say(1, "quen mat khau vneid thi lam the nao")
    assert reply.parse_mode == "HTML"
    assert "Câu trả lời có hữu ích không?" in reply.plain_text
    feedback = [d for d in buttons(reply) if d.startswith("fb:up:")]
    assert feedback and feedback[0].endswith(":vneid.forgot_password")
    assert any(b.get("url", "").startswith("https://") for row in reply.reply_markup["inline_keyboard"] for b in row)

    [thanks] = await bot.press(1, reply, feedback[0])
    assert "Cảm ơn" in thanks.plain_text
    [logged] = await rows(bot, QuestionLog)
    assert logged.decision == "answer" and logged.faq_id == "vneid.forgot_password"
    assert logged.outcome == "helpful" and logged.channel == "telegram"
    assert logged.user_key != "1" and len(logged.user_key) == 32  # pseudonymous
    [vote] = await rows(bot, Feedback)
    assert vote.helpful and vote.question_id == logged.id


async def test_suggestion_pick_is_recorded(bot):
    [reply] = await bot.say(1, "mật khẩu")
    assert "Có phải bạn muốn hỏi" in reply.plain_text
    picks = [d for d in buttons(reply) if d.startswith("pick:")]
    assert picks and any(d.startswith("no:") for d in buttons(reply))
    [answer] = await bot.press(1, reply, picks[0])
    chosen = picks[0].rsplit(":", 1)[1]
    [logged] = await rows(bot, QuestionLog)
    assert logged.decision == "suggest" and logged.outcome == "picked" and logged.outcome_faq_id == chosen
    assert bot.runtime.knowledge.kb.get(chosen).title in answer.plain_text


async def test_fallback_handoff_team_reply_relayed_and_closed(bot):
    await bot.say(2, "/dangky")
    # choose ward A so the question goes to team A
    ward_msg = bot.fake.sent_to(2)[-1]
    await bot.press(2, ward_msg, "sub:w:phuong-a")

    [first] = await bot.say(2, "con mèo nhà tôi bỏ ăn hai hôm nay")
    assert "chưa có câu trả lời" in first.plain_text and human(first).startswith("human:")
    second = await bot.say(2, "cách trồng hoa hồng trong chậu", expect=2)
    assert any("gửi câu hỏi cho cán bộ" in m.plain_text for m in second)  # offered after two fallbacks

    before_group = len(bot.fake.sent_to(TEAM_A))
    [sent] = await bot.press(2, second[-1], human(second[-1]))
    assert "Tổ công nghệ số cộng đồng" in sent.plain_text
    await bot.fake.wait_for_sent(before_group + 1, chat_id=TEAM_A)
    post = bot.fake.sent_to(TEAM_A)[-1]
    assert "hoa hồng" in post.plain_text and "Phường A" in post.plain_text
    assert "User2" not in post.plain_text  # no name or id of the citizen in the group
    [handoff] = await rows(bot, Handoff)
    assert handoff.state == "open" and handoff.team_chat_id == str(TEAM_A)

    # Follow-up while open goes to the team, not to the matcher.
    [ack] = await bot.say(2, "nhà tôi ở gần chợ")
    assert "Đã chuyển thêm" in ack.plain_text
    await bot.fake.wait_for_sent(lambda s: "bổ sung" in s.plain_text, chat_id=TEAM_A)

    before_citizen = len(bot.fake.sent_to(2))
    note = await bot.team_reply(TEAM_A, 555, post.message_id, "Bạn tưới nước vừa đủ, để nơi có nắng nhé.")
    assert any("Đã gửi câu trả lời" in m.plain_text for m in note)
    await bot.fake.wait_for_sent(before_citizen + 1, chat_id=2)
    relayed = bot.fake.sent_to(2)[-1]
    assert "Cán bộ Tổ công nghệ số cộng đồng trả lời" in relayed.plain_text
    assert "tưới nước" in relayed.plain_text
    [handoff] = await rows(bot, Handoff)
    assert handoff.state == "answered" and "telegram:555" in handoff.answered_by
    question = (await rows(bot, QuestionLog, QuestionLog.id == handoff.question_id))[0]
    assert question.outcome == "answered_by_person"

    before = len(bot.fake.sent_to(TEAM_A))
    bot.fake.user_presses(555, post.message_id, f"ho:close:{handoff.id}", chat_id=TEAM_A)
    await bot.fake.wait_for_sent(before + 1, chat_id=TEAM_A)
    [handoff] = await rows(bot, Handoff)
    assert handoff.state == "closed"
    [user] = await rows(bot, User, User.platform_id == "2")
    assert user.state == ""


async def test_team_member_can_draft_faq_from_answered_thread(bot):
    await bot.say(3, "làm sao xin giấy phép karaoke")
    await bot.say(3, "giấy phép karaoke")
    msgs = bot.fake.sent_to(3)
    await bot.press(3, msgs[-1], human(msgs[-1]))
    await bot.fake.wait_for_sent(1, chat_id=TEAM_DEFAULT)
    post = bot.fake.sent_to(TEAM_DEFAULT)[-1]
    await bot.team_reply(TEAM_DEFAULT, 556, post.message_id, "Liên hệ bộ phận một cửa phường để được hướng dẫn.")
    before = len(bot.fake.sent_to(TEAM_DEFAULT))
    bot.fake.user_presses(556, post.message_id, buttons(post) and [d for d in buttons(post) if "draft" in d][0],
                          chat_id=TEAM_DEFAULT)
    await bot.fake.wait_for_sent(before + 1, chat_id=TEAM_DEFAULT)
    assert "bản nháp" in bot.fake.sent_to(TEAM_DEFAULT)[-1].plain_text
    from bot.storage.models import FaqDraft

    [draft] = await rows(bot, FaqDraft)
    assert "karaoke" in draft.question and "một cửa" in draft.answer


async def test_subscribe_then_stop_word(bot):
    [ward] = await bot.say(1, "/dangky")
    assert set(buttons(ward)) == {"sub:w:phuong-a", "sub:w:phuong-b"}
    [topics] = await bot.press(1, ward, "sub:w:phuong-b")
    [topics] = await bot.press(1, topics, "sub:t:safety")
    assert "✅" in buttons(topics)["sub:t:safety"]
    [done] = await bot.press(1, topics, "sub:done")
    assert "Phường B" in done.plain_text and "An toàn trên mạng" in done.plain_text
    [sub] = await rows(bot, Subscription)
    assert sub.active and sub.ward == "phuong-b" and sub.topics == ["safety"]
    [stopped] = await bot.say(1, "Dừng")
    assert "hủy nhận tin" in stopped.plain_text
    [sub] = await rows(bot, Subscription)
    assert not sub.active
    [again] = await bot.say(1, "/huydangky")
    assert "chưa đăng ký" in again.plain_text


async def test_blocked_user_is_marked_inactive_and_unsubscribed(bot):
    ward = (await bot.say(1, "/dangky"))[0]
    topics = (await bot.press(1, ward, "sub:w:phuong-a"))[0]
    await bot.press(1, topics, "sub:done")
    bot.fake.user_blocks_bot(1)
    for _ in range(40):
        [user] = await rows(bot, User, User.platform_id == "1")
        if not user.active:
            break
        import asyncio

        await asyncio.sleep(0.1)
    assert not user.active
    [sub] = await rows(bot, Subscription)
    assert not sub.active


async def test_flood_control_sends_one_notice(database_url):
    async with running_bot(database_url, **FAST_CHAT, flood_limit_per_minute=3) as bot:
        for i in range(3):
            await bot.say(1, f"vneid là gì {i}")
        [notice] = await bot.say(1, "vneid là gì nữa")
        assert "hơi nhanh" in notice.plain_text
        before = len(bot.fake.sent_to(1))
        bot.fake.user_sends_text(1, "lại nữa")
        import asyncio

        await asyncio.sleep(1.0)
        assert len(bot.fake.sent_to(1)) == before  # silent after the one notice


async def test_non_text_gets_polite_reply(bot):
    before = len(bot.fake.sent_to(1))
    bot.fake.user_sends_sticker(1)
    await bot.fake.wait_for_sent(before + 1, chat_id=1)
    assert "gõ câu hỏi" in bot.fake.sent_to(1)[-1].plain_text
    bot.fake.user_sends_photo(1)
    await bot.fake.wait_for_sent(before + 2, chat_id=1)
    assert "gõ câu hỏi" in bot.fake.sent_to(1)[-1].plain_text


async def test_personal_data_is_redacted_before_the_question_is_logged(bot):
    # (HTML typed by users is covered where it is echoed: tests/test_telegram_handoff_failures.py)
    text = "quên mật khẩu vneid, sđt 0912.345.678, email tran.b@yahoo.com, cccd 001 203 004 567"
    await bot.say(1, text)
    [logged] = await rows(bot, QuestionLog)
    for secret in ("0912", "345", "tran", "yahoo", "001", "567"):
        assert secret not in logged.text and secret not in logged.normalized
    for tag in ("[SĐT]", "[EMAIL]", "[SỐ GIẤY TỜ]"):
        assert tag in logged.text and tag in logged.normalized
    assert logged.normalized.startswith("quên mật khẩu vneid")


async def test_help_menu_voice_and_unsubscribe(bot):
    [help_] = await bot.say(1, "/help")
    assert bot.runtime.knowledge.kb.get("bot.help").title in help_.plain_text
    [menu] = await bot.say(1, "/menu")
    assert "chủ đề nào" in menu.plain_text and {"cat:vneid", "human"} <= set(buttons(menu))
    before = len(bot.fake.sent_to(1))
    bot.fake.user_sends_voice(1)
    [voice] = (await bot.fake.wait_for_sent(before + 1, chat_id=1))[before:]
    assert "gõ câu hỏi" in voice.plain_text
    [ward] = await bot.say(1, "/dangky")
    [topics] = await bot.press(1, ward, "sub:w:phuong-a")
    await bot.press(1, topics, "sub:done")
    [sub] = await rows(bot, Subscription)
    assert sub.active
    [done] = await bot.say(1, "/huydangky")
    assert "Bạn đã hủy nhận tin" in done.plain_text
    [sub] = await rows(bot, Subscription)
    assert not sub.active


async def test_entries_with_long_ids_still_get_working_buttons(bot):
    """Ids longer than fit in 64-byte callback data (the dashboard allows them) travel hashed."""
    live = bot.runtime.knowledge
    base = live.kb.get("vneid.forgot_password")
    long_id = "vneid.huong_dan_nuoi_ong_mat_tai_phuong_cho_ho_gia_dinh_moi_dang_ky"
    entry = base.model_copy(update={
        "id": long_id, "title": "Nuôi ong mật tại phường", "questions": ["nuôi ong mật tại phường cần thủ tục gì"],
        "keywords": ["nuôi ong mật"], "related": [base.id]})
    live.replace(live.kb.with_entries([entry]))
    base_related = base.model_copy(update={"related": [long_id]})
    live.replace(live.kb.with_entries([base_related]))
    [reply] = await bot.say(1, "nuôi ong mật tại phường cần thủ tục gì")
    assert "Nuôi ong mật" in reply.plain_text
    assert all(len(d.encode()) <= 64 for d in buttons(reply))
    up = [d for d in buttons(reply) if d.startswith("fb:up:")][0]
    [thanks] = await bot.press(1, reply, up)
    assert "Cảm ơn" in thanks.plain_text
    [vote] = await rows(bot, Feedback)
    assert vote.faq_id == long_id
    [other] = await bot.press(1, reply, f"faq:{base.id}")
    hashed = [d for d in buttons(other) if d.startswith("faq:~")]  # related entry with the long id
    [again] = await bot.press(1, other, hashed[0])
    assert "Nuôi ong mật" in again.plain_text


async def test_staff_today_counts_start_at_midnight_in_vietnam(bot):
    import datetime as dt

    from bot.localtime import VN_TZ

    midnight = dt.datetime.now(VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    async with bot.store.sessions.begin() as s:
        for when in (midnight - dt.timedelta(minutes=1), midnight + dt.timedelta(seconds=1)):
            s.add(QuestionLog(channel="telegram", user_key="k" * 32, text="x", normalized="x", decision="fallback",
                              score=0.0, alternatives=[], created_at=when.astimezone(dt.UTC)))
    [stats] = await bot.say(ADMIN, "/thongke")
    assert "Hôm nay: 1 câu hỏi" in stats.plain_text and "7 ngày qua: 2 câu hỏi" in stats.plain_text


async def test_replies_are_split_by_utf16_length(bot):
    from bot.contracts.messages import Reply

    long = "\n".join("😀" * 100 for _ in range(40))  # 4,000 characters, 8,000 UTF-16 units
    await bot.runtime.channels.send("telegram", "1", Reply(long))
    parts = bot.fake.sent_to(1)
    assert len(parts) >= 2 and "".join(p.plain_text for p in parts).count("😀") == 4000


async def test_long_reply_is_split_under_limit(bot):
    from bot.contracts.messages import Reply

    long = "\n".join(f"Dòng {i}: " + "chữ " * 30 for i in range(80))
    await bot.runtime.channels.send("telegram", "1", Reply(long))
    parts = bot.fake.sent_to(1)
    assert len(parts) >= 2 and all(len(p.plain_text) <= 4096 for p in parts)
    assert " ".join(" ".join(p.plain_text for p in parts).split()) == " ".join(long.split())


async def test_delete_my_data(bot):
    await bot.say(1, "quên mật khẩu vneid")
    [confirm] = await bot.say(1, "/xoadulieu")
    assert {"del:yes", "del:no"} == set(buttons(confirm))
    [done] = await bot.press(1, confirm, "del:yes")
    assert "Đã xóa" in done.plain_text
    assert await rows(bot, QuestionLog) == []
    assert await rows(bot, User) == []


async def test_privacy_explains_storage(bot):
    [reply] = await bot.say(1, "/quyenriengtu")
    assert "365 ngày" in reply.plain_text and "/xoadulieu" in reply.plain_text


async def test_staff_commands_need_a_staff_role(bot):
    [denied] = await bot.say(1, "/thongke")
    assert "chỉ dành cho cán bộ" in denied.plain_text
    await bot.say(2, "thời tiết hôm nay thế nào")
    await bot.say(2, "thời tiết ngày mai thế nào")
    [stats] = await bot.say(ADMIN, "/thongke")
    assert "2 câu hỏi" in stats.plain_text
    [unanswered] = await bot.say(ADMIN, "/chuatraloi")
    assert "thời tiết" in unanswered.plain_text
    [denied] = await bot.say(1, "/staff add telegram:1 admin")
    assert "chỉ dành cho cán bộ" in denied.plain_text
    [done] = await bot.say(ADMIN, "/staff add telegram:1 staff")
    assert "Đã cập nhật" in done.plain_text
    [allowed] = await bot.say(1, "/thongke")
    assert "Thống kê" in allowed.plain_text


async def test_forged_team_callback_from_other_chat_is_ignored(bot):
    await bot.say(3, "giấy phép karaoke")
    await bot.press(3, bot.fake.sent_to(3)[-1], human(bot.fake.sent_to(3)[-1]))
    [handoff] = await rows(bot, Handoff)
    # A citizen pressing a forged close button in a private chat cannot close the thread.
    bot.fake.user_presses(3, bot.fake.sent_to(3)[-1].message_id, f"ho:close:{handoff.id}", strict=False)
    import asyncio

    await asyncio.sleep(0.6)
    [handoff] = await rows(bot, Handoff)
    assert handoff.state == "open"
    async with bot.store.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Handoff)) == 1
