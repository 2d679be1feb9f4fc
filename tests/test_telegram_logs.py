"""Logs carry no personal data, even at LOG_LEVEL=DEBUG: a whole conversation, a hand-off
and some failures are logged, and none of the citizen's words, phone number, Telegram id
or the bot token appear."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging

import pytest

from bot.ops.logs import NOISY, configure
from tests.telegram_harness import FAST_CHAT, TEAM_DEFAULT, TOKEN, human, make_inserts_fail, running_bot

CITIZEN = 734562918
PHONE = "0912 345 678"


@contextlib.contextmanager
def captured_logs(fmt: str):
    """Configure logging as `python -m bot` does with LOG_LEVEL=DEBUG; yield the output."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers), {name: logging.getLogger(name).level for name in NOISY}
    output = io.StringIO()
    configure("DEBUG", fmt)
    root.handlers[0].setStream(output)  # type: ignore[attr-defined]
    try:
        yield output
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_debug_logs_hold_no_personal_data_nor_the_token(database_url, fmt):
    question = "con mèo nhà tôi bỏ ăn, gọi tôi số " + PHONE
    with captured_logs(fmt) as output:
        async with running_bot(database_url, **FAST_CHAT) as bot:
            bot.fake.add_private_chat(CITIZEN, first_name="Lan")
            [fallback] = await bot.say(CITIZEN, question)
            await bot.press(CITIZEN, fallback, human(fallback))
            post = (await bot.fake.wait_for_sent(lambda s: "con mèo" in s.plain_text, chat_id=TEAM_DEFAULT))[0]
            await bot.team_reply(TEAM_DEFAULT, 555, post.message_id, f"Cán bộ sẽ gọi lại số {PHONE} chiều nay")
            await bot.fake.wait_for_sent(lambda s: "chiều nay" in s.plain_text, chat_id=CITIZEN)
            await bot.press(CITIZEN, bot.fake.sent_to(CITIZEN)[-1], "ho:leave")
            bot.fake.fail_next("sendMessage", 400, "Bad Request: chat not found", chat_id=CITIZEN)
            bot.fake.user_sends_text(CITIZEN, "vneid là gì, sđt " + PHONE)  # its reply fails: logged
            for _ in range(100):
                if any(r.status == 400 and r.params.get("chat_id") == CITIZEN for r in bot.fake.calls("sendMessage")):
                    break
                await asyncio.sleep(0.05)
            await make_inserts_fail(bot, "question_log")  # a database error with the text in the INSERT
            [answered] = await bot.say(CITIZEN, "hộ chiếu làm ở đâu, gọi " + PHONE)
            assert "trục trặc" not in answered.plain_text  # a refused log row fails alone: still answered
    logged = output.getvalue()
    assert "DEBUG" in logged and "telegram: update" in logged  # DEBUG logging really was on
    assert "reply to user " in logged and "not sent" in logged  # the failed reply was logged...
    assert "question log not stored (refused by the database" in logged  # ...and the database error too
    for secret in (PHONE, PHONE.replace(" ", ""), "345 678", "con mèo", "bỏ ăn", "chiều nay", "hộ chiếu",
                   str(CITIZEN), TOKEN, TOKEN.split(":")[1]):
        assert secret not in logged, secret
