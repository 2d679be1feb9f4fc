"""Citizens (`users`): found or created as they write, their dialogue fields, and erasure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.privacy import user_key
from bot.storage import erasure
from bot.storage.group_commit import GroupCommit, Touch
from bot.storage.inbound import InboundEvents
from bot.storage.models import Subscription, User

UPDATABLE = frozenset({"ward", "fallback_streak", "state", "active"})


@dataclass(frozen=True)
class UserInfo:
    id: int
    channel: str
    platform_id: str
    key: str
    ward: str | None
    active: bool
    fallback_streak: int
    state: str


def user_info(row) -> UserInfo:
    """From a User or a row of its columns."""
    return UserInfo(row.id, row.channel, row.platform_id, row.user_key, row.ward, row.active,
                    row.fallback_streak, row.state)


class Users:
    def __init__(self, sessions: async_sessionmaker, group: GroupCommit, events: InboundEvents, secret: str):
        self.sessions = sessions
        self.group = group
        self.events = events
        self._secret = secret

    def key_for(self, channel: str, platform_id: str | int) -> str:
        return user_key(self._secret, channel, platform_id)

    def _touch(self, channel: str, platform_id: str, ward: str | None) -> Touch:
        return Touch(channel, platform_id, self.key_for(channel, platform_id), ward)

    async def touch(self, channel: str, platform_id: str, ward: str | None = None) -> UserInfo:
        """Find or create the user and record that they just wrote to us; `ward`, when the
        channel tells it, replaces the stored one."""
        [row] = await self.group.submit(self._touch(channel, platform_id, ward))
        return user_info(row)

    async def arrive(self, key: str, channel: str, platform_id: str,
                     ward: str | None = None) -> tuple[bool, UserInfo | None]:
        """Claim the inbound event `key` and `touch` the user in one transaction (a citizen's
        message): (fresh, the user). While the database is unreachable: (as the claim alone, None).
        A duplicate still counts as the citizen having written."""
        fresh, row = await self.events.claim(key, self._touch(channel, platform_id, ward))
        return fresh, user_info(row) if row is not None else None

    async def get(self, user_id: int) -> UserInfo | None:
        async with self.sessions() as s:
            row = await s.get(User, user_id)
            return user_info(row) if row else None

    async def update(self, user_id: int, **fields: Any) -> None:
        if not set(fields) <= UPDATABLE:
            raise ValueError(f"cannot update {set(fields) - UPDATABLE}")
        async with self.sessions.begin() as s:
            await s.execute(update(User).where(User.id == user_id).values(**fields))

    async def mark_unreachable(self, channel: str, platform_id: str) -> None:
        """The user blocked the bot or was deactivated: stop sending to them."""
        async with self.sessions.begin() as s:
            row = await s.scalar(select(User).where(User.channel == channel, User.platform_id == platform_id))
            if row is None:
                return
            row.active = False
            await s.execute(update(Subscription).where(Subscription.user_id == row.id).values(active=False))

    async def delete_data(self, user_id: int) -> None:
        """A citizen's /xoadulieu (bot/storage/erasure.py)."""
        await erasure.delete_user_data(self.sessions, user_id)
