"""Webhook mode: updates posted to our aiohttp endpoint must carry the secret header."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import aiohttp
from sqlalchemy import func, select

from bot.channels.telegram import webhook_path
from bot.storage.models import QuestionLog, User
from bot.web import create_app
from tests.helpers import serve_app
from tests.telegram_harness import FAST_CHAT, TOKEN, running_bot

SECRET = "s3cret-Token_1"
CITIZEN = 4


async def count(bot, model) -> int:
    async with bot.store.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def test_webhook_requires_secret_and_processes_updates(database_url):
    async with running_bot(database_url, **FAST_CHAT, telegram_webhook_url="http://127.0.0.1:9",
                           telegram_webhook_secret=SECRET) as bot:
        assert bot.fake.webhook["url"].endswith(webhook_path(TOKEN))
        assert bot.fake.webhook["secret_token"] == SECRET
        async with serve_app(create_app(bot.runtime)) as base, aiohttp.ClientSession() as http:
            url = base + webhook_path(TOKEN)
            # Each refused post is a different, valid update: none of them may be processed.
            refused = {"missing": {}, "wrong": {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                       "prefix": {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]}}
            for user, headers in zip((1, 2, 3), refused.values()):
                update = bot.fake.user_sends_text(user, "quên mật khẩu vneid", queue=False)
                async with http.post(url, json=update, headers=headers) as resp:
                    assert resp.status == 403
            async with http.post(url, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 400
            good = bot.fake.user_sends_text(CITIZEN, "quên mật khẩu vneid", queue=False)
            async with http.post(base + "/telegram/webhook/guess", json=good,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 404
            await asyncio.sleep(1.0)  # long enough for a wrongly accepted update to be answered
            assert [bot.fake.sent_to(u) for u in (1, 2, 3, CITIZEN)] == [[], [], [], []]
            assert await count(bot, QuestionLog) == 0 and await count(bot, User) == 0

            async with http.post(url, json=good, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 200
            [reply] = await bot.fake.wait_for_sent(1, chat_id=CITIZEN)
            assert "Quên mật khẩu VNeID" in reply.plain_text
            async with http.post(url, json=good, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 200  # Telegram retrying the same update: answered once
            await asyncio.sleep(0.5)
            assert len(bot.fake.sent_to(CITIZEN)) == 1 and await count(bot, QuestionLog) == 1



async def test_a_full_backlog_answers_503_and_telegram_redelivers_later(database_url):
    """Updates acknowledged but not yet handled are lost on a crash: their number is bounded
    by TELEGRAM_WEBHOOK_BACKLOG; beyond it the webhook refuses, and Telegram delivers again."""
    async with running_bot(database_url, **FAST_CHAT, telegram_webhook_url="http://127.0.0.1:9",
                           telegram_webhook_secret=SECRET, telegram_webhook_backlog=5) as bot:
        citizens = list(range(20, 40))
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        # The Bot API fails for now, so every accepted update stays in hand (its reply retries).
        bot.fake.set_outage(math.inf, "5xx", methods=["sendMessage"])
        async with serve_app(create_app(bot.runtime)) as base, aiohttp.ClientSession() as http:
            url = base + webhook_path(TOKEN)
            updates = {uid: bot.fake.user_sends_text(uid, "quên mật khẩu vneid", queue=False) for uid in citizens}
            statuses = {}
            for uid, update in updates.items():
                async with http.post(url, json=update, headers=headers) as resp:
                    statuses[uid] = resp.status
            assert Counter(statuses.values()) == Counter({200: 5, 503: 15})
            assert bot.runtime.telegram.backlog == 5
            bot.fake.clear_outage()
            for uid in [u for u, status in statuses.items() if status == 200]:
                await bot.fake.wait_for_sent(1, chat_id=uid, timeout=30)
            # Telegram delivers the refused ones again, until they are accepted.
            for uid in [u for u, status in statuses.items() if status == 503]:
                for _ in range(300):
                    async with http.post(url, json=updates[uid], headers=headers) as resp:
                        if resp.status == 200:
                            break
                        assert resp.status == 503
                    await asyncio.sleep(0.1)
            for uid in citizens:
                await bot.fake.wait_for_sent(1, chat_id=uid, timeout=30)
            await asyncio.sleep(0.5)
            assert Counter(m.chat_id for m in bot.fake.sent if m.chat_id in citizens) == Counter(
                {uid: 1 for uid in citizens})
            assert bot.runtime.telegram.backlog == 0
