"""Self-test of tests/fakes/telegram_api.py: a REAL python-telegram-bot client talks to the fake."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
import warnings

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

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
    # A plain telegram.Bot(TOKEN, base_url=fake.base_url) works too; make_bot() only adds
    # verify=False requests, which saves PTB ~0.2 s of CA-bundle loading per Bot.
    async with fake.make_bot() as client:
        yield client


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(text, callback_data=data)] for text, data in pairs])


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB deprecation notice about int -> timedelta
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# ------------------------------------------------------------------ basics


async def test_get_me_and_urls(fake: FakeTelegram) -> None:
    bot = telegram.Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url)
    await bot.initialize()
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "test_bot")
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/bot"
    assert fake.base_file_url == f"http://127.0.0.1:{fake.port}/file/bot"
    assert bot.base_url == f"{fake.base_url}{TOKEN}"
    # PTB 22 sends form-urlencoded bodies (JSON-encoding non-string values), not application/json;
    # parameterless calls such as getMe have no body at all.
    assert fake.calls("getMe")[0].content_type == ""
    await bot.send_message(USER, "hi", reply_markup=keyboard(("A", "a")))
    call = fake.calls("sendMessage")[0]
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params == {
        "chat_id": USER,
        "text": "hi",
        "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
    }
    await bot.shutdown()


async def test_raw_http_envelopes(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.base_url}999:WRONG/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{fake.base_url}{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        # GET with a query string; method names are case-insensitive.
        async with http.get(f"{fake.base_url}{TOKEN}/getme") as resp:
            assert (await resp.json())["result"]["username"] == "test_bot"
        # JSON body, with the server-side keyboard check (empty button text).
        body = {
            "chat_id": USER,
            "text": "hi",
            "reply_markup": {"inline_keyboard": [[{"text": "", "callback_data": "x"}]]},
        }
        async with http.post(f"{fake.base_url}{TOKEN}/sendMessage", json=body) as resp:
            assert resp.status == 400
            assert (await resp.json())["description"] == "Bad Request: BUTTON_TEXT_INVALID"
        body["reply_markup"] = {"inline_keyboard": [[{"text": "Go", "url": "ftp://example.com"}]]}
        async with http.post(f"{fake.base_url}{TOKEN}/sendMessage", json=body) as resp:
            assert (await resp.json())["description"] == "Bad Request: BUTTON_URL_INVALID"
        # multipart is accepted too
        form = aiohttp.FormData({"chat_id": str(USER), "text": "123"})
        form.add_field("unused", b"bytes", filename="f.bin")
        async with http.post(f"{fake.base_url}{TOKEN}/sendMessage", data=form) as resp:
            assert (await resp.json())["result"]["text"] == "123"  # "123" stays a string
    assert [r.status for r in fake.requests] == [401, 404, 200, 400, 400, 200]


# ------------------------------------------------------------------ sendMessage & validation


async def test_send_message_html_with_keyboard(fake: FakeTelegram, bot: telegram.Bot) -> None:
    markup = keyboard(("Có", "yes"), ("Không", "no"))
    msg = await bot.send_message(
        USER, "<b>Xin chào</b> &lt;Lan&gt; 👋", parse_mode="HTML", reply_markup=markup
    )
    assert msg.text == "Xin chào <Lan> 👋"
    assert msg.entities[0].type == "bold" and (msg.entities[0].offset, msg.entities[0].length) == (0, 8)
    assert msg.from_user.id == 123456 and msg.chat.id == USER
    assert msg.reply_markup == markup
    record = fake.last_sent(USER)
    assert record.method == "sendMessage" and record.parse_mode == "HTML"
    assert record.text == "<b>Xin chào</b> &lt;Lan&gt; 👋"
    assert record.callback_data == ["yes", "no"]
    assert record.message_id == msg.message_id
    assert fake.texts_to(USER, plain=True) == ["Xin chào <Lan> 👋"]


@pytest.mark.parametrize(
    ("html", "detail"),
    [
        ("a < b", 'unsupported start tag "" at byte offset 2'),
        ("<b>bold", "can't find end tag corresponding to start tag b"),
        ("<b><i>x</b></i>", 'unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("<p>para</p>", 'unsupported start tag "p" at byte offset 0'),
        ("Tom & Jerry", 'unescaped "&"'),
        ("x > y", 'unescaped ">"'),
        ('<span class="x">s</span>', 'tag "span" must have class "tg-spoiler"'),
    ],
)
async def test_bad_html_is_rejected(fake: FakeTelegram, bot: telegram.Bot, html: str, detail: str) -> None:
    with pytest.raises(BadRequest) as err:
        await bot.send_message(USER, html, parse_mode="HTML")
    # PTB strips "Bad Request: " and .capitalize()s the rest (so it arrives lower-cased).
    assert err.value.message.startswith("Can't parse entities: ")
    assert detail.lower() in err.value.message.lower()
    assert fake.sent == []
    assert fake.requests[-1].description.startswith("Bad Request: can't parse entities: ")


def test_parse_html_matches_tdlib() -> None:
    text, entities = parse_html(
        '<a href="https://vneid.gov.vn">VNeID</a> <pre><code class="language-py">x</code></pre>'
    )
    assert text == "VNeID x"
    assert entities == [
        {"type": "text_link", "offset": 0, "length": 5, "url": "https://vneid.gov.vn"},
        {"type": "pre", "offset": 6, "length": 1, "language": "py"},
    ]
    # TDLib leniency, available with strict=False: unknown entities and a bare "&" stay text.
    assert parse_html("&laquo; a & b &lt", strict=False) == ("&laquo; a & b <", [])
    assert parse_html("<blockquote expandable>q</blockquote><tg-spoiler>s</tg-spoiler>") == (
        "qs",
        [
            {"type": "expandable_blockquote", "offset": 0, "length": 1},
            {"type": "spoiler", "offset": 1, "length": 1},
        ],
    )


async def test_text_length_is_counted_after_entity_parsing(bot: telegram.Bot) -> None:
    await bot.send_message(USER, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "a" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")


async def test_callback_data_limit_is_64_bytes(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_message(USER, "ok", reply_markup=keyboard(("A", "x" * 64)))
    # 22 Vietnamese characters, 66 UTF-8 bytes: PTB does not check, the server does.
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(USER, "too long", reply_markup=keyboard(("A", "ệ" * 22)))
    assert fake.requests[-1].description == "Bad Request: BUTTON_DATA_INVALID"
    assert len(fake.sent) == 1


async def test_unknown_and_blocked_chats(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(777, "hi")
    update = fake.user_blocks_bot(USER)
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")
    (parsed,) = await bot.get_updates()
    assert parsed.my_chat_member.new_chat_member.status == "kicked"
    fake.unblock(USER)
    await bot.send_message(USER, "welcome back")


# ------------------------------------------------------------------ faults and flood control


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_injected_429_surfaces_as_retry_after(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(USER, "hi")
    assert retry_seconds(err.value) == 7
    assert fake.requests[-1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert fake.stats["429"] == 1 and fake.sent == []
    await bot.send_message(USER, "now it works")

    fake.fail_next("sendMessage", 502)  # nginx HTML page, like the real front-end
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(USER, "hi")
    fake.fail_next("*", 500, "Internal Server Error", count=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.get_me()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_rate_limit_returns_429_with_retry_after(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.enforce_rate_limit(per_chat_per_second=1, burst=2)
    await bot.send_message(USER, "1")
    await bot.send_message(USER, "2")
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(USER, "3")
    assert 1 <= retry_seconds(err.value) <= 2
    assert fake.stats["rate_limited"] == 1 and fake.stats["429"] == 1
    assert fake.texts_to(USER) == ["1", "2"]
    await bot.send_chat_action(USER, "typing")  # chat actions are not rate limited here


async def test_outages(fake: FakeTelegram) -> None:
    async with fake.make_bot(
        request=HTTPXRequest(read_timeout=0.2, httpx_kwargs={"verify": False})
    ) as client:
        fake.set_outage(5, mode="timeout", hang=1.0)
        with pytest.raises(TimedOut):
            await client.send_message(USER, "hi")
        await client.get_me()  # default outage scope: message-affecting methods only
        fake.set_outage(5, mode="disconnect")
        with pytest.raises(NetworkError):
            await client.send_message(USER, "hi")
        fake.set_outage(5, status=500, methods="all")
        with pytest.raises(NetworkError):
            await client.get_me()
        fake.set_outage(None)
        await client.send_message(USER, "back")
    assert fake.stats["outage"] == 3
    assert fake.texts_to(USER) == ["back"]


# ------------------------------------------------------------------ edits, callbacks, commands


async def test_edit_message_text(fake: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(USER, "Chọn:", reply_markup=keyboard(("A", "a")))
    edited = await bot.edit_message_text("Đã chọn <b>A</b>", USER, msg.message_id, parse_mode="HTML")
    assert edited.text == "Đã chọn A" and edited.edit_date is not None
    assert edited.reply_markup is None  # omitting reply_markup removes the keyboard
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Đã chọn <b>A</b>", USER, msg.message_id, parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", USER, 999)
    again = await bot.edit_message_reply_markup(USER, msg.message_id, reply_markup=keyboard(("B", "b")))
    assert again.reply_markup.inline_keyboard[0][0].callback_data == "b"
    assert [s.method for s in fake.sent] == ["sendMessage", "editMessageText", "editMessageReplyMarkup"]
    assert fake.message(USER, msg.message_id)["text"] == "Đã chọn A"


async def test_callback_query_round_trip(fake: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(USER, "Bạn cần gì?", reply_markup=keyboard(("VNeID", "topic:vneid")))
    with pytest.raises(ValueError, match="no button"):
        fake.user_presses(USER, msg.message_id, "topic:other")
    raw = fake.user_presses(USER, msg.message_id, "topic:vneid")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query.id == raw["callback_query"]["id"] and query.data == "topic:vneid"
    assert query.message.message_id == msg.message_id and query.message.text == "Bạn cần gì?"
    assert await query.answer("OK")
    assert fake.answered_callbacks == [query.id]
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()


async def test_set_my_commands(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.set_my_commands([("start", "Bắt đầu"), ("help", "Trợ giúp")])
    assert fake.commands == [
        {"command": "start", "description": "Bắt đầu"},
        {"command": "help", "description": "Trợ giúp"},
    ]
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Start", "Upper case is not allowed")])
    with pytest.raises(BadRequest, match="Bot_command_description_invalid"):
        await bot.set_my_commands([("start", "")])
    await bot.set_my_commands([("batdau", "Bắt đầu")], language_code="vi")
    assert fake.commands_for(language_code="vi") == [{"command": "batdau", "description": "Bắt đầu"}]


# ------------------------------------------------------------------ other methods


async def test_poll_photo_forum_and_group_reply(fake: FakeTelegram, bot: telegram.Bot) -> None:
    poll_msg = await bot.send_poll(
        USER,
        "Mã định danh có bao nhiêu số?",
        ["9", "12"],
        type="quiz",
        correct_option_ids=[1],
        explanation="12 số",
    )
    assert poll_msg.poll.correct_option_ids == (1,) and poll_msg.poll.explanation == "12 số"
    with pytest.raises(BadRequest):
        await bot.send_poll(USER, "Q", ["a", "b"], type="quiz", correct_option_ids=[5])
    photo = await bot.send_photo(USER, "https://example.com/qr.png", caption="<i>QR</i>", parse_mode="HTML")
    assert photo.caption == "QR" and photo.photo[-1].width == 800

    fake.add_group(-1001234, "Hỗ trợ DVC", is_forum=True)
    with pytest.raises(BadRequest, match="The chat is not a forum"):
        await bot.create_forum_topic(USER, "x")
    topic = await bot.create_forum_topic(-1001234, "VNeID")
    sent = await bot.send_message(-1001234, "Hỏi đáp VNeID", message_thread_id=topic.message_thread_id)
    assert sent.message_thread_id == topic.message_thread_id and sent.is_topic_message
    with pytest.raises(BadRequest, match="Message thread not found"):
        await bot.send_message(-1001234, "x", message_thread_id=999)

    raw = fake.member_replies_in_group(-1001234, 555, sent.message_id, "Cảm ơn!")
    (update,) = await bot.get_updates()
    assert update.update_id == raw["update_id"]
    assert update.message.reply_to_message.message_id == sent.message_id
    assert update.message.message_thread_id == topic.message_thread_id
    reply = await update.message.reply_text("Không có gì", do_quote=True)
    assert reply.reply_to_message.message_id == update.message.message_id
    assert fake.last_sent(-1001234).reply_to_message_id == update.message.message_id
    assert fake.last_sent(-1001234).message_thread_id == topic.message_thread_id

    await bot.send_chat_action(USER, "typing")
    assert fake.chat_actions[-1]["action"] == "typing"
    assert (await bot.get_chat(-1001234)).title == "Hỗ trợ DVC"
    assert await bot.close() and fake.closed


async def test_get_updates_offsets_and_long_poll(fake: FakeTelegram, bot: telegram.Bot) -> None:
    first = fake.user_sends_text(USER, "/start")
    fake.user_sends_sticker(USER)
    fake.user_sends_photo(USER, caption="ảnh CCCD")
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [first["update_id"] + i for i in range(3)]
    assert updates[0].message.entities[0].type == "bot_command"
    assert updates[1].message.sticker.emoji == "👍" and updates[2].message.photo
    assert len(await bot.get_updates()) == 3  # not confirmed yet
    assert [u.update_id for u in await bot.get_updates(offset=updates[1].update_id, limit=1)] == [
        updates[1].update_id
    ]
    assert await bot.get_updates(offset=updates[-1].update_id + 1) == ()
    assert fake.pending_updates == []

    started = time.monotonic()
    waiter = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    fake.user_sends_text(USER, "hello")
    (late,) = await waiter
    assert late.message.text == "hello" and time.monotonic() - started < 1
    fake.max_long_poll = 0.2  # the fake caps long polls (default 1 s) to keep tests fast
    empty_started = time.monotonic()
    assert await bot.get_updates(offset=late.update_id + 1, timeout=30) == ()
    assert 0.15 < time.monotonic() - empty_started < 1


async def test_application_polling_echo(fake: FakeTelegram) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(update.message.text)

    # Equivalent to Application.builder().token(TOKEN).base_url(fake.base_url)
    #     .base_file_url(fake.base_file_url).build(), plus fast verify=False requests.
    app = fake.application_builder().build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=0)
        fake.user_sends_text(USER, "Xin chào")
        await fake.wait_for_sent(lambda s: s.text == "Xin chào", timeout=3)
        fake.user_sends_text(USER, "Làm CCCD ở đâu?")
        await fake.wait_for_sent(2, timeout=3, chat_id=USER)
        await asyncio.sleep(0.05)  # let PTB poll a few more times: nothing may be redelivered
        await app.updater.stop()
        await app.stop()
    assert fake.texts_to(USER) == ["Xin chào", "Làm CCCD ở đâu?"]  # each update handled exactly once
    assert fake.pending_updates == []  # PTB confirmed them with its offset
    offsets = [r.params.get("offset", 0) for r in fake.calls("getUpdates")]
    assert offsets == sorted(offsets) and offsets[-1] == max(offsets)
    assert fake.calls("deleteWebhook")  # PTB's polling bootstrap


async def test_webhook_set_conflict_and_delivery() -> None:
    received: list[tuple[dict, str | None]] = []

    async def endpoint(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/tg", endpoint)
    async with (
        serve_app(receiver) as receiver_url,
        FakeTelegram(token=TOKEN, local_mode=True) as fake,
        fake.make_bot() as client,
    ):
        strict = FakeTelegram(token=TOKEN)  # the public API: https and ports 80/88/443/8443 only
        async with strict, strict.make_bot() as public:
            with pytest.raises(BadRequest, match="(?i)https url must be provided"):
                await public.set_webhook("http://example.com/tg")
        with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
            await client.set_webhook(f"{receiver_url}/tg", secret_token="bad/secret=")
        assert await client.set_webhook(f"{receiver_url}/tg", secret_token="s3cr3t_-")
        info = await client.get_webhook_info()
        assert info.url == f"{receiver_url}/tg"
        with pytest.raises(Conflict):
            await client.get_updates()
        update = fake.user_sends_text(USER, "qua webhook")
        built = fake.make_update("message", {**update["message"], "text": "not queued"})
        assert built["update_id"] == update["update_id"] + 1 and len(fake.pending_updates) == 1
        assert await fake.deliver_webhook() == [200]
        assert received == [(update, "s3cr3t_-")]
        assert fake.pending_updates == []
        assert await client.delete_webhook()
        assert await client.get_updates() == ()


async def test_wait_for_sent_timeout_lists_what_was_sent(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_message(USER, "một")
    with pytest.raises(BadRequest):
        await bot.send_message(USER, "<b>", parse_mode="HTML")
    with pytest.raises(TimeoutError) as err:
        await fake.wait_for_sent(lambda s: s.text == "hai", timeout=0.1)
    assert "'một'" in str(err.value) and "can't parse entities" in str(err.value)
    assert len(await fake.wait_for_sent(1, timeout=0.1)) == 1


async def test_allowed_updates_negative_offset_and_poll_conflict(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    ids = [fake.user_sends_text(USER, f"m{i}")["update_id"] for i in range(4)]
    assert [u.update_id for u in await bot.get_updates(offset=-2)] == ids[-2:]  # older ones dropped
    assert [u["update_id"] for u in fake.pending_updates] == ids[-2:]
    await bot.get_updates(offset=ids[-1] + 1, allowed_updates=["callback_query"])
    fake.user_sends_text(USER, "filtered: not an allowed update type")
    assert fake.pending_updates == [] and fake.stats["updates_filtered"] == 1
    await bot.get_updates(allowed_updates=[])  # back to the default set
    kept = fake.user_sends_text(USER, "kept")
    assert [u.message.text for u in await bot.get_updates()] == ["kept"]

    waiting = asyncio.create_task(bot.get_updates(offset=kept["update_id"] + 1, timeout=1))
    await asyncio.sleep(0.05)
    async with fake.make_bot() as second_instance:
        assert await second_instance.get_updates() == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await waiting
