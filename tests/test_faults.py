"""Faults: the Bot API down for 30 s, the database unreachable for a while."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.runtime import Runtime
from bot.settings import load_settings
from bot.storage.db import create_engine, session_factory
from bot.storage.models import QuestionLog
from handlers.messages import IncomingMessage
from tests.telegram_harness import running_bot


async def test_questions_during_a_30s_bot_api_outage_are_answered_after_recovery(tmp_path):
    async with running_bot(f"sqlite+aiosqlite:///{tmp_path}/o.sqlite3") as bot:
        bot.fake.set_outage(30, mode="5xx")  # every send fails with 502 for 30 s
        started = time.monotonic()
        for user, text in ((1, "quên mật khẩu vneid"), (2, "vneid là gì"), (3, "cổng dịch vụ công là gì")):
            bot.fake.user_sends_text(user, text)
        for user in (1, 2, 3):
            await bot.fake.wait_for_sent(1, chat_id=user, timeout=90)
        assert time.monotonic() - started >= 29  # nothing got through during the outage
        assert [len(bot.fake.sent_to(u)) for u in (1, 2, 3)] == [1, 1, 1]  # each answered once, none lost


async def test_database_outage_answers_from_kb_and_writes_logs_later(tmp_path):
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/d.sqlite3",
                             user_key_secret="x")
    runtime = await Runtime.open(settings)
    store = runtime.store
    healthy = store.sessions
    broken = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        store.sessions = session_factory(broken)  # connections now fail, as in an outage
        outcome = await runtime.conversation.respond(IncomingMessage("telegram", "5", text="quên mật khẩu vneid"))
        assert outcome.match.faq_id == "vneid.forgot_password"
        assert "Quên mật khẩu" in outcome.replies[0].text
        second = await runtime.conversation.respond(IncomingMessage("telegram", "6", text="vneid là gì, sdt 0912345678"))
        sub = await runtime.conversation.respond(IncomingMessage("telegram", "5", text="/dangky"))
        assert "chưa dùng được" in sub.replies[0].text  # needs the database: said plainly
        assert len(runtime.conversation.pending.items) == 2
        store.sessions = healthy  # the database is back
        third = await runtime.conversation.respond(IncomingMessage("telegram", "7", text="cổng dịch vụ công là gì"))
        async with store.sessions() as s:
            rows = (await s.scalars(select(QuestionLog).order_by(QuestionLog.created_at))).all()
        expected = [outcome.match, second.match, third.match]
        assert [(r.decision, r.faq_id) for r in rows] == [(m.decision.value, m.faq_id) for m in expected]
        assert "0912345678" not in rows[1].text and "[SĐT]" in rows[1].text
        assert not runtime.conversation.pending.items
    finally:
        await broken.dispose()
        await runtime.close()


def test_pending_queue_is_bounded_and_counts_drops():
    from bot.storage.pending import PendingLogs, PendingQuestion

    queue = PendingLogs(limit=3)
    for i in range(5):
        queue.add(PendingQuestion("telegram", "k", f"q{i}", f"q{i}", "answer", None, 1.0, []))
    assert [p.text for p in queue.items] == ["q2", "q3", "q4"] and queue.dropped == 2
    asyncio.run(asyncio.sleep(0))
