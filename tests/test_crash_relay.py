"""The process is killed while relaying a team reply; after a restart the citizen still gets it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select

from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.models import HandoffMessage
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import eventually
from tests.telegram_harness import TEAM_DEFAULT, TOKEN, human
from tests.test_campaign_process import free_port, start_bot


@contextlib.asynccontextmanager
async def team_replies(database_url: str) -> AsyncIterator[Callable[[], Awaitable[list[HandoffMessage]]]]:
    """A reader of the stored team replies on one connection pool (opening the store, which
    checks the migrations, on every look would cost more than the look)."""
    engine, store = await open_store(load_settings(_env_file=None, database_url=database_url, user_key_secret="x"))

    async def read() -> list[HandoffMessage]:
        async with store.sessions() as s:
            return list(await s.scalars(select(HandoffMessage).where(HandoffMessage.direction == "team")))

    try:
        yield read
    finally:
        await engine.dispose()


@pytest.mark.slow(9)
async def test_sigkill_during_relay_then_restart_delivers_the_reply_once(database_url):
    async with FakeTelegram(token=TOKEN) as fake:
        fake.add_private_chat(1)
        fake.add_group(TEAM_DEFAULT, "Tổ CNS")
        env = {"DATABASE_URL": database_url, "USER_KEY_SECRET": "x", "TELEGRAM_BOT_TOKEN": TOKEN,
               "TELEGRAM_API_BASE_URL": fake.url, "TEAM_CHATS": f"default:{TEAM_DEFAULT}",
               "HANDOFF_DELIVERY_LEASE_SECONDS": "2", "JOBS_TICK_SECONDS": "0.5", "WEB_PORT": str(free_port())}
        first = await start_bot(env)
        try:
            fake.user_sends_text(1, "xin giấy phép karaoke ở đâu")
            await fake.wait_for_sent(1, chat_id=1, timeout=30)
            fake.user_presses(1, fake.sent_to(1)[-1].message_id, human(fake.sent_to(1)[-1]))
            post = (await fake.wait_for_sent(lambda s: "karaoke" in s.plain_text, chat_id=TEAM_DEFAULT, timeout=30))[0]
            # updates run concurrently: the group post is tied to its thread only once the hand-off
            # step has finished, which the citizen's confirmation shows (a member cannot answer sooner)
            await fake.wait_for_sent(lambda s: "đã chuyển câu hỏi" in s.plain_text, chat_id=1, timeout=30)
            fake.set_outage(float("inf"), mode="5xx", methods=["sendMessage"])
            before = len(fake.sent_to(1))
            fake.member_replies_in_group(TEAM_DEFAULT, 555, post.message_id, "Bạn hỏi bộ phận một cửa phường nhé.")
            # the reply is stored, its delivery keeps failing
            async with team_replies(database_url) as stored_team_replies:
                await eventually(stored_team_replies, timeout=60, what="the stored team reply")
            await asyncio.sleep(0.5)
        finally:
            first.kill()  # SIGKILL mid-relay
            await first.wait()
        async with team_replies(database_url) as stored_team_replies:
            [row] = await stored_team_replies()
        assert not row.delivered and len(fake.sent_to(1)) == before
        fake.clear_outage()
        env["WEB_PORT"] = str(free_port())
        second = await start_bot(env)
        try:
            await fake.wait_for_sent(lambda s: "một cửa" in s.plain_text, chat_id=1, timeout=60)
            await asyncio.sleep(1.5)  # three job rounds: no second copy
        finally:
            second.terminate()
            await second.wait()
    assert sum("một cửa" in s.plain_text for s in fake.sent_to(1)) == 1
    async with team_replies(database_url) as stored_team_replies:
        [row] = await stored_team_replies()
    assert row.delivered
