"""Hand-off when things go wrong, through the real PTB Application and the fake Bot API:
team group unreachable, citizen gone, replies refused, internal errors, repeated presses,
team members talking among themselves, reminders and auto-close, HTML both ways."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
from sqlalchemy import func, select, update

from bot.storage.models import Feedback, Handoff, HandoffMessage, User
from tests.telegram_harness import FAST_CHAT, TEAM_DEFAULT, buttons, human, make_inserts_fail, running_bot

MEMBER = 555


@pytest.fixture
async def bot(database_url):
    async with running_bot(database_url, **FAST_CHAT) as harness:
        yield harness


async def rows(bot, model, *where):
    async with bot.store.sessions() as s:
        return list((await s.scalars(select(model).where(*where).order_by(model.id))).all())


async def open_thread(bot, user: int, question: str):
    """The citizen asks something the bot cannot answer and sends it to the team."""
    [fallback] = await bot.say(user, question)
    replies = await bot.press(user, fallback, human(fallback))
    return replies


async def team_post(bot, needle: str):
    return (await bot.fake.wait_for_sent(lambda s: needle in (s.plain_text or ""), chat_id=TEAM_DEFAULT))[-1]


async def quiet(seconds: float = 0.8) -> None:
    await asyncio.sleep(seconds)


# --- the team group cannot be reached -------------------------------------------------------------
@pytest.mark.parametrize("fault", ["bot removed", "unknown chat id", "upgraded to supergroup"])
async def test_unreachable_team_group_keeps_the_citizen_answered(database_url, fault, caplog):
    team_chats = "default:-100777" if fault == "unknown chat id" else None
    async with running_bot(database_url, **FAST_CHAT, **({"team_chats": team_chats} if team_chats else {})) as bot:
        if fault == "bot removed":
            bot.fake.block(TEAM_DEFAULT)
        elif fault == "upgraded to supergroup":
            bot.fake.migrate_group(TEAM_DEFAULT, -1009876)
        [sent] = await open_thread(bot, 1, "con mèo nhà tôi bỏ ăn hai hôm nay")
        assert "ghi nhận câu hỏi" in sent.plain_text and "đã chuyển" not in sent.plain_text.lower()
        [handoff] = await rows(bot, Handoff)
        assert handoff.team_chat_id == "" and handoff.state == "open"  # continues on the dashboard
        [ack] = await bot.say(1, "nhà tôi ở gần chợ")  # follow-ups are kept, not errors
        assert "Đã chuyển thêm" in ack.plain_text
        texts = [m.text for m in await rows(bot, HandoffMessage)]
        assert texts == ["con mèo nhà tôi bỏ ăn hai hôm nay", "nhà tôi ở gần chợ"]
        assert bot.fake.sent_to(TEAM_DEFAULT) == []
        problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("TEAM_CHATS" in p for p in problems)  # the operator is told what to fix
        if fault == "upgraded to supergroup":
            assert any("-1009876" in p for p in problems)


# --- the team reply cannot reach the citizen ---------------------------------------------------------
async def expire_delivery_leases(bot) -> None:
    """As if the redelivery lease had run out (time passing), so `redeliver` may try again."""
    async with bot.store.sessions.begin() as s:
        await s.execute(update(HandoffMessage).values(delivery_lease_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))


def attempts_to(bot, chat_id: int) -> int:
    return sum(1 for r in bot.fake.calls("sendMessage") if r.params.get("chat_id") == chat_id)


async def test_team_is_told_when_the_citizen_blocked_the_bot(bot):
    await open_thread(bot, 1, "con mèo nhà tôi bỏ ăn")
    post = await team_post(bot, "con mèo")
    bot.fake.block(1)
    notes = await bot.team_reply(TEAM_DEFAULT, MEMBER, post.message_id, "Bạn đưa mèo đi khám thú y nhé.")
    assert [n for n in notes if "không liên lạc được" in n.plain_text]
    assert not [n for n in notes if "Đã gửi" in n.plain_text]
    [reply] = await rows(bot, HandoffMessage, HandoffMessage.direction == "team")
    assert not reply.delivered and reply.delivery_error.startswith("recipient gone")
    [handoff] = await rows(bot, Handoff)
    [user] = await rows(bot, User, User.platform_id == "1")
    assert handoff.state == "closed" and not user.active
    await expire_delivery_leases(bot)
    tried = attempts_to(bot, 1)
    assert await bot.runtime.handoffs.redeliver() == 0
    assert attempts_to(bot, 1) == tried  # never retried


async def test_refused_team_reply_is_reported_and_not_retried_forever(bot):
    await open_thread(bot, 1, "con mèo nhà tôi bỏ ăn")
    post = await team_post(bot, "con mèo")
    bot.fake.fail_next("sendMessage", 400, "Bad Request: message is too long", chat_id=1)
    notes = await bot.team_reply(TEAM_DEFAULT, MEMBER, post.message_id, "Câu trả lời")
    [note] = [n for n in notes if "từ chối" in n.plain_text]
    assert "message is too long" in note.plain_text.lower()
    [reply] = await rows(bot, HandoffMessage, HandoffMessage.direction == "team")
    assert not reply.delivered and reply.delivery_error.startswith("rejected")
    await expire_delivery_leases(bot)
    tried = attempts_to(bot, 1)
    assert await bot.runtime.handoffs.redeliver() == 0
    assert attempts_to(bot, 1) == tried


# --- internal errors ------------------------------------------------------------------------------------
async def test_internal_errors_apologise_and_never_show_the_citizen_menu_to_the_team(bot):
    [answer] = await bot.say(1, "quên mật khẩu vneid")
    await make_inserts_fail(bot, "feedback")
    [sorry] = await bot.press(1, answer, [d for d in buttons(answer) if d.startswith("fb:up:")][0])
    assert "trục trặc" in sorry.plain_text and "chưa có câu trả lời" not in sorry.plain_text

    await open_thread(bot, 2, "con mèo nhà tôi bỏ ăn")
    post = await team_post(bot, "con mèo")
    await make_inserts_fail(bot, "handoff_messages", "NEW.direction = 'team'")
    [notice] = await bot.team_reply(TEAM_DEFAULT, MEMBER, post.message_id, "Bạn đưa mèo đi khám nhé.")
    assert "trục trặc" in notice.plain_text and "gửi lại" in notice.plain_text
    assert notice.reply_markup is None  # no citizen menu in the team group
    assert await rows(bot, Feedback) == []


# --- team members talking among themselves ---------------------------------------------------------------
async def test_bot_stays_out_of_conversations_between_team_members(bot):
    hello = bot.fake.member_sends_in_group(TEAM_DEFAULT, 601, "Chào cả nhóm")
    bot.fake.member_replies_in_group(TEAM_DEFAULT, 602, hello["message"]["message_id"], "Chào chị")
    await quiet()
    assert bot.fake.sent_to(TEAM_DEFAULT) == []
    # A reply to one of the bot's own messages that belongs to no thread gets a hint.
    await open_thread(bot, 1, "con mèo nhà tôi bỏ ăn")
    post = await team_post(bot, "con mèo")
    [relayed] = await bot.team_reply(TEAM_DEFAULT, MEMBER, post.message_id, "Bạn đưa mèo đi khám nhé.")
    assert "Đã gửi" in relayed.plain_text
    [hint] = await bot.team_reply(TEAM_DEFAULT, MEMBER, relayed.message_id, "ok")
    assert "Không tìm thấy câu hỏi" in hint.plain_text


# --- what "Gặp cán bộ" sends, one thread at a time ------------------------------------------------------------
async def test_menu_handoff_never_sends_an_old_answered_question(bot):
    await bot.say(1, "quên mật khẩu vneid")  # answered: not something to forward
    [menu] = await bot.say(1, "/menu")
    [ask] = await bot.press(1, menu, "human")
    assert "gõ câu hỏi cần gửi cho cán bộ" in ask.plain_text
    await quiet(0.3)
    assert bot.fake.sent_to(TEAM_DEFAULT) == []
    [sent] = await bot.say(1, "tôi muốn đổi tên trên thẻ căn cước")  # ask, then type
    assert "đã chuyển câu hỏi" in sent.plain_text
    post = await team_post(bot, "đổi tên")
    assert "Quên mật khẩu" not in post.plain_text and "quên mật khẩu" not in post.plain_text

    [again] = await bot.press(1, menu, "human")  # pressed again while the thread is open
    assert "đang chờ cán bộ trả lời" in again.plain_text
    [back] = await bot.press(1, again, "ho:leave")  # "Quay lại trợ lý"
    assert "quay lại trò chuyện với trợ lý" in back.plain_text
    [answer] = await bot.say(1, "quên mật khẩu vneid")  # the bot answers again
    assert "Quên mật khẩu VNeID" in answer.plain_text
    [fallback] = await bot.say(1, "con mèo nhà tôi bỏ ăn")
    [added] = await bot.press(1, fallback, human(fallback))  # a new question joins the open thread
    assert "chuyển thêm câu hỏi này vào yêu cầu" in added.plain_text
    await team_post(bot, "con mèo")
    assert len(await rows(bot, Handoff)) == 1


async def test_menu_handoff_sends_a_recent_unanswered_question(bot):
    await bot.say(1, "con mèo nhà tôi bỏ ăn")
    [menu] = await bot.say(1, "/menu")
    [sent] = await bot.press(1, menu, "human")
    assert "đã chuyển câu hỏi" in sent.plain_text
    await team_post(bot, "con mèo")


async def test_done_twice_notifies_the_citizen_once_and_removes_the_button(bot):
    await open_thread(bot, 1, "con mèo nhà tôi bỏ ăn")
    post = await team_post(bot, "con mèo")
    [handoff] = await rows(bot, Handoff)
    close = f"ho:close:{handoff.id}"
    bot.fake.user_presses(MEMBER, post.message_id, close, chat_id=TEAM_DEFAULT)
    await team_post(bot, "đánh dấu xử lý")
    markup = bot.fake.message(TEAM_DEFAULT, post.message_id).get("reply_markup") or {}
    remaining = [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]
    assert remaining == [f"ho:draft:{handoff.id}"]
    bot.fake.user_presses(556, post.message_id, close, chat_id=TEAM_DEFAULT, strict=False)  # an old client
    await team_post(bot, "đã được đóng trước đó")
    await quiet(0.3)
    assert sum("xử lý xong" in m.plain_text for m in bot.fake.sent_to(1)) == 1


# --- reminders and auto-close, through the group --------------------------------------------------------------
async def test_replying_to_a_reminder_reaches_the_citizen(bot):
    await open_thread(bot, 1, "đăng ký nuôi chó ở đâu")
    post = await team_post(bot, "nuôi chó")
    await bot.runtime.handoffs.remind_and_close(dt.timedelta(0), dt.timedelta(hours=1))
    reminder = bot.fake.sent_to(TEAM_DEFAULT)[-1]
    assert "chưa có ai trả lời" in reminder.plain_text
    assert reminder.reply_to_message_id == post.message_id  # quotes the question
    await bot.team_reply(TEAM_DEFAULT, MEMBER, reminder.message_id, "Bạn đến công an phường nhé.")
    await bot.fake.wait_for_sent(lambda s: "công an phường" in s.plain_text, chat_id=1)


async def test_auto_close_tells_the_citizen_and_the_team_once(bot):
    await open_thread(bot, 1, "đăng ký nuôi chó ở đâu")
    await team_post(bot, "nuôi chó")
    handoffs = bot.runtime.handoffs
    await handoffs.remind_and_close(dt.timedelta(hours=1), dt.timedelta(0))
    assert "đã được đóng vì một thời gian không có trao đổi" in bot.fake.sent_to(1)[-1].plain_text
    assert "tự động đóng" in bot.fake.sent_to(TEAM_DEFAULT)[-1].plain_text
    counts = (len(bot.fake.sent_to(1)), len(bot.fake.sent_to(TEAM_DEFAULT)))
    await handoffs.remind_and_close(dt.timedelta(hours=1), dt.timedelta(0))
    assert (len(bot.fake.sent_to(1)), len(bot.fake.sent_to(TEAM_DEFAULT))) == counts
    [handoff] = await rows(bot, Handoff)
    assert handoff.state == "closed"


# --- user text is shown literally, never as markup -------------------------------------------------------------
async def test_html_in_a_handoff_question_and_team_reply_is_shown_literally(bot):
    question = "<b>con mèo</b> & <i>chó</i> <script>alert(1)</script> bỏ ăn"
    await open_thread(bot, 1, question)
    post = await team_post(bot, "alert(1)")
    assert question in post.plain_text and post.parse_mode == "HTML"
    answer = "<b>ok</b> & <a href='https://x.invalid'>y</a>"
    await bot.team_reply(TEAM_DEFAULT, MEMBER, post.message_id, answer)
    [relayed] = await bot.fake.wait_for_sent(lambda s: "trả lời (mã #" in s.plain_text, chat_id=1)
    assert answer in relayed.plain_text and not relayed.message.get("entities")


async def test_one_thread_per_citizen_even_when_asked_twice_quickly(bot):
    [fallback] = await bot.say(1, "con mèo nhà tôi bỏ ăn")
    await bot.press(1, fallback, human(fallback))
    await bot.press(1, fallback, human(fallback))
    async with bot.store.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Handoff)) == 1


# --- a citizen on a channel with a messaging window (Zalo OA) -------------------------------------------------
async def test_team_reply_outside_the_citizens_window_waits_until_they_write_again(database_url):
    """Zalo lets the OA reply only for a while after the citizen last wrote: the team is told
    the answer is queued, and it goes out once the citizen writes again."""
    import re

    from tests.fakes.zalo_oa import FakeZaloOA
    from tests.helpers import serve_app

    async with FakeZaloOA() as zalo:
        zalo.add_user("z1")
        settings = dict(zalo_oa_app_id=zalo.app_id, zalo_oa_secret_key=zalo.oa_secret_key,
                        zalo_oa_app_secret=zalo.app_secret, zalo_oa_access_token=zalo.access_token,
                        zalo_oa_refresh_token=zalo.refresh_token, zalo_oa_api_base_url=zalo.api_base_url,
                        zalo_oa_oauth_base_url=zalo.oauth_base_url, zalo_oa_interactive_buttons=False)
        async with running_bot(database_url, **FAST_CHAT, **settings) as bot:
            from bot.web import create_app

            async with serve_app(create_app(bot.runtime)) as base:
                async def citizen_says(text: str) -> str:
                    before = len(zalo.sent_to("z1"))
                    status, _ = await zalo.deliver_webhook(base + "/zalo/webhook",
                                                           zalo.make_event("user_send_text", "z1", text))
                    assert status == 200
                    await zalo.wait_for_sent(before + 1, user_id="z1", timeout=10)
                    await asyncio.sleep(0.3)
                    # what the citizen sees: texts, template texts and button titles (choices are buttons)
                    return "\n".join(line for m in zalo.sent_to("z1")[before:]
                                     for line in [m.text or m.template_text or "", *(b["title"] for b in m.buttons)])

                fallback = await citizen_says("con mèo nhà tôi bỏ ăn")
                number = re.search(r"(\d+)\. Gửi câu hỏi cho cán bộ", fallback).group(1)
                assert "đã chuyển câu hỏi" in await citizen_says(number)
                post = await team_post(bot, "con mèo")
                zalo.set_last_interaction("z1", dt.datetime.now(dt.UTC) - dt.timedelta(days=8))
                notes = await bot.team_reply(TEAM_DEFAULT, MEMBER, post.message_id, "Bạn đưa mèo đi khám nhé.")
                assert any("chỉ cho phép gửi khi họ nhắn tin lại" in n.plain_text for n in notes)
                [reply] = await rows(bot, HandoffMessage, HandoffMessage.direction == "team")
                assert not reply.delivered and reply.delivery_error is None  # queued, not given up
                await citizen_says("cảm ơn, tôi chờ")  # the window opens again
                await expire_delivery_leases(bot)
                assert await bot.runtime.handoffs.redeliver() == 1
                assert sum("Bạn đưa mèo đi khám nhé." in text for text in zalo.texts_to("z1")) == 1  # once
                assert "Đã gửi câu trả lời" in bot.fake.sent_to(TEAM_DEFAULT)[-1].plain_text
