"""Webhook mode: updates posted to our aiohttp endpoint must carry the secret header."""

from __future__ import annotations

import aiohttp

from bot.channels.telegram import webhook_path
from bot.web import create_app
from tests.helpers import serve_app
from tests.telegram_harness import TOKEN, running_bot

SECRET = "s3cret-Token_1"


async def test_webhook_requires_secret_and_processes_updates(database_url):
    async with running_bot(database_url, telegram_webhook_url="http://127.0.0.1:9",
                           telegram_webhook_secret=SECRET) as bot:
        assert bot.fake.webhook["url"].endswith(webhook_path(TOKEN))
        assert bot.fake.webhook["secret_token"] == SECRET
        async with serve_app(create_app(bot.runtime)) as base:
            url = base + webhook_path(TOKEN)
            update = bot.fake.user_sends_text(1, "quên mật khẩu vneid", queue=False)
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                    async with http.post(url, json=update, headers=headers) as resp:
                        assert resp.status == 403
                async with http.post(url, data=b"{not json", headers={
                        "X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                    assert resp.status == 400
                assert bot.fake.sent_to(1) == []  # nothing processed
                async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                    assert resp.status == 200
            [reply] = await bot.fake.wait_for_sent(1, chat_id=1)
            assert "Quên mật khẩu VNeID" in reply.plain_text
            async with aiohttp.ClientSession() as http:
                async with http.post(base + "/telegram/webhook/guess", json=update,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                    assert resp.status == 404
