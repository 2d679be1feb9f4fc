"""/healthz and /api/ask over real HTTP, and `python -m bot` started for real."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.contracts import texts
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.web import create_app
from tests.helpers import free_port, serve_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def base_url(runtime):
    async with serve_app(create_app(runtime)) as url:
        yield url


async def test_healthz_names_kb_size_and_channels(base_url, runtime):
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["knowledge_entries"] == len(runtime.knowledge.kb) >= 63
    assert body["channels"] == runtime.channel_states
    assert body["channels"]["telegram"] == "off: TELEGRAM_BOT_TOKEN is not set"
    assert body["enabled_channels"] == ["web"]


def test_channel_states_follow_the_settings():
    settings = load_settings(_env_file=None, telegram_bot_token="123:abc", zalo_oa_app_id="42")
    states = Runtime.build(settings).channel_states
    assert states["web"] == "on"
    assert states["telegram"].startswith("off: configured")  # a token, but no database in this process
    assert "ZALO_OA_SECRET_KEY" in states["zalo"] and "ZALO_OA_APP_ID" not in states["zalo"]
    assert states["zalobot"] == "off: ZALO_BOT_TOKEN is not set"



@pytest.mark.parametrize("event_loop", ["auto", "asyncio"])
async def test_service_starts_without_tokens_and_logs_why_channels_are_off(tmp_path, event_loop):
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3", "USER_KEY_SECRET": "test-secret",
        "LOG_FORMAT": "text", "LOG_LEVEL": "INFO", "EVENT_LOOP": event_loop,
        "TELEGRAM_BOT_TOKEN": "", "ZALO_BOT_TOKEN": "",
        "ZALO_OA_APP_ID": "", "ZALO_OA_SECRET_KEY": "", "ZALO_OA_ACCESS_TOKEN": "", "ZALO_OA_REFRESH_TOKEN": "",
    }
    # Run from an empty folder so no developer .env is read.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    body = None
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if proc.returncode is not None:
                    break
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        body = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
            assert body is not None, "the service never answered /healthz"
            async with http.post(f"http://127.0.0.1:{port}/api/ask", json={"text": "😀\x00"}) as resp:
                assert resp.status == 200 and (await resp.json())["replies"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    log = err.decode()
    assert proc.returncode == 0, log
    assert body["status"] == "ok" and body["enabled_channels"] == ["web"]
    assert "Traceback" not in log
    uvloop_here = importlib.util.find_spec("uvloop") is not None
    expected_loop = "uvloop" if event_loop == "auto" and uvloop_here else "asyncio"
    for line in (f"event loop: {expected_loop}", "channel web: on", "channel telegram: off: TELEGRAM_BOT_TOKEN is not set",
                 "channel zalo: off: ZALO_OA_APP_ID is not set", "channel zalobot: off: ZALO_BOT_TOKEN is not set"):
        assert line in log, log


async def test_ask_returns_answer_with_text_and_buttons(base_url):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/ask", json={"text": "quen mat khau vneid thi lam sao"}) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["decision"] in ("answer", "suggest")
    assert body["faq_id"] == "vneid.forgot_password"
    reply = body["replies"][0]
    if body["decision"] == "answer":
        assert "mật khẩu" in reply["text"].lower()
        actions = [b["action"] for row in reply["buttons"] for b in row]
        assert "fb:up:0:vneid.forgot_password" in actions
    else:
        assert reply["buttons"][0][0]["action"] == "pick:0:vneid.forgot_password"


async def test_ask_out_of_scope_falls_back_and_offers_a_person(base_url):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/ask", json={"text": "công thức nấu phở bò ngon"}) as resp:
            body = await resp.json()
    assert body["decision"] == "fallback"
    assert body["faq_id"] is None
    actions = [b["action"] for row in body["replies"][0]["buttons"] for b in row]
    assert "human" in actions and "cat:vneid" in actions


async def test_ask_small_talk_says_so_and_names_the_small_talk_entry(base_url):
    # An integration must tell a goodbye from an error: kind "smalltalk", the KB's small-talk id.
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/ask", json={"text": "Thôi tui đi nấu cơm đây, bái bai nha"}) as resp:
            body = await resp.json()
    assert (body["kind"], body["faq_id"], body["decision"]) == ("smalltalk", "bot.smalltalk", None)
    assert body["replies"][0]["text"] == texts.SMALLTALK_GOODBYE
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/ask", json={"text": "quen mat khau vneid"}) as resp:
            assert (await resp.json())["kind"] in ("answer", "suggest")


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"text": 5}', 400),
        (b"{}", 400),
        (b'{"text": "' + b"a" * 10_001 + b'"}', 413),
        (b"\xff\xfe", 400),
    ],
)
async def test_ask_rejects_bad_input_politely(base_url, payload, status):
    async with aiohttp.ClientSession() as http, http.post(f"{base_url}/api/ask", data=payload,
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == status
        body = await resp.json()
    assert body["error"] and "Traceback" not in body["error"]


async def test_ask_oversized_body_is_refused(base_url):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/ask", data=b"x" * 200_000) as resp:
            assert resp.status == 413


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀🙏👍", "\x00\x01\x02\x1b[2J", "a" * 10_000, "\u202e\u200b\u2066", "?!...", "ٱلسَّلَامُ عَلَيْكُمْ",
     "\ud800 lone surrogate", "quên mật khẩu vneid " * 500],
)
async def test_ask_odd_text_never_crashes(base_url, text):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/ask", json={"text": text}) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["replies"] and body["replies"][0]["text"].strip()
    assert "Traceback" not in body["replies"][0]["text"]
    if not any(ch.isalpha() for ch in text):  # nothing to understand: never a guessed answer
        assert body["decision"] in (None, "fallback")  # a fallback, or small talk ("👍")
        assert body["faq_id"] is None or (body["kind"], body["faq_id"]) == ("smalltalk", "bot.smalltalk")


# --- hostile input: a 4xx or a polite reply, never a 500 with a traceback ---------------------------
HOSTILE_BODIES = [b"[" * 20_000 + b"]" * 20_000, b'{"text": ' + b"9" * 5000 + b"}",
                  b'{"update_id": ' + b"9" * 5000 + b"}", b"\xff\xfe\xfa", b'{"text": "' + b"\xc3\x28" + b'"}']


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=["nested", "long-int", "long-int-update", "not-utf8", "bad-utf8"])
async def test_hostile_json_gets_a_400_and_no_traceback(body, caplog):
    from tests.helpers import serve_app

    runtime = Runtime.build(load_settings(_env_file=None, telegram_bot_token=""))
    caplog.set_level(logging.ERROR)
    async with serve_app(create_app(runtime)) as base, aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/ask", data=body, headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400, await resp.text()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_forged_button_numbers_are_refused_before_the_database():
    from bot.contracts.payloads import numbers_fit as action_numbers_fit

    assert action_numbers_fit("fb:up:123:vneid.what_is") and action_numbers_fit("camp:seg:7:w:phuong-a")
    assert not action_numbers_fit("fb:up:99999999999999999999:x")
    assert not action_numbers_fit("pick:" + "9" * 5000 + ":x")


@pytest.mark.parametrize("host, token, warned", [("0.0.0.0", "", True), ("192.168.1.10", "", True),
                                                 ("bot.phuong.example", "", True), ("0.0.0.0", "s3cret", False),
                                                 ("127.0.0.1", "", False), ("::1", "", False),
                                                 ("localhost", "", False)])
def test_open_metrics_are_reported_at_start_up(host, token, warned, caplog):
    settings = load_settings(_env_file=None, telegram_bot_token="", web_host=host, metrics_token=token)
    with caplog.at_level(logging.WARNING, logger="bot.web"):
        create_app(Runtime.build(settings))
    found = [r for r in caplog.records if "METRICS_TOKEN" in r.getMessage()]
    assert bool(found) == warned and all(r.levelno == logging.WARNING for r in found)
