"""Per-user conversation context in the database (table `conversation_context`).

Several processes may serve the same citizen, so "what did the bot just answer" cannot live in
process memory. One row per user, replaced after each answer; older than `TTL` counts as none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.group_commit import GroupCommit, SaveContext
from bot.storage.models import ConversationContext, utcnow

TTL = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class DialogueContext:
    """The entry last answered (None: only choices were shown) and the entries last offered."""

    faq_id: str | None
    choices: tuple[str, ...] = field(default_factory=tuple)
    at: dt.datetime | None = None


class ContextStore:
    """Reads with a plain SELECT; writes go through the grouped writes of every message
    (bot/storage/group_commit.py), so a context costs no transaction of its own."""

    def __init__(self, sessions: async_sessionmaker, group: GroupCommit, ttl: dt.timedelta = TTL):
        self.sessions = sessions
        self.group = group
        self.ttl = ttl

    async def load(self, user_id: int, now: dt.datetime | None = None) -> DialogueContext | None:
        """The user's context, or None when there is none or it is older than the TTL."""
        now = now or utcnow()
        table = ConversationContext
        async with self.group.engine.connect() as conn:  # Core, not a session: this runs for most messages
            row = (await conn.execute(select(table.faq_id, table.choices, table.updated_at)
                                      .where(table.user_id == user_id))).first()
        if row is None or now - row.updated_at > self.ttl:
            return None
        return DialogueContext(row.faq_id, tuple(row.choices or ()), row.updated_at)

    async def save(self, user_id: int, context: DialogueContext) -> None:
        """Replace the user's context (stamped with the time of the write)."""
        await self.group.submit(SaveContext(user_id, context.faq_id, tuple(context.choices)))

    async def clear(self, user_id: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(delete(ConversationContext).where(ConversationContext.user_id == user_id))
