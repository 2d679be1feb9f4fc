"""/healthz and /api/ask over real HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from bot.web import create_app
from tests.helpers import serve_app


@pytest.fixture
async def base_url(runtime):
    async with serve_app(create_app(runtime)) as url:
        yield url


async def test_healthz_names_kb_size_and_channels(base_url, runtime):
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["knowledge_entries"] == len(runtime.knowledge.kb) >= 63
    assert body["channels"]["telegram"].startswith("off")
    assert "web" in body["enabled_channels"]


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
    ["", "   ", "😀🙏👍", "\x00\x01\x02\x1b[2J", "a" * 10_000, "\u202e\u200b\u2066", "?!...", "ٱلسَّلَامُ عَلَيْكُمْ"],
)
async def test_ask_odd_text_never_crashes(base_url, text):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/ask", json={"text": text}) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["replies"] and body["replies"][0]["text"]
