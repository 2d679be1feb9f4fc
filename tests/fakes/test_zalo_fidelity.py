"""Fidelity of tests/fakes/zalo_oa.py and tests/fakes/zalo_bot.py to the request and answer
shapes of the real Zalo APIs (see the platform notes), driven with a plain aiohttp client the way
our adapters call them: the fakes must refuse what Zalo refuses, with Zalo's error codes, or the
product tests built on them prove nothing. The fakes' test aids (outages, delays, long-poll caps)
are exercised by the product tests that run on them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.zalo_bot import FakeZaloBot
from tests.fakes.zalo_oa import (
    ERR_INVALID_PARAM,
    ERR_NOT_FOLLOWER,
    ERR_OUTSIDE_WINDOW,
    ERR_PARAM_LIMIT,
    ERR_RATE_LIMIT,
    ERR_TOKEN_INVALID,
    FakeZaloOA,
)
from tests.helpers import serve_app


@contextlib.asynccontextmanager
async def webhook_receiver(header: str, body) -> AsyncIterator[tuple[str, list]]:
    """Our side of a webhook over real HTTP: records (`body(request)`, the `header`) of each
    POST and answers "ok"; yields (its URL, the records)."""
    received: list = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await body(request), request.headers.get(header)))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with serve_app(app) as base:
        yield base + "/hook", received


USER = "8123456789012345678"
BOT_USER = "e4ea2cd5189df1c3a88c"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
async def oa():
    async with FakeZaloOA() as fake:
        fake.add_user(USER)
        yield fake


@pytest.fixture
async def bot():
    async with FakeZaloBot(max_long_poll=0.3) as fake:
        yield fake


# ------------------------------------------------------------------ Zalo OA


async def send_cs(http, fake: FakeZaloOA, body: dict, token: str | None = None) -> dict:
    async with http.post(fake.cs_url, json=body, headers={"access_token": token or fake.access_token}) as resp:
        assert resp.status == 200  # Zalo reports errors in the body, not the HTTP status
        return await resp.json()


def text_body(text: str, user_id: str = USER) -> dict:
    return {"recipient": {"user_id": user_id}, "message": {"text": text}}


def button_body(buttons: list[dict], text: str = "Bạn cần gì?") -> dict:
    return {"recipient": {"user_id": USER}, "message": {"attachment": {"type": "template", "payload": {
        "template_type": "button", "text": text, "buttons": buttons}}}}


async def refresh(http, fake: FakeZaloOA, refresh_token: str, secret: str | None = None) -> dict:
    form = {"app_id": fake.app_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
    async with http.post(fake.token_url, data=form, headers={"secret_key": secret or fake.app_secret}) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_oa_tokens_rotate_and_refresh_tokens_are_single_use(oa: FakeZaloOA, http) -> None:
    assert oa.api_base_url != oa.oauth_base_url
    assert (await send_cs(http, oa, text_body("chào"), "not-a-token"))["error"] == ERR_TOKEN_INVALID
    old_access, old_refresh = oa.access_token, oa.refresh_token
    oa.expire_token()
    assert (await send_cs(http, oa, text_body("chào"), old_access))["error"] == ERR_TOKEN_INVALID and oa.sent == []

    refused = await refresh(http, oa, old_refresh, secret="wrong")  # the App Secret is checked
    assert "access_token" not in refused and refused["error_reason"]

    pair = await refresh(http, oa, old_refresh)
    assert set(pair) == {"access_token", "refresh_token", "expires_in"} and pair["expires_in"] == "90000"
    assert (oa.access_token, oa.refresh_token) == (pair["access_token"], pair["refresh_token"])
    assert (await send_cs(http, oa, text_body("chào"), pair["access_token"]))["error"] == 0
    assert (await send_cs(http, oa, text_body("chào"), old_access))["error"] == ERR_TOKEN_INVALID

    reused = await refresh(http, oa, old_refresh)
    assert "access_token" not in reused and "already used" in reused["error_description"]
    assert len(oa.refreshes) == 1 and oa.refreshes[0].old_refresh_token == old_refresh
    oa.revoke_refresh_token()
    assert "access_token" not in await refresh(http, oa, pair["refresh_token"])


async def test_oa_send_validation_and_windows(oa: FakeZaloOA, http) -> None:
    ok = await send_cs(http, oa, text_body("Xin chào"))
    assert ok["error"] == 0 and ok["message"] == "Success" and ok["data"]["message_id"]
    assert oa.texts_to(USER) == ["Xin chào"]
    assert (await send_cs(http, oa, text_body("x" * 2000)))["error"] == 0
    assert (await send_cs(http, oa, text_body("x" * 2001)))["error"] == ERR_PARAM_LIMIT
    assert (await send_cs(http, oa, text_body("😀" * 1000)))["error"] == 0  # 2,000 UTF-16 units
    assert (await send_cs(http, oa, text_body("😀" * 1000 + "x")))["error"] == ERR_PARAM_LIMIT  # 1,001 characters
    assert (await send_cs(http, oa, text_body("")))["error"] == ERR_INVALID_PARAM
    assert (await send_cs(http, oa, text_body("hi", user_id="999")))["error"] == ERR_INVALID_PARAM
    assert (await send_cs(http, oa, {"recipient": {"user_id": USER}}))["error"] == ERR_INVALID_PARAM

    oa.set_last_interaction(USER, datetime.now(UTC) - timedelta(days=8))
    assert (await send_cs(http, oa, text_body("late")))["error"] == ERR_OUTSIDE_WINDOW
    oa.make_event("user_send_text", USER, "tôi quay lại")  # writing reopens the window
    assert (await send_cs(http, oa, text_body("welcome back")))["error"] == 0
    oa.make_event("unfollow", USER)
    assert (await send_cs(http, oa, text_body("bye")))["error"] == ERR_NOT_FOLLOWER
    assert len(oa.sent) == 4
    oa.set_follower(USER, True)
    oa.enforce_rate_limit(per_second=2)  # Zalo's rate limit: an error code in a 200 answer
    assert [(await send_cs(http, oa, text_body("r")))["error"] for _ in range(3)] == [0, 0, ERR_RATE_LIMIT]


async def test_oa_templates(oa: FakeZaloOA, http) -> None:
    show = {"type": "oa.query.show", "title": "1. VNeID", "payload": "1"}
    assert (await send_cs(http, oa, button_body([show, dict(show, title="2. DVC", payload="2")])))["error"] == 0
    record = oa.sent[-1]
    assert record.text is None and record.template_type == "button" and len(record.buttons) == 2
    assert oa.texts_to(USER) == ["Bạn cần gì?"]
    for bad in ([show] * 6, [], [dict(show, type="nope")], [dict(show, title="")], [dict(show, title="x" * 101)],
                [dict(show, title="😀" * 51)], [dict(show, payload="")]):  # titles: 100 UTF-16 units
        assert (await send_cs(http, oa, button_body(bad)))["error"] == ERR_INVALID_PARAM, bad
    assert (await send_cs(http, oa, button_body([show], text="")))["error"] == ERR_INVALID_PARAM
    assert (await send_cs(http, oa, button_body([show], text="😀" * 1001)))["error"] == ERR_INVALID_PARAM
    assert (await send_cs(http, oa, button_body([dict(show, title="😀" * 50)], text="😀" * 1000)))["error"] == 0
    media = {"type": "template", "payload": {"template_type": "media",
                                             "elements": [{"media_type": "image", "url": "https://x/y.jpg"}]}}
    assert (await send_cs(http, oa, {"recipient": {"user_id": USER}, "message": {"attachment": media}}))["error"] == 0
    unknown = {"type": "template", "payload": {"template_type": "carousel", "elements": []}}
    assert (await send_cs(http, oa, {"recipient": {"user_id": USER},
                                     "message": {"attachment": unknown}}))["error"] == ERR_INVALID_PARAM
    assert len(oa.sent) == 3


async def test_oa_webhook_signature_and_event_shapes(oa: FakeZaloOA) -> None:
    event = oa.make_event("user_send_text", USER, "Làm CCCD ở đâu?", msg_id="m1", timestamp=1700000000123)
    assert event["app_id"] == oa.app_id and event["sender"] == {"id": USER} and event["recipient"] == {"id": oa.oa_id}
    assert event["message"] == {"msg_id": "m1", "text": "Làm CCCD ở đâu?"} and event["timestamp"] == "1700000000123"
    raw, headers = oa.webhook_request(event)
    assert json.loads(raw) == event
    own = hashlib.sha256(oa.app_id.encode() + raw + b"1700000000123" + oa.oa_secret_key.encode()).hexdigest()
    assert headers["X-ZEvent-Signature"] == "mac=" + own  # plain SHA-256, not HMAC

    assert oa.make_event("user_send_image", USER)["message"]["attachments"][0]["type"] == "image"
    follow = oa.make_event("follow", "777")
    assert follow["follower"] == {"id": "777"} and follow["oa_id"] == oa.oa_id and "sender" not in follow
    seen = oa.make_event("user_seen_message", USER)
    assert seen["sender"] == {"id": oa.oa_id} and seen["recipient"] == {"id": USER}

    async with webhook_receiver("X-ZEvent-Signature", web.Request.read) as (url, received):
        assert await oa.deliver_webhook(url, event) == (200, "ok")
        await oa.deliver_webhook(url, event, secret="wrong")
        await oa.deliver_webhook(url, event, signature="")
    assert received[0] == (raw, "mac=" + own) and received[1][1] != received[0][1] and received[2][1] is None


# ------------------------------------------------------------------ Zalo Bot Platform


async def call(http, fake: FakeZaloBot, method: str, body: dict | None = None, token=None):
    async with http.post(fake.method_url(method, token), json=body or {}) as resp:
        return resp.status, await resp.json()


async def test_bot_get_me_and_wrong_token(bot: FakeZaloBot, http) -> None:
    status, me = await call(http, bot, "getMe")
    assert status == 200 and me["ok"] is True and me["result"]["id"] == bot.bot_id
    status, bad = await call(http, bot, "getMe", token="1:wrong")
    assert status == 401 and bad == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert (await call(http, bot, "noSuchMethod"))[0] == 404


async def test_bot_get_updates_once_each_then_408(bot: FakeZaloBot, http) -> None:
    for text in ("một", "hai"):
        bot.user_sends_text(BOT_USER, text)
    got = []
    for _ in range(2):
        status, data = await call(http, bot, "getUpdates", {"timeout": "30"})
        assert status == 200 and isinstance(data["result"], dict)  # ONE update, not a list
        got.append(data["result"]["message"]["text"])
    assert got == ["một", "hai"] and bot.pending_updates == []
    update = bot.delivered[0]
    assert update["event_name"] == "message.text.received"
    assert update["message"]["chat"] == {"id": BOT_USER, "chat_type": "PRIVATE"}
    assert update["message"]["from"]["is_bot"] is False and update["message"]["date"] > 1_600_000_000_000
    started = time.monotonic()
    assert (await call(http, bot, "getUpdates", {"timeout": "30"}))[1] == {
        "ok": False, "error_code": 408, "description": "Request timeout"}
    assert 0.25 <= time.monotonic() - started < 2  # capped long poll


async def test_bot_send_limits(bot: FakeZaloBot, http) -> None:
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "hi"}))[0] == 400  # never wrote
    bot.add_user(BOT_USER)
    status, ok = await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "x" * 2000})
    assert status == 200 and set(ok["result"]) == {"message_id", "date"}
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "x" * 2001}))[0] == 400
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "🇻🇳" * 500}))[0] == 200  # 2,000 units
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "🇻🇳" * 500 + "x"}))[0] == 400
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": ""}))[0] == 400
    assert (await call(http, bot, "sendPhoto", {"chat_id": BOT_USER, "photo": "not a url"}))[0] == 400
    assert (await call(http, bot, "sendPhoto", {"chat_id": BOT_USER, "photo": "https://x/y.jpg"}))[0] == 200
    assert bot.texts_to(BOT_USER) == ["x" * 2000, "🇻🇳" * 500] and bot.sent[-1].photo == "https://x/y.jpg"
    bot.enforce_rate_limit(per_second=1)
    assert [(await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "r"}))[0] for _ in range(2)] == [
        200, 429]


async def test_bot_webhook_set_delete_and_delivery(bot: FakeZaloBot, http) -> None:
    assert (await call(http, bot, "setWebhook", {"url": "http://example.com/h", "secret_token": "12345678"}))[0] == 400
    assert (await call(http, bot, "setWebhook", {"url": "https://example.com/h", "secret_token": "1234567"}))[0] == 400
    _, ok = await call(http, bot, "setWebhook", {"url": "https://example.com/h", "secret_token": "s3cret-token"})
    assert ok["result"]["url"] == "https://example.com/h"
    assert (await call(http, bot, "getUpdates", {"timeout": "1"}))[1]["error_code"] == 409

    async with webhook_receiver("X-Bot-Api-Secret-Token", web.Request.json) as (url, received):
        text = bot.make_update("message.text.received", BOT_USER, text="qua webhook")
        assert await bot.deliver_webhook([text], url=url) == [200]
        sticker = bot.make_update("message.sticker.received", BOT_USER, sticker="abc", shape="B")
        assert await bot.deliver_webhook([sticker], url=url, shape="B", secret_token="other") == [200]
    (flat, secret_a), (wrapped, secret_b) = received
    assert (secret_a, secret_b) == ("s3cret-token", "other")
    assert flat["message"]["text"] == "qua webhook" and wrapped["ok"] is True
    assert wrapped["result"]["message"]["sticker"] == "abc"
    assert (await call(http, bot, "deleteWebhook"))[1]["result"]["url"] == ""


