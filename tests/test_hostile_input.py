"""Unauthenticated hostile input on every HTTP entry point gets a 4xx (or a polite reply), never a
500 and never a traceback in the log: deeply nested JSON, integers beyond Python's digit limit,
bytes that are not UTF-8, broken multipart forms, malformed Telegram updates, forged button ids."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from bot import json_body
from bot.channels.telegram import webhook_path
from bot.contracts import texts
from bot.web import create_app
from tests.dashboard_harness import running_site
from tests.helpers import serve_app
from tests.telegram_harness import TOKEN, running_bot

NESTED = b"[" * 20_000 + b"]" * 20_000  # fits the 64 KB body limit; far past the parser's recursion limit
LONG_INT = b'{"text": ' + b"9" * 5000 + b"}"
NOT_UTF8 = b'{"text": "\xff\xfe"}'
SECRET = "hostile-secret_1"


def no_tracebacks(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("raw", [NESTED, LONG_INT, NOT_UTF8, b"[]", b"", b"null"])
def test_parse_refuses_with_one_error_type(raw):
    with pytest.raises(json_body.BadJson):
        json_body.parse_object(raw)


async def test_web_chat_and_dashboard_login_refuse_hostile_bodies(database_url, caplog):
    caplog.set_level(logging.INFO)
    async with running_site(database_url) as site:
        client = await site.client()
        await client.get("/chat")
        for raw in (NESTED, LONG_INT, NOT_UTF8):
            async with client.http.post(site.url + "/chat/api/message", data=raw,
                                        headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 400
        page = await client.get("/dashboard/login")
        forms = [
            (b"username=\xff\xfe&password=x&csrf_token=" + page.csrf.encode(), "application/x-www-form-urlencoded"),
            (b"--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nx\r\n--b", "multipart/form-data; boundary=b"),
            (b"--b\r\nbroken", "multipart/form-data; boundary=b"),
            (b"username=a", "application/x-www-form-urlencoded; charset=no-such-charset"),
        ]
        for raw, content_type in forms:
            async with client.http.post(site.url + "/dashboard/login", data=raw,
                                        headers={"Content-Type": content_type}) as resp:
                assert 400 <= resp.status < 500, (raw[:30], resp.status)
    no_tracebacks(caplog)


async def test_telegram_webhook_refuses_malformed_updates_and_forged_buttons(database_url, caplog):
    caplog.set_level(logging.INFO)
    async with running_bot(database_url, telegram_webhook_url="http://127.0.0.1:9",
                           telegram_webhook_secret=SECRET) as bot:
        async with serve_app(create_app(bot.runtime)) as base, aiohttp.ClientSession() as http:
            url = base + webhook_path(TOKEN)
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
            bodies = [NESTED, b'{"update_id": ' + b"9" * 5000 + b"}", NOT_UTF8, b'{"update_id": "x"}',
                      b'{"update_id": 5, "message": "not an object"}',
                      b'{"update_id": 6, "message": {"message_id": 1, "date": "soon", "chat": 3}}']
            for raw in bodies:
                async with http.post(url, data=raw, headers=headers) as resp:
                    assert resp.status == 400, (raw[:40], resp.status)
            assert await bot.fake.deliver_webhook([bot.fake.user_sends_text(1, "quên mật khẩu vneid", queue=False)],
                                                  url=url) == [200]
            await bot.fake.wait_for_sent(1, chat_id=1)
            [answer] = bot.fake.sent_to(1)
            forged = bot.fake.user_presses(1, answer.message_id, "fb:up:99999999999999999999:vneid.forgot_password",
                                           queue=False, strict=False)  # forged: not one of its buttons
            assert await bot.fake.deliver_webhook([forged], url=url) == [200]
            await bot.fake.wait_for_sent(2, chat_id=1)
            assert texts.UNKNOWN_ACTION.split("\n")[0] in bot.fake.sent_to(1)[-1].plain_text
    no_tracebacks(caplog)
