"""Self-test of tests/fakes/zalo_oa.py and tests/fakes/zalo_bot.py with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import datetime, timedelta

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
    verify_zalo_signature,
    zalo_signature,
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
        fake.add_user(USER, display_name="Lan")
        yield fake


@pytest.fixture
async def bot():
    async with FakeZaloBot(max_long_poll=0.3) as fake:
        yield fake


# ------------------------------------------------------------------ Zalo OA helpers


async def oa_get(http: aiohttp.ClientSession, fake: FakeZaloOA, path: str, token: str | None, **query: str):
    headers = {} if token is None else {"access_token": token}
    async with http.get(fake.api_base_url + path, headers=headers, params=query) as resp:
        assert resp.status == 200
        return await resp.json()


async def send_cs(http: aiohttp.ClientSession, fake: FakeZaloOA, body: dict, token: str | None = None):
    headers = {"access_token": token or fake.access_token}
    async with http.post(fake.cs_url, json=body, headers=headers) as resp:
        assert resp.status == 200  # Zalo reports errors in the body, not the HTTP status
        return await resp.json()


def text_body(text: str, user_id: str = USER) -> dict:
    return {"recipient": {"user_id": user_id}, "message": {"text": text}}


async def refresh(
    http: aiohttp.ClientSession, fake: FakeZaloOA, refresh_token: str, secret: str | None = None
):
    form = {"app_id": fake.app_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
    headers = {"secret_key": secret or fake.app_secret}
    async with http.post(fake.token_url, data=form, headers=headers) as resp:
        assert resp.status == 200
        return await resp.json()


# ------------------------------------------------------------------ Zalo OA: tokens


async def test_oa_two_hosts_and_token_required(oa: FakeZaloOA, http) -> None:
    assert oa.api_base_url != oa.oauth_base_url
    assert (await oa_get(http, oa, "/v2.0/oa/getoa", None))["error"] == ERR_TOKEN_INVALID
    assert (await oa_get(http, oa, "/v2.0/oa/getoa", "not-a-token"))["error"] == ERR_TOKEN_INVALID
    info = await oa_get(http, oa, "/v2.0/oa/getoa", oa.access_token)
    assert info["error"] == 0 and info["data"]["oa_id"] == oa.oa_id and info["data"]["num_follower"] == 1
    # OAuth path does not exist on the API host.
    async with http.post(oa.api_base_url + "/v4/oa/access_token") as resp:
        assert resp.status == 404
    # Query-string token is refused unless enabled.
    assert (await oa_get(http, oa, "/v2.0/oa/getoa", None, access_token=oa.access_token))["error"] == -216
    oa.accept_query_token = True
    assert (await oa_get(http, oa, "/v2.0/oa/getoa", None, access_token=oa.access_token))["error"] == 0


async def test_oa_expire_refresh_rotation(oa: FakeZaloOA, http) -> None:
    old_access, old_refresh = oa.access_token, oa.refresh_token
    oa.expire_token()
    expired = await send_cs(http, oa, text_body("chào"), old_access)
    assert expired["error"] == ERR_TOKEN_INVALID and oa.sent == []

    bad_secret = await refresh(http, oa, old_refresh, secret="wrong")
    assert "access_token" not in bad_secret and bad_secret["error_name"]

    pair = await refresh(http, oa, old_refresh)
    assert set(pair) == {"access_token", "refresh_token", "expires_in"}
    assert pair["expires_in"] == "90000"  # a string, as Zalo sends it
    assert pair["access_token"] != old_access and pair["refresh_token"] != old_refresh
    assert (oa.access_token, oa.refresh_token) == (pair["access_token"], pair["refresh_token"])
    assert len(oa.refreshes) == 1 and oa.refreshes[0].old_refresh_token == old_refresh

    assert (await send_cs(http, oa, text_body("chào"), pair["access_token"]))["error"] == 0
    assert (await send_cs(http, oa, text_body("chào"), old_access))["error"] == ERR_TOKEN_INVALID

    reused = await refresh(http, oa, old_refresh)  # refresh tokens are single-use
    assert "access_token" not in reused and reused["error"] < 0 and reused["error_reason"]
    assert len(oa.refreshes) == 1

    second = await refresh(http, oa, pair["refresh_token"])
    assert "access_token" in second and len(oa.refreshes) == 2


async def test_oa_time_based_expiry_and_expired_code(http) -> None:
    async with FakeZaloOA(expires_in=3600, expired_token_code=ERR_TOKEN_EXPIRED) as fake:
        fake.add_user(USER)
        token = fake.access_token
        fake.expires_in = 0  # the token's lifetime is over
        assert (await send_cs(http, fake, text_body("x"), token))["error"] == ERR_TOKEN_EXPIRED
        assert (await oa_get(http, fake, "/v2.0/oa/getoa", "garbage"))["error"] == ERR_TOKEN_INVALID
        fake.expires_in = 3600
        pair = await refresh(http, fake, fake.refresh_token)
        assert pair["expires_in"] == "3600"
        assert (await send_cs(http, fake, text_body("x"), pair["access_token"]))["error"] == 0


async def test_oa_authorization_code_grant(oa: FakeZaloOA, http) -> None:
    code = oa.new_auth_code(code_verifier="v" * 43)
    form = {"app_id": oa.app_id, "grant_type": "authorization_code", "code": code, "code_verifier": "v" * 43}
    async with http.post(oa.token_url, data=form, headers={"secret_key": oa.app_secret}) as resp:
        data = await resp.json()
    assert data["access_token"] == oa.access_token and oa.refreshes[-1].grant_type == "authorization_code"
    async with http.post(oa.token_url, data=form, headers={"secret_key": oa.app_secret}) as resp:
        assert "access_token" not in await resp.json()  # codes are single-use


# ------------------------------------------------------------------ Zalo OA: sending


async def test_oa_send_validation(oa: FakeZaloOA, http) -> None:
    ok = await send_cs(http, oa, text_body("Xin chào Lan"))
    assert ok["error"] == 0 and ok["message"] == "Success" and ok["data"]["message_id"]
    assert oa.texts_to(USER) == ["Xin chào Lan"]
    assert oa.sent[0].free is True and oa.sent[0].kind == "cs"

    assert (await send_cs(http, oa, text_body("x" * 2000)))["error"] == 0
    assert (await send_cs(http, oa, text_body("x" * 2001)))["error"] == ERR_PARAM_LIMIT
    assert (await send_cs(http, oa, text_body("")))["error"] == ERR_INVALID_PARAM
    assert (await send_cs(http, oa, text_body("hi", user_id="999")))["error"] == ERR_INVALID_PARAM
    assert (await send_cs(http, oa, {"recipient": {"user_id": USER}}))["error"] == ERR_INVALID_PARAM
    assert (await send_cs(http, oa, {"message": {"text": "hi"}}))["error"] == ERR_INVALID_PARAM

    oa.set_last_interaction(USER, datetime.now() - timedelta(days=8))
    assert (await send_cs(http, oa, text_body("late")))["error"] == ERR_OUTSIDE_WINDOW
    oa.set_last_interaction(USER, datetime.now() - timedelta(days=6))
    in_window = await send_cs(http, oa, text_body("still ok"))
    assert in_window["error"] == 0 and oa.last_sent(USER).free is False  # paid period (48 h - 7 d)

    oa.make_event("unfollow", USER)
    assert (await send_cs(http, oa, text_body("bye")))["error"] == ERR_NOT_FOLLOWER
    assert len(oa.sent) == 3


async def test_oa_attachments_and_reply(oa: FakeZaloOA, http) -> None:
    buttons = {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": "Bạn cần gì?",
            "buttons": [
                {"type": "oa.query.show", "title": "VNeID", "payload": "#vneid"},
                {"type": "oa.open.url", "title": "Cổng DVC", "payload": {"url": "https://dichvucong.gov.vn"}},
            ],
        },
    }
    body = {"recipient": {"user_id": USER}, "message": {"attachment": buttons}}
    assert (await send_cs(http, oa, body))["error"] == 0
    record = oa.last_sent(USER)
    assert record.text is None and record.template_type == "button" and len(record.buttons) == 2

    media = {
        "type": "template",
        "payload": {
            "template_type": "media",
            "elements": [{"media_type": "image", "url": "https://x/y.jpg"}],
        },
    }
    assert (
        await send_cs(
            http, oa, {"recipient": {"user_id": USER}, "message": {"text": "ảnh", "attachment": media}}
        )
    )["error"] == 0

    bad = {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": "x",
            "buttons": [{"type": "nope", "title": "t", "payload": "p"}],
        },
    }
    assert (await send_cs(http, oa, {"recipient": {"user_id": USER}, "message": {"attachment": bad}}))[
        "error"
    ] == ERR_INVALID_PARAM

    event = oa.make_event("user_send_text", USER, "hỏi")
    reply = {"recipient": {"message_id": event["message"]["msg_id"]}, "message": {"text": "trả lời"}}
    assert (await send_cs(http, oa, reply))["error"] == 0
    assert oa.last_sent().reply_to == event["message"]["msg_id"] and oa.last_sent().user_id == USER


async def test_oa_user_detail_and_v2_shutdown(oa: FakeZaloOA, http) -> None:
    detail = await oa_get(
        http, oa, "/v3.0/oa/user/detail", oa.access_token, data=json.dumps({"user_id": USER})
    )
    assert detail["error"] == 0
    assert detail["data"]["display_name"] == "Lan" and detail["data"]["user_is_follower"] is True
    assert detail["data"]["user_last_interaction_date"] == datetime.now().strftime("%d/%m/%Y")
    unknown = await oa_get(
        http, oa, "/v3.0/oa/user/detail", oa.access_token, data=json.dumps({"user_id": "1"})
    )
    assert unknown["error"] == ERR_INVALID_PARAM
    async with http.post(
        oa.api_base_url + "/v2.0/oa/message", json=text_body("x"), headers={"access_token": oa.access_token}
    ) as resp:
        assert (await resp.json())["error"] == -240


async def test_oa_wait_for_sent(oa: FakeZaloOA, http) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await send_cs(http, oa, text_body("muộn"))

    task = asyncio.create_task(later())
    [record] = await oa.wait_for_sent(user_id=USER, timeout=2)
    assert record.text == "muộn"
    await task
    with pytest.raises(TimeoutError, match="wanted 2"):
        await oa.wait_for_sent(2, timeout=0.05)


async def test_oa_faults_rate_limit_outage(oa: FakeZaloOA, http) -> None:
    oa.fail_next("cs", -200, "Send message failed", count=2)
    assert (await send_cs(http, oa, text_body("a")))["error"] == -200
    assert (await send_cs(http, oa, text_body("a")))["message"] == "Send message failed"
    assert (await send_cs(http, oa, text_body("a")))["error"] == 0
    assert oa.stats["injected"] == 2

    oa.enforce_rate_limit(per_second=2)
    results = [(await send_cs(http, oa, text_body("r")))["error"] for _ in range(3)]
    assert results == [0, 0, ERR_RATE_LIMIT] and oa.stats["rate_limited"] == 1
    oa.disable_rate_limit()

    oa.set_outage(5, "5xx")
    async with http.post(oa.cs_url, json=text_body("x"), headers={"access_token": oa.access_token}) as resp:
        assert resp.status == 502 and "nginx" in await resp.text()
    # OAuth host is unaffected by a default (API-host) outage.
    assert "access_token" in await refresh(http, oa, oa.refresh_token)
    oa.set_outage(5, "timeout", hang=0.1)
    started = time.monotonic()
    async with http.post(oa.cs_url, json=text_body("x"), headers={"access_token": oa.access_token}) as resp:
        assert resp.status == 504
    assert time.monotonic() - started >= 0.1
    oa.clear_outage()
    oa.fail_next("refresh", -14014, "boom")
    failed = await refresh(http, oa, oa.refresh_token)
    assert failed["error"] == -14014 and "access_token" not in failed


# ------------------------------------------------------------------ Zalo OA: webhook helpers


async def test_oa_signature_matches_independent_computation(oa: FakeZaloOA) -> None:
    body = b'{"event_name":"user_send_text","timestamp":"1700000000000"}'
    expected = hashlib.sha256(b"123" + body + b"1700000000000" + b"s3cret").hexdigest()
    assert zalo_signature("123", body, "1700000000000", "s3cret") == "mac=" + expected
    assert zalo_signature("123", body, 1700000000000, "s3cret", prefix=False) == expected
    assert oa.sign(body, "1700000000000", "123", "s3cret") == "mac=" + expected
    assert verify_zalo_signature("mac=" + expected, "123", body, "1700000000000", "s3cret")
    assert verify_zalo_signature(expected, "123", body, "1700000000000", "s3cret")
    assert not verify_zalo_signature("mac=" + expected, "123", body + b" ", "1700000000000", "s3cret")

    event = oa.make_event("user_send_text", USER, "Làm CCCD ở đâu?")
    raw, headers = oa.webhook_request(event)
    assert json.loads(raw) == event
    own = hashlib.sha256(oa.app_id.encode() + raw + event["timestamp"].encode() + oa.oa_secret_key.encode())
    assert headers["X-ZEvent-Signature"] == "mac=" + own.hexdigest()


async def test_oa_event_shapes(oa: FakeZaloOA) -> None:
    text = oa.make_event("user_send_text", USER, "xin chào", msg_id="m1", timestamp=1700000000123)
    assert text["app_id"] == oa.app_id and text["event_name"] == "user_send_text"
    assert text["sender"] == {"id": USER} and text["recipient"] == {"id": oa.oa_id}
    assert text["message"] == {"msg_id": "m1", "text": "xin chào"}
    assert text["timestamp"] == "1700000000123" and text["user_id_by_app"].isdigit()

    image = oa.make_event("user_send_image", USER)
    assert image["message"]["attachments"][0]["type"] == "image"
    sticker = oa.make_event("user_send_sticker", USER)
    assert sticker["message"]["attachments"][0]["type"] == "sticker"

    follow = oa.make_event("follow", "777", source="oa_profile")
    assert follow["follower"] == {"id": "777"} and follow["oa_id"] == oa.oa_id and "sender" not in follow
    assert follow["source"] == "oa_profile" and oa.user("777")["user_is_follower"] is True
    oa.make_event("unfollow", "777")
    assert oa.user("777")["user_is_follower"] is False

    # A new user message re-opens the window.
    oa.set_last_interaction(USER, datetime.now() - timedelta(days=30))
    oa.make_event("user_send_text", USER, "tôi quay lại")
    assert oa.user(USER)["user_last_interaction_date"] == datetime.now().strftime("%d/%m/%Y")


async def test_oa_deliver_webhook(oa: FakeZaloOA) -> None:
    received: list[tuple[bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers["X-ZEvent-Signature"]))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/zalo", hook)
    async with serve_app(app) as base:
        event = oa.make_event("user_send_text", USER, "hi")
        assert (await oa.deliver_webhook(base + "/zalo", event))[0] == 200
        await oa.deliver_webhook(base + "/zalo", event, secret="wrong")
    (raw, good), (_, bad) = received
    assert verify_zalo_signature(good, oa.app_id, raw, event["timestamp"], oa.oa_secret_key)
    assert not verify_zalo_signature(bad, oa.app_id, raw, event["timestamp"], oa.oa_secret_key)


# ------------------------------------------------------------------ Zalo Bot Platform


async def call(
    http: aiohttp.ClientSession, fake: FakeZaloBot, method: str, body: dict | None = None, token=None
):
    async with http.post(fake.method_url(method, token), json=body or {}) as resp:
        return resp.status, await resp.json()


async def test_bot_get_me_and_wrong_token(bot: FakeZaloBot, http) -> None:
    status, me = await call(http, bot, "getMe")
    assert status == 200 and me["ok"] is True
    assert me["result"] == {
        "id": bot.bot_id,
        "account_name": "bot.TestBot",
        "account_type": "BASIC",
        "can_join_groups": False,
    }
    status, bad = await call(http, bot, "getMe", token="1:wrong")
    assert status == 401 and bad == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    status, unknown = await call(http, bot, "noSuchMethod")
    assert status == 404 and unknown["ok"] is False


async def test_bot_get_updates_once_each_then_408(bot: FakeZaloBot, http) -> None:
    for text in ("một", "hai", "ba"):
        bot.user_sends_text(BOT_USER, text)
    got = []
    for _ in range(3):
        status, data = await call(http, bot, "getUpdates", {"timeout": "30"})
        assert status == 200 and isinstance(data["result"], dict)  # ONE update, not a list
        got.append(data["result"]["message"]["text"])
    assert got == ["một", "hai", "ba"] and bot.pending_updates == []
    update = bot.delivered[0]
    assert update["event_name"] == "message.text.received"
    assert update["message"]["from"] == {"id": BOT_USER, "display_name": "Lan", "is_bot": False}
    assert update["message"]["chat"] == {"id": BOT_USER, "chat_type": "PRIVATE"}
    assert isinstance(update["message"]["date"], int) and update["message"]["date"] > 1_600_000_000_000

    started = time.monotonic()
    status, empty = await call(http, bot, "getUpdates", {"timeout": "30"})
    assert empty == {"ok": False, "error_code": 408, "description": "Request timeout"}
    assert 0.25 <= time.monotonic() - started < 2  # capped long poll


async def test_bot_long_poll_wakes_on_new_update(bot: FakeZaloBot, http) -> None:
    bot.max_long_poll = 3
    task = asyncio.create_task(call(http, bot, "getUpdates", {"timeout": 30}))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    bot.user_sends_image(BOT_USER, caption="giấy tờ")
    _, data = await task
    assert time.monotonic() - started < 1
    assert data["result"]["event_name"] == "message.image.received"
    assert data["result"]["message"]["caption"] == "giấy tờ" and data["result"]["message"]["photo_url"]


async def test_bot_send_message_limits(bot: FakeZaloBot, http) -> None:
    status, _ = await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "hi"})
    assert status == 400  # the user never messaged the bot
    bot.add_user(BOT_USER)
    status, ok = await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "x" * 2000})
    assert status == 200 and set(ok["result"]) == {"message_id", "date"}
    status, too_long = await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "x" * 2001})
    assert status == 400 and too_long["ok"] is False and too_long["error_code"] == 400
    status, empty = await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": ""})
    assert status == 400
    assert bot.texts_to(BOT_USER) == ["x" * 2000]
    status, action = await call(http, bot, "sendChatAction", {"chat_id": BOT_USER, "action": "typing"})
    assert action == {"ok": True} and bot.chat_actions[0]["action"] == "typing"
    status, photo = await call(
        http, bot, "sendPhoto", {"chat_id": BOT_USER, "photo": "https://x/y.jpg", "caption": "c"}
    )
    assert photo["ok"] and bot.last_sent().photo == "https://x/y.jpg"
    [record] = await bot.wait_for_sent(lambda s: s.method == "sendPhoto", timeout=1)
    assert record.text == "c"


async def test_bot_errors_as_http_200(http) -> None:
    async with FakeZaloBot(errors_as_http_status=False, max_long_poll=0.05) as fake:
        status, data = await call(http, fake, "getUpdates", {"timeout": "1"})
        assert status == 200 and data["error_code"] == 408


async def test_bot_webhook_set_get_delete_and_delivery(bot: FakeZaloBot, http) -> None:
    status, bad = await call(
        http, bot, "setWebhook", {"url": "http://example.com/hook", "secret_token": "12345678"}
    )
    assert status == 400 and bad["ok"] is False
    status, short = await call(
        http, bot, "setWebhook", {"url": "https://example.com/hook", "secret_token": "1234567"}
    )
    assert status == 400
    status, ok = await call(
        http, bot, "setWebhook", {"url": "https://example.com/hook", "secret_token": "s3cret-token"}
    )
    assert ok["result"]["url"] == "https://example.com/hook" and ok["result"]["updated_at"] > 0
    _, info = await call(http, bot, "getWebhookInfo")
    assert info["result"]["url"] == "https://example.com/hook"
    status, conflict = await call(http, bot, "getUpdates", {"timeout": "1"})
    assert conflict["ok"] is False and conflict["error_code"] == 409

    received: list[tuple[dict, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Bot-Api-Secret-Token")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with serve_app(app) as base:
        bot.user_sends_text(BOT_USER, "qua webhook")
        assert await bot.deliver_webhook(url=base + "/hook") == [200]
        update_b = bot.make_update("message.sticker.received", BOT_USER, shape="B", sticker="abc")
        assert await bot.deliver_webhook([update_b], url=base + "/hook", shape="B") == [200]
    (flat, secret_a), (wrapped, secret_b) = received
    assert secret_a == secret_b == "s3cret-token"
    assert flat["event_name"] == "message.text.received" and flat["message"]["text"] == "qua webhook"
    assert wrapped["ok"] is True and wrapped["result"]["message"]["sticker"] == "abc"
    assert bot.pending_updates == []

    _, deleted = await call(http, bot, "deleteWebhook")
    assert deleted["result"]["url"] == ""
    _, info = await call(http, bot, "getWebhookInfo")
    assert info["result"]["url"] == ""


async def test_bot_fail_next_and_outage(bot: FakeZaloBot, http) -> None:
    bot.add_user(BOT_USER)
    bot.fail_next("sendMessage", 500, "Internal Server Error")
    status, data = await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "a"})
    assert status == 500 and data["error_code"] == 500
    assert (await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "a"}))[1]["ok"] is True
    bot.set_outage(5)
    async with http.post(bot.method_url("sendMessage"), json={"chat_id": BOT_USER, "text": "b"}) as resp:
        assert resp.status == 502
    assert (await call(http, bot, "getMe"))[1]["ok"] is True  # default outage hits send* only
    bot.clear_outage()
    bot.enforce_rate_limit(per_second=1)
    codes = [(await call(http, bot, "sendMessage", {"chat_id": BOT_USER, "text": "r"}))[0] for _ in range(2)]
    assert codes == [200, 429]
