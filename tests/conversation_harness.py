"""In-process conversation harness: the real `Conversation` with storage on SQLite or
PostgreSQL, no HTTP, so conversation rules are tested without a channel fake.

    async with conversation(database_url) as bot:
        chat = bot.chat("42")
        [reply] = await chat.say("xin chào")
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from bot.contracts.messages import IncomingMessage, Reply
from bot.matching.live import LiveKnowledge
from bot.runtime import conversation_config, open_store
from bot.settings import Settings, load_settings
from bot.storage.store import Store
from handlers.conversation import Conversation, Outcome
from knowledge.schema import Entry
from tests.knowledge_cache import knowledge_for


def actions(reply: Reply) -> list[str]:
    return [button.action for row in reply.buttons for button in row]


@dataclass
class Chat:
    """One citizen talking to one conversation (one process)."""

    conversation: Conversation
    user_id: str
    channel: str = "web"

    async def send(self, text: str | None = None, action: str | None = None) -> Outcome:
        return await self.conversation.respond(IncomingMessage(self.channel, self.user_id, text=text, action=action))

    async def say(self, text: str) -> list[Reply]:
        return (await self.send(text)).replies

    async def press(self, action: str) -> list[Reply]:
        return (await self.send(action=action)).replies


@dataclass
class Harness:
    store: Store
    knowledge: LiveKnowledge
    settings: Settings
    conversation: Conversation = field(init=False)

    def process(self) -> Conversation:
        """A conversation as another process would have it: same database, own memory."""
        config = conversation_config(self.settings)
        config.flood_limit_per_minute = 0
        return Conversation(self.knowledge, self.store, None, config)

    def chat(self, user_id: str = "1", conversation: Conversation | None = None) -> Chat:
        return Chat(conversation or self.conversation, user_id)

    async def rows(self, model, *where) -> list:
        """Rows in the order they were written (by primary key): without ORDER BY, PostgreSQL
        returns an updated row after the others."""
        async with self.store.sessions() as s:
            key = sa_inspect(model).primary_key
            return list((await s.scalars(select(model).where(*where).order_by(*key))).all())


@contextlib.asynccontextmanager
async def conversation(database_url: str, extra_entries: list[Entry] = (), **overrides) -> AsyncIterator[Harness]:
    """The real conversation on `database_url`; `extra_entries` replace or add knowledge-base entries."""
    settings = load_settings(_env_file=None, telegram_bot_token="", database_url=database_url, **overrides)
    knowledge = knowledge_for(settings, extra_entries)  # indexed once per test process
    engine, store = await open_store(settings)
    harness = Harness(store, knowledge, settings)
    harness.conversation = harness.process()
    try:
        yield harness
    finally:
        store.group.close()
        await engine.dispose()
