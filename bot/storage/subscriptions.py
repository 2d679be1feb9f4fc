"""Citizens' subscriptions to ward and topic notices (`subscriptions`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import Subscription


class Subscriptions:
    def __init__(self, sessions: async_sessionmaker):
        self.sessions = sessions

    async def get(self, user_id: int) -> Subscription | None:
        async with self.sessions() as s:
            return await s.scalar(select(Subscription).where(Subscription.user_id == user_id))

    async def save(self, user_id: int, *, ward: str | None = None, topics: list[str] | None = None,
                   active: bool | None = None) -> Subscription:
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Subscription).where(Subscription.user_id == user_id))
            if row is None:
                row = Subscription(user_id=user_id, topics=[], active=False)
                s.add(row)
            if ward is not None:
                row.ward = ward
            if topics is not None:
                row.topics = sorted(set(topics))
            if active is not None:
                row.active = active
            await s.flush()
            return row
