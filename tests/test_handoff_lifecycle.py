"""Hand-off reminders, auto-close, forum topics and redelivery of stored team replies."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.storage.models import Handoff, HandoffMessage
from tests.telegram_harness import FAST_CHAT, TEAM_DEFAULT, buttons, human, running_bot


async def open_thread(bot, user: int, text: str):
    await bot.say(user, text)
    await bot.press(user, bot.fake.sent_to(user)[-1], human(bot.fake.sent_to(user)[-1]))
    await bot.fake.wait_for_sent(lambda s: text in s.plain_text, chat_id=TEAM_DEFAULT)
    async with bot.store.sessions() as s:
        return (await s.scalars(select(Handoff).order_by(Handoff.id.desc()))).first()


async def test_unanswered_thread_is_raised_again_then_closed_when_idle(database_url):
    async with running_bot(database_url, **FAST_CHAT) as bot:
        handoff = await open_thread(bot, 1, "đăng ký nuôi chó ở đâu")
        handoffs = bot.runtime.handoffs
        await handoffs.remind_and_close(dt.timedelta(0), dt.timedelta(hours=1))
        reminder = bot.fake.sent_to(TEAM_DEFAULT)[-1]
        assert f"#{handoff.id} chưa có ai trả lời" in reminder.plain_text
        before = len(bot.fake.sent_to(TEAM_DEFAULT))
        await handoffs.remind_and_close(dt.timedelta(hours=1), dt.timedelta(hours=1))
        assert len(bot.fake.sent_to(TEAM_DEFAULT)) == before  # reminded once per period, not every tick
        await handoffs.remind_and_close(dt.timedelta(hours=1), dt.timedelta(0))
        async with bot.store.sessions() as s:
            assert (await s.get(Handoff, handoff.id)).state == "closed"
        # Back with the bot: the next question is matched again, not relayed.
        [reply] = await bot.say(1, "quên mật khẩu vneid")
        assert "Quên mật khẩu VNeID" in reply.plain_text


async def test_forum_group_gets_one_topic_per_thread(database_url):
    async with running_bot(database_url, **FAST_CHAT) as bot:
        bot.fake.add_group(TEAM_DEFAULT, "Tổ CNS chung", is_forum=True)
        first = await open_thread(bot, 1, "hỏi về nuôi ong")
        second = await open_thread(bot, 2, "hỏi về nuôi cá")
        assert first.thread_id and second.thread_id and first.thread_id != second.thread_id
        posts = [m for m in bot.fake.sent_to(TEAM_DEFAULT) if "Câu hỏi #" in m.plain_text]
        assert {p.message_thread_id for p in posts} == {first.thread_id, second.thread_id}
        assert {f"ho:close:{first.id}", f"ho:draft:{first.id}"} <= set(buttons(posts[0]))
        # A team member writing in the topic (without reply) still reaches the right citizen.
        before = len(bot.fake.sent_to(2))
        bot.fake.member_sends_in_group(TEAM_DEFAULT, 777, "Bạn liên hệ hội nông dân nhé", message_thread_id=second.thread_id)
        await bot.fake.wait_for_sent(before + 1, chat_id=2)
        assert "hội nông dân" in bot.fake.sent_to(2)[-1].plain_text


async def test_team_reply_survives_an_api_outage_and_is_sent_once(database_url):
    async with running_bot(database_url, **FAST_CHAT) as bot:
        await open_thread(bot, 1, "xin giấy phép quảng cáo")
        post = [m for m in bot.fake.sent_to(TEAM_DEFAULT) if "Câu hỏi #" in m.plain_text][-1]
        bot.fake.set_outage(float("inf"), mode="5xx", methods=["sendMessage"])
        bot.fake.member_replies_in_group(TEAM_DEFAULT, 555, post.message_id, "Bạn nộp tại bộ phận một cửa.")
        rows = []
        for _ in range(100):
            async with bot.store.sessions() as s:
                rows = (await s.scalars(select(HandoffMessage).where(HandoffMessage.direction == "team"))).all()
            if rows:
                break
            await asyncio.sleep(0.1)
        assert rows and not rows[0].delivered  # stored before any attempt to send
        await asyncio.sleep(1.0)
        # Another round of redelivery must not race the live attempt still retrying.
        assert await bot.runtime.handoffs.redeliver() == 0
        bot.fake.clear_outage()
        await bot.fake.wait_for_sent(lambda s: "một cửa" in s.plain_text, chat_id=1, timeout=20)
        await asyncio.sleep(0.5)
        assert sum("một cửa" in m.plain_text for m in bot.fake.sent_to(1)) == 1


async def test_reply_left_undelivered_by_a_dead_process_is_redelivered_once(database_url):
    async with running_bot(database_url, **FAST_CHAT) as bot:
        handoff = await open_thread(bot, 1, "xin giấy phép quảng cáo")
        # As if another process stored the team reply, then died before sending it.
        message_id = await bot.store.handoffs.add_message(handoff.id, "team", "Bạn nộp tại bộ phận một cửa.",
                                                         author="Lan", lease=dt.timedelta(seconds=-1))
        before = len(bot.fake.sent_to(TEAM_DEFAULT))
        assert await bot.runtime.handoffs.redeliver() == 1
        assert "một cửa" in bot.fake.sent_to(1)[-1].plain_text
        [note] = bot.fake.sent_to(TEAM_DEFAULT)[before:]  # the team learns it went out after all
        assert f"Đã gửi câu trả lời tới người dân (câu hỏi #{handoff.id})" in note.plain_text
        assert await bot.runtime.handoffs.redeliver() == 0  # exactly once
        async with bot.store.sessions() as s:
            assert (await s.get(HandoffMessage, message_id)).delivered
