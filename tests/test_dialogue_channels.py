"""Small talk, two questions and follow-ups end to end on every channel: Telegram (fake Bot
API), Zalo OA and Zalo Bot (fakes), the web chat over HTTP, the terminal chat in a subprocess
and the converse command in-process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

import pytest

from bot.contracts import texts
from bot.storage.models import ConversationContext, QuestionLog
from tests.fakes.zalo_bot import FakeZaloBot
from tests.fakes.zalo_oa import FakeZaloOA
from tests.helpers import cli_in_process
from tests.telegram_harness import ADMIN, FAST_CHAT, buttons, running_bot
from tests.test_cli import ROOT
from tests.zalo_harness import USER, bot_settings, choices, number_of, oa_say, oa_settings, options, running

TWO = "quên mật khẩu vneid với cả muốn đổi số điện thoại luôn thì làm sao"


async def test_telegram_small_talk_two_questions_and_followup(database_url):
    async with running_bot(database_url, **FAST_CHAT) as bot:
        [hello] = await bot.say(7, "xin chào")
        assert hello.plain_text == texts.SMALLTALK_GREETING and "cat:vneid" in buttons(hello)
        answer, offer = await bot.say(7, TWO, expect=2)
        assert "Quên mật khẩu VNeID" in answer.plain_text
        also = next(d for d in buttons(offer) if d.startswith("also:"))
        [second] = await bot.press(7, offer, also)
        assert "Đổi số điện thoại" in second.plain_text
        [followup] = await bot.say(7, "làm ở đâu vậy?")  # after the change-phone answer
        assert "Đổi số điện thoại" in followup.plain_text
        [thanks] = await bot.say(7, "cam on nhieu nha")
        assert thanks.plain_text == texts.SMALLTALK_THANKS
        async with bot.store.sessions() as s:
            from sqlalchemy import select

            decisions = list(await s.scalars(select(QuestionLog.decision).order_by(QuestionLog.id)))
            contexts = list(await s.scalars(select(ConversationContext.faq_id)))
        assert decisions == ["smalltalk", "answer", "answer", "smalltalk"]
        assert contexts == ["vneid.change_phone"]
        [stats] = await bot.say(ADMIN, "/thongke")
        assert "Hôm nay: 2 câu hỏi" in stats.plain_text
        assert "(không tính là câu hỏi): hôm nay 2, 7 ngày qua 2" in stats.plain_text
        [unanswered] = await bot.say(ADMIN, "/chuatraloi")
        assert "cam on" not in unanswered.plain_text and "chào" not in unanswered.plain_text


@pytest.fixture
async def oa():
    async with FakeZaloOA() as fake:
        fake.add_user(USER)
        yield fake


async def test_zalo_oa_thanks_and_second_question_by_number(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        [thanks] = await oa_say(oa, svc, USER, "cảm ơn nhiều nha")
        assert texts.SMALLTALK_THANKS in (thanks.text or thanks.template_text or "")
        sent = await oa_say(oa, svc, USER, TWO)
        found = options(sent)
        second = await oa_say(oa, svc, USER, number_of(found, "Đổi số điện thoại"))
        assert any("Đổi số điện thoại" in (m.text or m.template_text or "") for m in second)
        assert [q.decision for q in await svc.rows(QuestionLog)] == ["smalltalk", "answer"]


async def test_zalo_bot_greeting_and_complaint(database_url):
    async with FakeZaloBot(max_long_poll=0.2) as fake, running(bot_settings(fake, database_url)) as svc:
        chat = "zb-1"

        async def say(text: str) -> list[str]:
            before = len(fake.sent_to(chat))
            fake.user_sends_text(chat, text)
            await fake.wait_for_sent(before + 1, chat_id=chat)
            await svc.channel("zalobot").idle()
            return fake.texts_to(chat)[before:]

        [hello] = await say("alo")
        assert hello.startswith(texts.SMALLTALK_GREETING) and "Gõ" in hello
        [sorry] = await say("trả lời sai hoài, chán quá")
        assert sorry.startswith(texts.SMALLTALK_COMPLAINT) and "Gửi câu hỏi cho cán bộ" in choices(sorry)
        assert {q.decision for q in await svc.rows(QuestionLog)} == {"smalltalk"}


async def test_web_chat_small_talk_is_not_unanswered_and_counts_apart(database_url):
    from tests.dashboard_harness import running_site

    async with running_site(database_url) as site:
        await site.account("admin", "admin")
        client = await site.client()
        await client.get("/chat")
        for text in ("con mèo nhà tôi bỏ ăn mấy hôm nay", "cảm ơn bạn hiền nha", "ok"):
            replies = (await client.chat(text))["replies"]
        assert [r["kind"] for r in replies] == ["smalltalk"]  # no hand-off offer, no streak
        followed = (await client.chat("cách trồng hoa hồng trong chậu"))["replies"]
        assert any(r["text"] == texts.OFFER_TEAM_AFTER_FALLBACKS for r in followed)  # two real fallbacks
        admin = await site.client("admin")
        unanswered = await admin.get("/dashboard/unanswered")
        assert "mèo" in unanswered.text and "hiền" not in unanswered.text
        stats = await admin.get("/dashboard/stats")
        assert '<span class="big">2</span><span>câu hỏi</span>' in stats.text
        assert '<span class="big">2</span><span>lời chào, cảm ơn' in stats.text


async def test_web_chat_followups_two_questions_and_small_talk_as_citizens_write(database_url):
    """Over HTTP: a "gọi số nào" follow-up goes to the related hotline entry, a follow-up in chat
    shorthand gets the entry's fee part, two questions joined by "à còn nữa" after a full stop,
    and "sai rồi" is a complaint, not an unanswered question."""
    from tests.dashboard_harness import running_site

    async with running_site(database_url) as site:
        client = await site.client()
        await client.get("/chat")

        async def texts_of(message: str) -> list[str]:
            return [r["text"] for r in (await client.chat(message))["replies"]]

        await texts_of("tài khoản vneid bị khóa rồi")
        assert "Tổng đài hỗ trợ VNeID" in (await texts_of("gọi số nào để mở"))[0]
        await texts_of("lam ho chieu online the nao")
        [fee] = await texts_of("mất bn tiền z")
        assert fee.startswith("Làm hộ chiếu phổ thông trực tuyến — Lệ phí")
        both = (await client.chat("cách tải vneid. à còn nữa, kích hoạt tài khoản thế nào"))["replies"]
        assert "Tải và cài ứng dụng VNeID" in both[0]["text"]
        offered = [b["label"] for r in both[1:] for row in r["buttons"] for b in row] + [r["text"] for r in both[1:]]
        assert any("Kích hoạt tài khoản VNeID" in t for t in offered)
        replies = (await client.chat("sai rồi"))["replies"]
        assert [(r["kind"], r["text"]) for r in replies] == [("smalltalk", texts.SMALLTALK_COMPLAINT)]
        async with site.runtime.store.sessions() as s:
            from sqlalchemy import select

            decisions = list(await s.scalars(select(QuestionLog.decision).order_by(QuestionLog.id)))
        assert decisions[-1] == "smalltalk" and "fallback" not in decisions


def test_converse_json_lines_keep_context_per_user_and_survive_bad_lines():
    lines = [
        {"id": 1, "user": "a", "text": "xin chào"},
        {"id": 2, "user": "a", "text": "đăng ký tạm trú online thế nào"},
        "not json at all",
        {"id": 4, "user": "b", "text": TWO},
        {"id": 5, "user": "a", "text": "còn lệ phí thì sao?"},
        {"id": 6, "user": "b", "text": "còn cái kia thì sao"},
        {"id": 7, "user": "a"},
        {"id": 8, "user": "c", "text": "làm sổ đỏ online ở đâu vậy"},
    ]
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n"
    proc = cli_in_process("converse", stdin=stdin)  # the command; the chat test below runs a process
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o.get("id") for o in out] == [1, 2, None, 4, 5, 6, 7, 8], proc.stderr
    assert "error" in out[2] and "error" in out[6] and proc.returncode == 1
    for o in out[:2] + out[3:6] + out[7:]:
        assert set(o) == {"id", "kind", "faq_id", "also", "choices", "text"}
    assert out[0]["kind"] == "smalltalk" and out[0]["text"] == texts.SMALLTALK_GREETING
    assert (out[1]["kind"], out[1]["faq_id"]) == ("answer", "vneid.residence_register")
    assert out[3]["faq_id"] == "vneid.forgot_password" and out[3]["also"] == ["vneid.change_phone"]
    assert out[4]["faq_id"] == "vneid.residence_register"  # a's context, not b's
    assert out[4]["text"].startswith("Đăng ký thường trú, tạm trú trực tuyến — Lệ phí")  # the entry's fee facet
    assert out[5]["faq_id"] == "vneid.change_phone"
    assert out[7]["kind"] == "not_covered" and out[7]["faq_id"] is None
    assert out[7]["text"].startswith("Mình chưa có hướng dẫn riêng")


async def test_terminal_chat_piped_numbers_as_shown_no_flood_and_handoff():
    """One `chat` process, fed as a person would: the number typed last is read off the turn
    the process printed (so it is the number as shown), then the hand-off it stands for."""
    fallbacks = ["con mèo nhà tôi bỏ ăn mấy hôm nay", "cách trồng hoa hồng trong chậu"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "chat", cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(("\n".join(["xin chào"] * 25 + fallbacks) + "\n").encode())
        await proc.stdin.drain()
        shown = ""
        async with asyncio.timeout(120):  # until the second fallback's turn is printed, offer and all
            while "Gửi câu hỏi cho cán bộ" not in shown.rsplit(f"> {fallbacks[1]}", 1)[-1] \
                    or f"> {fallbacks[1]}" not in shown:
                line = await proc.stdout.readline()
                assert line, f"chat ended early: {shown[-800:]}"
                shown += line.decode()
        assert shown.count(texts.SMALLTALK_GREETING) == 25 and texts.FLOOD not in shown
        assert "cơ sở dữ liệu tạm" in shown
        last_turn = shown.rsplit("> ", 1)[-1]
        # the second fallback's turn: the fallback reply, then the offer; numbers run across both
        numbered = re.findall(r"^(\d+)\. (.+)$", last_turn, re.M)
        assert [int(n) for n, _label in numbered] == list(range(1, len(numbered) + 1))
        offer_number, label = numbered[-1]  # the offer's button, numbered after the fallback reply's
        assert label == "Gửi câu hỏi cho cán bộ" and int(offer_number) > 1
        out, err = await asyncio.wait_for(proc.communicate(f"{offer_number}\n".encode()), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    handed = out.decode().rsplit("> ", 1)[-1]
    assert f"> {offer_number}" in out.decode() and "Tôi đã ghi nhận câu hỏi của bạn (mã #1)" in handed, \
        out.decode()[-800:]
