"""The numbered choices last shown to a user of a text-only channel (`reply_choices`), so a
later "2" means the second button whichever process receives it (bot/channels/choices.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import ReplyChoices, User, utcnow


class ReplyChoiceRows:
    def __init__(self, sessions: async_sessionmaker):
        self.sessions = sessions

    @staticmethod
    async def _user_id(s, channel: str, platform_id: str) -> int | None:
        return await s.scalar(select(User.id).where(User.channel == channel, User.platform_id == platform_id))

    async def replace(self, channel: str, platform_id: str, payload: dict[str, Any] | None) -> None:
        """Replace the user's choices with `payload` (None: forget them); nothing for an unknown user."""
        for attempt in range(2):  # a concurrent first insert for the same user: retry as an update
            try:
                async with self.sessions.begin() as s:
                    user_id = await self._user_id(s, channel, platform_id)
                    if user_id is None:
                        return
                    if payload is None:
                        await s.execute(delete(ReplyChoices).where(ReplyChoices.user_id == user_id))
                        return
                    row = await s.get(ReplyChoices, user_id)
                    if row is None:
                        s.add(ReplyChoices(user_id=user_id, payload=payload, updated_at=utcnow()))
                    else:
                        row.payload, row.updated_at = payload, utcnow()
                return
            except IntegrityError:
                if attempt:
                    raise

    async def payload(self, channel: str, platform_id: str) -> dict[str, Any] | None:
        async with self.sessions() as s:
            return await s.scalar(select(ReplyChoices.payload).join(User, User.id == ReplyChoices.user_id).where(
                User.channel == channel, User.platform_id == platform_id))
