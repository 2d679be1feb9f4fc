"""Freshness as citizens and admins see it in Telegram (real PTB Application, fake Bot API,
both databases): the source line under answers, a suspended entry answered with a notice and
the hand-off (taking effect through the knowledge reload), and the weekly digest sent once."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select

from bot.contracts import texts
from bot.dashboard.overlay import OverlaySync, polling
from bot.freshness import digest_period, send_digest_if_due
from bot.jobs import run_round
from bot.localtime import vn_today
from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.dashboard_queries import DashboardQueries
from bot.storage.kb_status import KbStatusQueries
from bot.storage.models import AuditLog, Feedback, utcnow
from tests.helpers import eventually
from tests.telegram_harness import ADMIN, FAST_CHAT, TEAM_DEFAULT, buttons, running_bot

QUESTION = "quen mat khau vneid thi lam the nao"


async def test_source_line_and_suspension_with_hand_off(database_url):
    async with running_bot(database_url, **FAST_CHAT, kb_reload_seconds=0.2) as bot:
        [answer] = await bot.say(1, QUESTION)
        lines = answer.plain_text.splitlines()
        source = lines[lines.index(texts.FEEDBACK_QUESTION) - 2]
        entry = bot.runtime.knowledge.kb.get("vneid.forgot_password")
        assert source.startswith("Nguồn: ") and source.endswith(f" · cập nhật {entry.reviewed:%d/%m/%Y}")
        assert "://" not in source and "." in source.split(" · ")[0]  # a site name, not a whole URL

        sync = OverlaySync(bot.runtime, DashboardQueries(bot.store))
        async with polling(sync, bot.runtime.settings.kb_reload_seconds):
            # Another process (the CLI, another worker) records the suspension in the database.
            other_engine, other = await open_store(load_settings(_env_file=None, database_url=database_url,
                                                                 user_key_secret="test-secret"))
            try:
                await KbStatusQueries(other.sessions).set_suspended("vneid.forgot_password", "lan", True)

                async def suspended() -> bool:
                    return "vneid.forgot_password" in bot.runtime.knowledge.kb.suspended

                await eventually(suspended)
                [notice] = await bot.say(1, QUESTION)
                assert "đang được cập nhật" in notice.plain_text and entry.answer_text[:40] not in notice.plain_text
                [hand_off] = [d for d in buttons(notice) if d.startswith("human")]
                assert hand_off != "human"  # it carries the question
                [sent] = await bot.press(1, notice, hand_off)
                assert "#" in sent.plain_text and "Tổ công nghệ số cộng đồng" in sent.plain_text
                await bot.fake.wait_for_sent(1, chat_id=TEAM_DEFAULT, timeout=10)
                assert any(QUESTION in (m.plain_text or "") for m in bot.fake.sent_to(TEAM_DEFAULT))

                await KbStatusQueries(other.sessions).set_suspended("vneid.forgot_password", "lan", False)

                async def resumed() -> bool:
                    return not bot.runtime.knowledge.kb.suspended

                await eventually(resumed)
            finally:
                await other_engine.dispose()
        [menu] = await bot.say(1, "/menu")
        [listing] = await bot.press(1, menu, "cat:vneid")
        [again] = await bot.press(1, listing, "faq:vneid.forgot_password")
        assert again.plain_text.startswith(entry.title) and "Nguồn: " in again.plain_text


async def test_weekly_digest_goes_to_admins_once(database_url, tmp_path):
    local = tmp_path / "local.yaml"
    local.write_text(f"entries:\n  - id: vneid.activate\n    reviewed: {vn_today() - dt.timedelta(days=400)}\n",
                     encoding="utf-8")
    async with running_bot(database_url, **FAST_CHAT, knowledge_local_file=local) as bot:
        queries = DashboardQueries(bot.store)
        await queries.upsert_staff("lan", None, "admin", None, "3")  # an admin linked to Telegram user 3
        await queries.upsert_staff("minh", None, "staff", None, "2")  # staff: no digest
        async with bot.store.sessions.begin() as s:
            s.add_all([Feedback(user_key="k", faq_id="vneid.forgot_password", helpful=False),
                       Feedback(user_key="k", faq_id="vneid.forgot_password", helpful=False,
                                created_at=utcnow() - dt.timedelta(days=20))])  # older than the digest's week
        assert await run_round(bot.runtime, "proc-1", 1, {})
        await bot.fake.wait_for_sent(1, chat_id=ADMIN, timeout=10)
        await bot.fake.wait_for_sent(1, chat_id=3, timeout=10)
        [digest] = bot.fake.sent_to(ADMIN)
        assert digest.plain_text.startswith("Bản tin rà soát kho kiến thức")
        assert "(vneid.activate): quá hạn 220 ngày" in digest.plain_text  # 400 days ago, every 180 days
        assert "(vneid.forgot_password): 1 👎" in digest.plain_text
        assert bot.fake.sent_to(3)[0].plain_text == digest.plain_text and not bot.fake.sent_to(2)

        # More rounds, a restarted process, another process: the week's digest is not sent again.
        assert await run_round(bot.runtime, "proc-1", 1, {})
        assert not await send_digest_if_due(bot.runtime)
        engine, restarted = await open_store(bot.runtime.settings)
        try:
            assert not await send_digest_if_due(dataclasses.replace(bot.runtime, store=restarted))
            assert await KbStatusQueries(restarted.sessions).last_period("kb-digest") == digest_period(
                dt.datetime.now(dt.UTC), "mon 08:00")
        finally:
            await engine.dispose()
        # Next week it goes again.
        assert await send_digest_if_due(bot.runtime, dt.datetime.now(dt.UTC) + dt.timedelta(days=7))
        await bot.fake.wait_for_sent(2, chat_id=ADMIN, timeout=10)
        assert len(bot.fake.sent_to(ADMIN)) == 2 and len(bot.fake.sent_to(3)) == 2
        async with bot.store.sessions() as s:
            audit = [(a.actor, a.action, a.detail["sent"]) for a in await s.scalars(
                select(AuditLog).where(AuditLog.action == "kb.digest"))]
        assert audit == [("jobs", "kb.digest", 2), ("jobs", "kb.digest", 2)]


def test_digest_period_is_the_last_scheduled_moment_in_vietnam_time():
    vn = dt.timezone(dt.timedelta(hours=7))
    monday_7 = dt.datetime(2026, 12, 7, 7, 59, tzinfo=vn)
    assert digest_period(monday_7, "mon 08:00") == "2026-11-30"  # not yet: still last week's
    assert digest_period(monday_7 + dt.timedelta(minutes=1), "mon 08:00") == "2026-12-07"
    assert digest_period(dt.datetime(2026, 12, 13, 23, 0, tzinfo=vn), "mon 08:00") == "2026-12-07"
    assert digest_period(dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC), "mon 08:00") == "2026-12-07"  # 08:00 ICT
    assert digest_period(monday_7, "off") is None
