"""The web chat (/chat) over real HTTP: same conversation, logging, feedback and hand-off as Telegram."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import select
from yarl import URL

from bot.contracts.messages import Reply
from bot.dashboard.webchat import CHAT_COOKIE
from bot.storage.models import Feedback, Handoff, HandoffMessage, QuestionLog, User, WebOutbox
from bot.web import create_app
from tests.dashboard_harness import running_site
from tests.helpers import serve_app
from tests.telegram_harness import FAST_CHAT, TEAM_A, running_bot

OUT_OF_SCOPE = ["con mèo nhà tôi bỏ ăn mấy hôm nay", "cách trồng hoa hồng trong chậu"]


def actions(reply: dict) -> list[str]:
    return [b["action"] for row in reply["buttons"] for b in row]


@pytest.fixture
async def site(database_url):
    async with running_site(database_url) as s:
        await s.account("admin", "admin")
        yield s


async def test_chat_page_is_vietnamese_accessible_and_embeddable(site):
    client = await site.client()
    async with client.http.get(site.url + "/chat?ward=phuong-a") as resp:
        html = await resp.text()
        headers = resp.headers
        cookie = resp.headers.get("Set-Cookie", "")
    assert '<html lang="vi">' in html and 'name="viewport"' in html
    assert "Xin chào" in html and 'data-action="cat:vneid"' in html and 'data-action="human"' in html
    assert 'aria-live="polite"' in html and '<label for="q"' in html and "Phường A" in html
    assert "<script>" not in html and "style=" not in html  # CSP: no inline script or style
    assert 'src="/static/chat.js"' in html
    assert "frame-ancestors *" in headers["Content-Security-Policy"] and "X-Frame-Options" not in headers
    assert cookie.startswith(CHAT_COOKIE) and "HttpOnly" in cookie and "Path=/chat" in cookie
    status, body, headers = await client.raw("/static/chat.js")
    assert status == 200 and b"/chat/api/message" in body
    async with site.runtime.store.sessions() as s:  # opening the page stores nothing
        assert (await s.scalars(select(User))).all() == []


async def test_web_chat_answers_logs_feedback_and_menus(site):
    client = await site.client()
    await client.get("/chat")
    reply = await client.chat("quen mat khau vneid thi lam the nao", ward="phuong-a")
    [answer] = reply["replies"]
    assert answer["kind"] == "answer" and "Quên mật khẩu VNeID" in answer["text"]
    assert any(link["url"].startswith("https://") for link in answer["links"])
    vote = next(a for a in actions(answer) if a.startswith("fb:up:"))
    thanks = await client.chat(action=vote)
    assert "Cảm ơn" in thanks["replies"][0]["text"]
    menu = await client.chat(action="cat:vneid")
    assert "faq:vneid.forgot_password" in actions(menu["replies"][0])
    start = await client.chat("/start")
    assert "Xin chào" in start["replies"][0]["text"]
    async with site.runtime.store.sessions() as s:
        [logged] = (await s.scalars(select(QuestionLog))).all()
        [user] = (await s.scalars(select(User))).all()
        [fb] = (await s.scalars(select(Feedback))).all()
    assert (logged.channel, logged.ward, logged.faq_id, logged.outcome) == ("web", "phuong-a", "vneid.forgot_password",
                                                                            "helpful")
    assert user.channel == "web" and len(user.platform_id) == 32 and logged.user_key != user.platform_id
    assert fb.helpful and fb.question_id == logged.id

    async with client.http.post(site.url + "/chat/api/message", data="text=hi",
                                headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 415  # a cross-site form cannot post here
    async with client.http.post(site.url + "/chat/api/message", json={"text": "hi"},
                                headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403
    async with client.http.post(site.url + "/chat/api/message", json={"text": "   "}) as resp:
        assert resp.status == 400 and "gõ câu hỏi" in (await resp.json())["error"]
    async with client.http.post(site.url + "/chat/api/message", json={"action": "x" * 100}) as resp:
        assert resp.status == 400


async def test_web_chat_offers_choice_buttons_when_unsure(site):
    client = await site.client()
    await client.get("/chat")
    [offer] = (await client.chat("mật khẩu", ward="phuong-a"))["replies"]  # too vague to answer outright
    assert offer["kind"] == "suggest" and "Có phải bạn muốn hỏi" in offer["text"]
    picks = [b for row in offer["buttons"] for b in row if b["action"].startswith("pick:")]
    assert len(picks) >= 2 and actions(offer)[-1].startswith("no:")  # and "Không phải"
    [answer] = (await client.chat(action=picks[1]["action"]))["replies"]
    entry_id = picks[1]["action"].rsplit(":", 1)[1]
    assert answer["kind"] == "answer" and answer["text"].startswith(site.runtime.knowledge.kb.get(entry_id).title)
    async with site.runtime.store.sessions() as s:
        [logged] = (await s.scalars(select(QuestionLog))).all()
    assert (logged.decision, logged.outcome, logged.outcome_faq_id) == ("suggest", "picked", entry_id)
    [other] = (await client.chat("mật khẩu"))["replies"]
    [sorry] = (await client.chat(action=actions(other)[-1]))["replies"]  # none of these
    assert sorry["kind"] == "fallback" and "human" in actions(sorry) and "cat:vneid" in actions(sorry)


async def test_web_handoff_answered_from_dashboard_reaches_returning_citizen(site):
    citizen = await site.client()
    await citizen.get("/chat?ward=phuong-b")
    await citizen.chat(OUT_OF_SCOPE[0], ward="phuong-b")
    second = await citizen.chat(OUT_OF_SCOPE[1], ward="phuong-b")
    assert [r["kind"] for r in second["replies"]] == ["fallback", "offer"]  # offered after two fallbacks
    sent = await citizen.chat(action="human")
    assert "mã #" in sent["replies"][0]["text"]
    follow = await citizen.chat("nhà tôi ở gần chợ")  # no team group: kept for the dashboard
    assert "Đã chuyển thêm" in follow["replies"][0]["text"]
    assert await citizen.updates() == []

    admin = await site.client("admin")
    listing = await admin.get("/dashboard/handoffs?state=open")
    assert "hoa hồng" in listing.text and "Phường B" in listing.text and "Web" in listing.text
    async with site.runtime.store.sessions() as s:
        handoff = (await s.scalars(select(Handoff))).one()
    page = await admin.get(f"/dashboard/handoffs/{handoff.id}")
    assert "hoa hồng" in page.text and "gần chợ" in page.text
    done = await admin.post(f"/dashboard/handoffs/{handoff.id}/reply", {"text": "Bạn tưới nước vừa đủ nhé."},
                            csrf_from=f"/dashboard/handoffs/{handoff.id}")
    assert "Đã gửi câu trả lời" in done.text

    # The citizen comes back later (same cookie, new page): the reply is waiting, once.
    returning = await site.client()
    ident = citizen.http.cookie_jar.filter_cookies(URL(site.url + "/chat"))[CHAT_COOKIE].value
    returning.http.cookie_jar.update_cookies({CHAT_COOKIE: ident}, URL(site.url + "/chat"))
    [team] = await returning.updates()
    assert team["kind"] == "team_reply" and "tưới nước" in team["text"]
    assert await returning.updates() == []
    async with site.runtime.store.sessions() as s:
        handoff = (await s.scalars(select(Handoff))).one()
        team_msg = (await s.scalars(select(HandoffMessage).where(HandoffMessage.direction == "team"))).one()
    assert handoff.state == "answered" and handoff.answered_by == "dashboard:admin" and team_msg.delivered

    draft = await admin.post(f"/dashboard/handoffs/{handoff.id}/draft", {}, csrf_from=f"/dashboard/handoffs/{handoff.id}")
    assert "/dashboard/kb/drafts/" in draft.url and "tưới nước vừa đủ" in draft.text
    closed = await admin.post(f"/dashboard/handoffs/{handoff.id}/close", {}, csrf_from=f"/dashboard/handoffs/{handoff.id}")
    assert "Đã đóng" in closed.text
    [notice] = await returning.updates()
    assert "đã xử lý xong" in notice["text"]

    # /xoadulieu removes the web user's queued messages with the user.
    await site.runtime.channels.send("web", (await _web_user(site)).platform_id, _reply("tin chờ"))
    await returning.chat(action="del:yes")
    async with site.runtime.store.sessions() as s:
        assert (await s.scalars(select(WebOutbox))).all() == []


async def _web_user(site):
    async with site.runtime.store.sessions() as s:
        return (await s.scalars(select(User).where(User.channel == "web"))).one()


def _reply(text: str) -> Reply:
    return Reply(text, kind="notice")


async def test_web_citizen_and_telegram_team(database_url):
    """A web user's hand-off goes to the ward's Telegram team; the reply there reaches the web chat."""
    async with running_bot(database_url, **FAST_CHAT, wards="phuong-a:Phường A") as bot:
        async with serve_app(create_app(bot.runtime)) as url:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                await http.get(url + "/chat")

                async def say(**body) -> dict:
                    async with http.post(url + "/chat/api/message", json={"ward": "phuong-a", **body}) as resp:
                        return await resp.json()

                await say(text="đăng ký nuôi ong ở đâu")
                before = len(bot.fake.sent_to(TEAM_A))
                await say(action="human")
                await bot.fake.wait_for_sent(before + 1, chat_id=TEAM_A)
                post = bot.fake.sent_to(TEAM_A)[-1]
                assert "nuôi ong" in post.plain_text and "Phường A" in post.plain_text
                await bot.team_reply(TEAM_A, 555, post.message_id, "Bạn liên hệ hội nông dân phường nhé.")
                async with http.post(url + "/chat/api/updates", json={}) as resp:
                    [reply] = (await resp.json())["replies"]
                assert "hội nông dân" in reply["text"] and reply["kind"] == "team_reply"


async def test_web_chat_limits_messages_per_address(database_url):
    async with running_site(database_url, flood_limit_per_minute=2) as site:
        statuses = []
        for i in range(8):  # a fresh cookie each time, as a script would do
            async with aiohttp.ClientSession() as http, http.post(site.url + "/chat/api/message",
                                                                   json={"text": f"xin chào {i}"}) as resp:
                statuses.append(resp.status)
        assert statuses[:6] == [200] * 6 and statuses[6:] == [429, 429]
