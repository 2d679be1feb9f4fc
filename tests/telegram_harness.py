"""Runs the real service pieces (PTB Application, storage, conversation) against FakeTelegram."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text

from bot.runtime import Runtime
from bot.settings import load_settings
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from tests.knowledge_cache import knowledge_for

TOKEN = "123456:TEST-token"
TEAM_A = -100111  # community team of phuong-a
TEAM_DEFAULT = -100999
ADMIN = 900
WARDS = "phuong-a:Phường A,phuong-b:Phường B"
# For conversation tests, which send one chat many messages in a few seconds: at the production
# spacing (CHAT_SEND_INTERVAL_SECONDS=1: 3 live messages per 3 s) later replies waited seconds
# each. Not the default here: the pacing and campaign tests check that spacing through this harness.
FAST_CHAT = {"chat_send_interval_seconds": 0.05}


class Harness:
    def __init__(self, fake: FakeTelegram, runtime: Runtime):
        self.fake = fake
        self.runtime = runtime

    @property
    def store(self):
        return self.runtime.store

    async def _collect(self, chat_id: int, before: int, expect: int = 1) -> list[SentMessage]:
        await self.fake.wait_for_sent(before + expect, timeout=8.0, chat_id=chat_id)
        # Replies come as one or more messages, all sent by the handler of the update (the
        # Telegram channel starts no task of its own). The reply is complete once no update is
        # queued or being handled, no send to the chat waits for its turn (the pacer may hold a
        # reply's later parts back: a few per chat at once, then one per interval) and the
        # count held still for a moment. A fixed 0.25 s of quiet per turn cost the suite minutes.
        telegram = self.runtime.telegram
        app, pacer = telegram.app, telegram.pacer
        while True:
            count = len(self.fake.sent_to(chat_id))
            await asyncio.sleep(0.03)
            if len(self.fake.sent_to(chat_id)) == count and not pacer.waiting(chat_id) \
                    and app.update_queue.empty() and app.update_processor.current_concurrent_updates == 0:
                return self.fake.sent_to(chat_id)[before:]

    async def say(self, user_id: int, text: str, expect: int = 1) -> list[SentMessage]:
        before = len(self.fake.sent_to(user_id))
        self.fake.user_sends_text(user_id, text)
        return await self._collect(user_id, before, expect)

    async def press(self, user_id: int, message: SentMessage, data: str, expect: int = 1) -> list[SentMessage]:
        before = len(self.fake.sent_to(user_id))
        self.fake.user_presses(user_id, message.message_id, data)
        return await self._collect(user_id, before, expect)

    async def team_reply(self, group: int, member: int, reply_to: int, text: str) -> list[SentMessage]:
        before = len(self.fake.sent_to(group))
        self.fake.member_replies_in_group(group, member, reply_to, text)
        return await self._collect(group, before)


def buttons(message: SentMessage) -> dict[str, str]:
    """callback_data -> label of a sent message's inline keyboard."""
    markup = message.reply_markup or {}
    return {b["callback_data"]: b["text"] for row in markup.get("inline_keyboard", []) for b in row
            if "callback_data" in b}


def human(message: SentMessage) -> str:
    """The callback data of a message's "send to the team" button (it names the question)."""
    [data] = [d for d in buttons(message) if d == "human" or d.startswith("human:")]
    return data


def settings_for(fake: FakeTelegram, database_url: str, **overrides):
    values = dict(
        database_url=database_url, telegram_bot_token=TOKEN, telegram_api_base_url=fake.url,
        wards=WARDS, team_chats=f"phuong-a:{TEAM_A},default:{TEAM_DEFAULT}", bot_admins=f"telegram:{ADMIN}",
        user_key_secret="test-secret", flood_limit_per_minute=20,
    )
    values.update(overrides)
    return load_settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def running_bot(database_url: str, **overrides) -> AsyncIterator[Harness]:
    async with FakeTelegram(token=TOKEN, local_mode=True) as fake:
        fake.add_group(TEAM_A, "Tổ CNS phường A")
        fake.add_group(TEAM_DEFAULT, "Tổ CNS chung")
        for user in (1, 2, 3, ADMIN):
            fake.add_private_chat(user, first_name=f"User{user}")
        settings = settings_for(fake, database_url, **overrides)
        runtime = await Runtime.open(settings, knowledge_for(settings))
        await runtime.start_channels()
        try:
            yield Harness(fake, runtime)
        finally:
            await runtime.close()


async def make_inserts_fail(bot, table: str, condition: str = "") -> None:
    """A real database failure on one kind of write (a trigger), not a stand-in for our code."""
    async with bot.store.engine.begin() as conn:
        if bot.store.engine.dialect.name == "sqlite":
            when = f"WHEN {condition}" if condition else ""
            await conn.execute(text(f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} {when} "
                                    "BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END"))
            return
        await conn.execute(text("CREATE OR REPLACE FUNCTION fail_insert() RETURNS trigger AS "
                                "$$ BEGIN RAISE EXCEPTION 'simulated disk failure'; END $$ LANGUAGE plpgsql"))
        when = f"WHEN ({condition})" if condition else ""
        await conn.execute(text(f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} FOR EACH ROW {when} "
                                "EXECUTE FUNCTION fail_insert()"))
