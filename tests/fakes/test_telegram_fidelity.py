"""Fidelity of tests/fakes/telegram_api.py to the documented Bot API (see the platform notes),
checked with a REAL python-telegram-bot client: the error envelopes and descriptions, limits
counted the way Telegram counts them, flood control (429 with retry_after), getUpdates offsets
and webhooks. What the fake merely helps with (outages, waits, updates it builds) is exercised by
the product tests that run on it; only what must match the real API is pinned here."""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter

from tests.fakes.telegram_api import FakeTelegram, parse_html
from tests.helpers import serve_app

TOKEN = "123456:TEST-token"
USER = 4242


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN) as server:
        server.add_private_chat(USER, first_name="Lan")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram):
    async with fake.make_bot() as client:  # a real telegram.Bot (verify=False requests only)
        yield client


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(text, callback_data=data)] for text, data in pairs])


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB deprecation notice about int -> timedelta
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def test_envelopes_request_encoding_and_message_shape(fake: FakeTelegram, bot: telegram.Bot) -> None:
    """Error envelopes as the Bot API writes them; PTB's form-encoded requests understood; a sent
    message comes back in the shape PTB parses (entities in UTF-16 offsets, keyboard kept)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.base_url}999:WRONG/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{fake.base_url}{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "test_bot")
    markup = keyboard(("Có", "yes"), ("Không", "no"))
    msg = await bot.send_message(USER, "<b>Xin chào</b> &lt;Lan&gt; 👋", parse_mode="HTML", reply_markup=markup)
    assert msg.text == "Xin chào <Lan> 👋" and msg.reply_markup == markup
    assert msg.entities[0].type == "bold" and (msg.entities[0].offset, msg.entities[0].length) == (0, 8)
    assert msg.from_user.id == 123456 and msg.chat.id == USER
    call = fake.calls("sendMessage")[0]
    assert call.content_type == "application/x-www-form-urlencoded"  # what PTB 22 really sends
    assert call.params["reply_markup"] == {"inline_keyboard": [[{"text": "Có", "callback_data": "yes"}],
                                                               [{"text": "Không", "callback_data": "no"}]]}


@pytest.mark.parametrize(("html", "detail"), [
    ("a < b", 'unsupported start tag "" at byte offset 2'),
    ("<b>bold", "can't find end tag corresponding to start tag b"),
    ("Tom & Jerry", 'unescaped "&"'),
])
async def test_bad_html_is_refused_like_telegram(fake: FakeTelegram, bot: telegram.Bot, html: str, detail: str) -> None:
    with pytest.raises(BadRequest) as err:
        await bot.send_message(USER, html, parse_mode="HTML")
    assert err.value.message.startswith("Can't parse entities: ")  # PTB strips "Bad Request: "
    assert detail.lower() in err.value.message.lower()
    assert fake.sent == [] and fake.requests[-1].description.startswith("Bad Request: can't parse entities: ")
    assert parse_html('<a href="https://vneid.gov.vn">VNeID</a>') == (
        "VNeID", [{"type": "text_link", "offset": 0, "length": 5, "url": "https://vneid.gov.vn"}])


async def test_limits_counted_as_telegram_counts_them(fake: FakeTelegram, bot: telegram.Bot) -> None:
    """4096 characters after entity parsing; callback_data 64 UTF-8 bytes (PTB does not check)."""
    await bot.send_message(USER, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "a" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")
    await bot.send_message(USER, "ok", reply_markup=keyboard(("A", "x" * 64)))
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(USER, "too long", reply_markup=keyboard(("A", "ệ" * 22)))  # 66 bytes
    assert fake.requests[-1].description == "Bad Request: BUTTON_DATA_INVALID"
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Start", "Upper case is not allowed")])
    assert len(fake.sent) == 2


async def test_unknown_and_blocked_chats(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(777, "hi")
    update = fake.user_blocks_bot(USER)
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")
    assert fake.requests[-1].response["error_code"] == 403
    (parsed,) = await bot.get_updates()
    assert parsed.my_chat_member.new_chat_member.status == "kicked"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_429_with_retry_after_and_5xx(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(USER, "hi")
    assert retry_seconds(err.value) == 7
    assert fake.requests[-1].response == {"ok": False, "error_code": 429,
                                          "description": "Too Many Requests: retry after 7",
                                          "parameters": {"retry_after": 7}}
    fake.enforce_rate_limit(per_chat_per_second=1, burst=2)  # the fake's own flood control
    await bot.send_message(USER, "1")
    await bot.send_message(USER, "2")
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(USER, "3")
    assert 1 <= retry_seconds(err.value) <= 2 and fake.texts_to(USER) == ["1", "2"]
    fake.fail_next("getMe", 502)  # the front-end's HTML error page, not JSON
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.get_me()


async def test_callback_answer_and_edit_errors(fake: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(USER, "Bạn cần gì?", reply_markup=keyboard(("VNeID", "topic:vneid")))
    raw = fake.user_presses(USER, msg.message_id, "topic:vneid")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query.id == raw["callback_query"]["id"] and query.data == "topic:vneid"
    assert query.message.message_id == msg.message_id
    assert await query.answer("OK")
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()
    edited = await bot.edit_message_text("Đã chọn <b>A</b>", USER, msg.message_id, parse_mode="HTML")
    assert edited.text == "Đã chọn A" and edited.reply_markup is None  # no reply_markup: keyboard removed
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Đã chọn <b>A</b>", USER, msg.message_id, parse_mode="HTML")


async def test_get_updates_offsets_and_concurrent_poll_conflict(fake: FakeTelegram, bot: telegram.Bot) -> None:
    ids = [fake.user_sends_text(USER, f"m{i}")["update_id"] for i in range(4)]
    assert [u.update_id for u in await bot.get_updates()] == ids  # not confirmed yet...
    assert len(await bot.get_updates()) == 4
    assert [u.update_id for u in await bot.get_updates(offset=-2)] == ids[-2:]  # older ones dropped
    assert await bot.get_updates(offset=ids[-1] + 1) == () and fake.pending_updates == []  # ...confirmed
    waiting = asyncio.create_task(bot.get_updates(offset=ids[-1] + 1, timeout=1))
    await asyncio.sleep(0.05)
    async with fake.make_bot() as second_instance:
        assert await second_instance.get_updates() == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await waiting


async def test_webhook_rules_conflict_and_delivery() -> None:
    received: list[tuple[dict, str | None]] = []

    async def endpoint(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/tg", endpoint)
    async with serve_app(receiver) as receiver_url, FakeTelegram(token=TOKEN, local_mode=True) as fake, \
            fake.make_bot() as client:
        strict = FakeTelegram(token=TOKEN)  # the public API: https and ports 80/88/443/8443 only
        async with strict, strict.make_bot() as public:
            with pytest.raises(BadRequest, match="(?i)https url must be provided"):
                await public.set_webhook("http://example.com/tg")
        with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
            await client.set_webhook(f"{receiver_url}/tg", secret_token="bad/secret=")
        assert await client.set_webhook(f"{receiver_url}/tg", secret_token="s3cr3t_-")
        assert (await client.get_webhook_info()).url == f"{receiver_url}/tg"
        with pytest.raises(Conflict):
            await client.get_updates()  # no getUpdates while a webhook is set
        update = fake.user_sends_text(USER, "qua webhook")
        assert await fake.deliver_webhook() == [200]
        assert received == [(update, "s3cr3t_-")] and fake.pending_updates == []
        assert await client.delete_webhook()
        assert await client.get_updates() == ()
