"""Per-user conversation context in the database (table `conversation_context`).

Several processes may serve the same citizen, so "what did the bot just answer" cannot live in
process memory. One row per user, replaced after each answer; older than `TTL` counts as none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import ConversationContext, utcnow

TTL = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class DialogueContext:
    """The entry last answered (None: only choices were shown) and the entries last offered."""

    faq_id: str | None
    choices: tuple[str, ...] = field(default_factory=tuple)
    at: dt.datetime | None = None


class ContextStore:
    def __init__(self, sessions: async_sessionmaker, ttl: dt.timedelta = TTL):
        self.sessions = sessions
        self.ttl = ttl

    async def load(self, user_id: int, now: dt.datetime | None = None) -> DialogueContext | None:
        """The user's context, or None when there is none or it is older than the TTL."""
        now = now or utcnow()
        async with self.sessions() as s:
            row = await s.get(ConversationContext, user_id)
            if row is None or now - row.updated_at > self.ttl:
                return None
            return DialogueContext(row.faq_id, tuple(row.choices or ()), row.updated_at)

    async def save(self, user_id: int, context: DialogueContext) -> None:
        """Replace the user's context (a concurrent first insert is retried as an update)."""
        at = context.at or utcnow()
        for attempt in range(2):
            try:
                async with self.sessions.begin() as s:
                    row = await s.get(ConversationContext, user_id)
                    if row is None:
                        s.add(ConversationContext(user_id=user_id, faq_id=context.faq_id,
                                                  choices=list(context.choices), updated_at=at))
                    else:
                        row.faq_id, row.choices, row.updated_at = context.faq_id, list(context.choices), at
                return
            except IntegrityError:
                if attempt:
                    raise

    async def clear(self, user_id: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(delete(ConversationContext).where(ConversationContext.user_id == user_id))
