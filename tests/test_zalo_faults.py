"""The database really unavailable (SQLite locked by another connection, PostgreSQL behind a
TCP proxy that is cut: tests/test_faults.py) while citizens write on the Zalo OA (signed
webhooks) and the Zalo Bot Platform (getUpdates): each is answered once from the knowledge
base, webhooks are acknowledged at once, and the question logs are written after recovery."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.contracts import texts
from tests.fakes.zalo_bot import FakeZaloBot
from tests.fakes.zalo_oa import FakeZaloOA
from tests.test_faults import breakable_database, stored_questions
from tests.zalo_harness import WEBHOOK, oa_say, oa_settings, running

BOT_CHAT = "e4ea2cd5189df1c3a88c"
ASKED = {"101": "quên mật khẩu vneid", "102": "cổng dịch vụ công là gì",
         "103": "con mèo nhà tôi bỏ ăn, gọi tôi 0912 345 678"}
PHONE = "con mèo nhà tôi bỏ ăn, gọi tôi [SĐT]"


@pytest.mark.slow(6)
async def test_database_outage_zalo_citizens_answered_once_and_logged_after(database_url, caplog):
    caplog.set_level(logging.WARNING, logger="bot.storage.pending")
    async with breakable_database(database_url) as db, FakeZaloOA() as oa, FakeZaloBot(max_long_poll=0.2) as zbot:
        settings = oa_settings(oa, db.url, zalo_oa_interactive_buttons=False, zalo_bot_token=zbot.token,
                               zalo_bot_api_base_url=zbot.base_url, zalo_bot_rate_per_second=200.0)
        async with running(settings) as svc:
            store, channel, url = svc.store, svc.channel(), svc.base + WEBHOOK
            store.outage.retry_seconds = 2.0  # try the database again soon (5 s in production)
            oa.add_user("100")
            assert await oa_say(oa, svc, "100", "vneid là gì")

            await db.cut()
            events = {}
            for user, text in ASKED.items():
                events[user] = oa.make_event("user_send_text", user, text)
                started = time.monotonic()
                status, _ = await oa.deliver_webhook(url, events[user])
                acked = time.monotonic() - started
                assert status == 200 and acked < 1.0, f"acknowledged after {acked:.2f} s"  # not after the DB
            assert (await oa.deliver_webhook(url, oa.make_event("follow", "104")))[0] == 200
            zbot.user_sends_text(BOT_CHAT, "vneid là gì")
            for user in (*ASKED, "104"):  # SQLite: after its busy timeout; PostgreSQL: at once
                await oa.wait_for_sent(1, user_id=user, timeout=40)
            await zbot.wait_for_sent(1, chat_id=BOT_CHAT, timeout=40)
            assert (await oa.deliver_webhook(url, events["102"]))[0] == 200  # Zalo retries the event...
            await channel.idle()
            await svc.channel("zalobot").idle()

            [forgot], [portal], [unknown], [welcome] = (oa.texts_to(u) for u in (*ASKED, "104"))
            assert "Quên mật khẩu VNeID" in forgot and "Cổng Dịch vụ công" in portal  # ...answered once
            assert unknown.startswith(texts.FALLBACK) and welcome.startswith(texts.GREETING)
            [bot_answer] = zbot.texts_to(BOT_CHAT)
            assert "VNeID" in bot_answer and "Gõ" in bot_answer
            assert len(svc.runtime.conversation.pending.items) == 4  # the follow is not a question

            await db.restore()
            await asyncio.sleep(store.outage.retry_seconds)
            oa.add_user("105")
            assert await oa_say(oa, svc, "105", "thanh toán không dùng tiền mặt là gì")  # writes the queue
            assert not svc.runtime.conversation.pending.items

    rows = await stored_questions(database_url)
    first, *queued, last = rows
    assert (first.text, last.text) == ("vneid là gì", "thanh toán không dùng tiền mặt là gì")
    assert sorted((r.channel, r.text) for r in queued) == sorted(
        [("zalo", "quên mật khẩu vneid"), ("zalo", "cổng dịch vụ công là gì"), ("zalo", PHONE),
         ("zalobot", "vneid là gì")])
    by_text = {r.text: r for r in queued}
    assert by_text["quên mật khẩu vneid"].faq_id == "vneid.forgot_password"
    assert by_text[PHONE].decision == "fallback" and "[SĐT]" in by_text[PHONE].normalized
    assert len({r.user_key for r in rows}) == 6 and all(len(r.user_key) == 32 for r in rows)
    assert any("wrote 4 question logs" in r.getMessage() for r in caplog.records)
