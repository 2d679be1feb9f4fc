"""Cancelling a large campaign on SQLite while citizens write: no write may fail with
"database is locked" (the engine, the cancellation and the citizens' logs share one file).

The cause on 100,000 rows: the cancellation skipped every pending row in one UPDATE, holding
the write lock for seconds (about 1 s per 20,000 rows here, several times that under load),
longer than the busy timeout of the writes queued behind it. What the test can check without
depending on timing: no single statement of the cancellation changes more than SKIP_BATCH
rows (the driver's row counts), and no write of the engine or of the citizens failed."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from sqlalchemy import event, func, insert, select

from bot.campaigns.service import SKIP_BATCH
from bot.storage.models import Delivery, QuestionLog, Subscription, User, utcnow
from tests.campaign_helpers import draft
from tests.helpers import eventually
from tests.telegram_harness import running_bot

RECIPIENTS = 20_000
FIRST_ID = 10_000_000


async def _seed(bot, count: int) -> None:
    """Subscribers in bulk (one INSERT each for users and subscriptions), and their chats."""
    now = utcnow()
    async with bot.store.sessions.begin() as s:
        await s.execute(insert(User), [
            {"channel": "telegram", "platform_id": str(FIRST_ID + i), "user_key": f"bulk-{i}", "ward": "phuong-a",
             "active": True, "fallback_streak": 0, "state": "", "created_at": now} for i in range(count)])
        ids = (await s.scalars(select(User.id).where(User.user_key.like("bulk-%")))).all()
        await s.execute(insert(Subscription), [
            {"user_id": uid, "ward": "phuong-a", "topics": [], "active": True, "created_at": now, "updated_at": now}
            for uid in ids])
    for i in range(count):
        bot.fake.add_private_chat(FIRST_ID + i)


@pytest.mark.slow(7)
async def test_cancelling_a_large_campaign_while_citizens_write_fails_no_write(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    url = f"sqlite+aiosqlite:///{tmp_path}/cancel.sqlite3"
    async with running_bot(url, telegram_rate_per_second=200.0, campaign_approval_threshold=RECIPIENTS * 2) as bot:
        await _seed(bot, RECIPIENTS)
        runner = bot.runtime.campaign_runner
        runner.scheduler.poll_seconds = 0.2
        campaign = await bot.runtime.campaigns.create(draft())
        stop = asyncio.Event()
        changed: list[int] = []  # rows changed by each UPDATE of deliveries, once citizens write

        def count_rows(_conn, cursor, statement, _params, _context, _executemany) -> None:
            if statement.lstrip().startswith("UPDATE deliveries"):
                changed.append(cursor.rowcount)

        service = asyncio.create_task(runner.run(stop))
        outage_seen: list[str] = []
        questions = 0

        skipped_all = asyncio.Event()

        async def citizens() -> None:
            nonlocal questions
            citizen = 0
            while not skipped_all.is_set() or questions <= 10:
                citizen = citizen % 3 + 1
                await bot.say(citizen, f"làm căn cước cho con {questions} tuổi ở đâu")
                questions += 1
                if bot.store.outage.down:
                    outage_seen.append(bot.store.outage.reason)

        writing: asyncio.Task | None = None
        try:
            await bot.fake.wait_for_sent(200, timeout=60)  # the campaign is under way
            caplog.clear()  # from here on, no write may fail
            event.listen(bot.store.engine.sync_engine, "after_cursor_execute", count_rows)
            writing = asyncio.create_task(citizens())
            await asyncio.sleep(1.0)
            await bot.runtime.campaigns.cancel(campaign.id, "test")  # the bulk pending -> skipped
            # Citizens keep writing for as long as the engine skips the pending rows (rather than
            # a fixed time that the skipping may or may not fill), and a dozen questions at least.
            with contextlib.suppress(TimeoutError):
                await eventually(lambda: _cancelled_and_closed(bot, campaign.id), timeout=30, step=0.2)
            skipped_all.set()
            await writing
        finally:
            if writing is not None and not writing.done():  # the test failed before it ended
                writing.cancel()
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(service, 30)
        async with bot.store.sessions() as s:
            logged = await s.scalar(select(func.count()).select_from(QuestionLog))
            states = dict((await s.execute(select(Delivery.state, func.count()).where(
                Delivery.campaign_id == campaign.id).group_by(Delivery.state))).all())

    assert changed and max(changed) <= SKIP_BATCH, max(changed)  # the write lock is held for short steps
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not outage_seen and not [p for p in problems if "locked" in p or "unavailable" in p], problems
    assert questions > 10 and logged == questions  # every citizen's question was stored
    assert states.get("skipped", 0) > RECIPIENTS // 2 and not states.get("pending") and not states.get("sending")


async def _cancelled_and_closed(bot, campaign_id: int) -> bool:
    return (await bot.runtime.campaigns.get(campaign_id)).state == "cancelled" and not await _open_rows(bot)


async def _open_rows(bot) -> int:
    async with bot.store.sessions() as s:
        return await s.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.state.in_(("pending", "sending")))) or 0
