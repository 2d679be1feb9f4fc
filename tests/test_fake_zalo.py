"""Self-test of tests/fakes/zalo_oa.py and tests/fakes/zalo_bot.py with a plain aiohttp client:
the fakes must refuse what Zalo refuses, or the product tests built on them prove nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
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
    ERR_TOKEN_EXPIRED,
    ERR_TOKEN_INVALID,
    FakeZaloOA,
)
from tests.helpers import serve_app

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


async def test_oa_time_based_expiry_and_expired_code(http) -> None:
    async with FakeZaloOA(expires_in=0, expired_token_code=ERR_TOKEN_EXPIRED) as fake:
        fake.add_user(USER)
        assert (await send_cs(http, fake, text_body("x")))["error"] == ERR_TOKEN_EXPIRED
        pair = await refresh(http, fake, fake.refresh_token)
        assert pair["expires_in"] == "0"  # every token it issues is already dead
        assert (await send_cs(http, fake, text_body("x"), pair["access_token"]))["error"] == ERR_TOKEN_EXPIRED


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


async def test_oa_profile_needs_a_valid_token(oa: FakeZaloOA, http) -> None:
    url = oa.api_base_url + "/v2.0/oa/getoa"
    async with http.get(url, headers={"access_token": oa.access_token}) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["error"] == 0 and body["data"]["name"] == oa.oa_name
    assert body["data"]["oa_id"] == oa.oa_id and body["data"]["num_follower"] == 1
    async with http.get(url, headers={"access_token": "revoked"}) as resp:
        assert (await resp.json())["error"] == ERR_TOKEN_INVALID


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


async def test_oa_faults_rate_limit_outage_delay(oa: FakeZaloOA, http) -> None:
    oa.fail_next("cs", -200, "Send message failed", count=2)
    assert [(await send_cs(http, oa, text_body("a")))["error"] for _ in range(3)] == [-200, -200, 0]
    oa.enforce_rate_limit(per_second=2)
    assert [(await send_cs(http, oa, text_body("r")))["error"] for _ in range(3)] == [0, 0, ERR_RATE_LIMIT]
    oa.disable_rate_limit()

    oa.set_outage(5)
    async with http.post(oa.cs_url, json=text_body("x"), headers={"access_token": oa.access_token}) as resp:
        assert resp.status == 502 and "nginx" in await resp.text()
    assert "access_token" in await refresh(http, oa, oa.refresh_token)  # the OAuth host is not hit by default
    oa.set_outage(5, "disconnect")
    with pytest.raises(aiohttp.ClientError):
        await send_cs(http, oa, text_body("x"))
    oa.clear_outage()

    oa.fail_next("refresh", message="boom")
    assert (await refresh(http, oa, oa.refresh_token))["error_reason"] == "boom"
    oa.delay("refresh", 0.3)
    started = time.monotonic()
    slow = asyncio.create_task(refresh(http, oa, oa.refresh_token))
    await asyncio.sleep(0.1)
    assert oa.holding("refresh") == 1
    assert "access_token" in await slow
    assert time.monotonic() - started >= 0.3 and oa.holding("refresh") == 0
    assert [r.ok for r in oa.calls("refresh")] == [True, False, True]


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

    received = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers.get("X-ZEvent-Signature")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/zalo", hook)
    async with serve_app(app) as base:
        assert await oa.deliver_webhook(base + "/zalo", event) == (200, "ok")
        await oa.deliver_webhook(base + "/zalo", event, secret="wrong")
        await oa.deliver_webhook(base + "/zalo", event, signature="")
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


async def test_bot_long_poll_wakes_on_new_update(bot: FakeZaloBot, http) -> None:
    bot.max_long_poll = 3
    task = asyncio.create_task(call(http, bot, "getUpdates", {"timeout": 30}))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    bot.user_sends_image(BOT_USER, caption="giấy tờ")
    _, data = await task
    assert time.monotonic() - started < 1 and data["result"]["event_name"] == "message.image.received"


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


async def test_bot_errors_as_http_200(http) -> None:
    async with FakeZaloBot(errors_as_http_status=False, max_long_poll=0.05) as fake:
        status, data = await call(http, fake, "getUpdates", {"timeout": "1"})
        assert status == 200 and data["error_code"] == 408


async def test_bot_webhook_set_delete_and_delivery(bot: FakeZaloBot, http) -> None:
    assert (await call(http, bot, "setWebhook", {"url": "http://example.com/h", "secret_token": "12345678"}))[0] == 400
    assert (await call(http, bot, "setWebhook", {"url": "https://example.com/h", "secret_token": "1234567"}))[0] == 400
    _, ok = await call(http, bot, "setWebhook", {"url": "https://example.com/h", "secret_token": "s3cret-token"})
    assert ok["result"]["url"] == "https://example.com/h"
    assert (await call(http, bot, "getUpdates", {"timeout": "1"}))[1]["error_code"] == 409

    received = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Bot-Api-Secret-Token")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/h", hook)
    async with serve_app(app) as base:
        text = bot.make_update("message.text.received", BOT_USER, text="qua webhook")
        assert await bot.deliver_webhook([text], url=base + "/h") == [200]
        sticker = bot.make_update("message.sticker.received", BOT_USER, sticker="abc", shape="B")
        assert await bot.deliver_webhook([sticker], url=base + "/h", shape="B", secret_token="other") == [200]
    (flat, secret_a), (wrapped, secret_b) = received
    assert (secret_a, secret_b) == ("s3cret-token", "other")
    assert flat["message"]["text"] == "qua webhook" and wrapped["ok"] is True
    assert wrapped["result"]["message"]["sticker"] == "abc"
    assert (await call(http, bot, "deleteWebhook"))[1]["result"]["url"] == ""


async def test_bot_fail_next_outage_rate_limit(bot: FakeZaloBot, http) -> None:
    bot.add_user(BOT_USER)
    bot.fail_next("sendMessage", 500, "Internal Server Error")
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "a"}))[0] == 500
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "a"}))[1]["ok"] is True
    bot.set_outage(5)
    async with http.post(bot.method_url("sendMessage"), json={"chat_id": BOT_USER, "text": "b"}) as resp:
        assert resp.status == 502
    assert (await call(http, bot, "getMe"))[1]["ok"] is True  # a default outage hits send* only
    bot.clear_outage()
    bot.enforce_rate_limit(per_second=1)
    assert [(await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "r"}))[0] for _ in range(2)] == [
        200, 429]
