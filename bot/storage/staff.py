"""Staff accounts linked to chat identities (`staff`): roles for the chat commands."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import AuditLog, Staff

ROLES = ("admin", "staff", "viewer")


@dataclass(frozen=True)
class StaffListing:
    """One line of `python -m bot staff list`."""

    username: str | None
    role: str
    ward: str | None
    channel: str | None
    platform_id: str | None
    active: bool


class StaffAccounts:
    def __init__(self, sessions: async_sessionmaker):
        self.sessions = sessions

    async def role(self, channel: str, platform_id: str) -> str | None:
        async with self.sessions() as s:
            return await s.scalar(select(Staff.role).where(
                Staff.channel == channel, Staff.platform_id == platform_id, Staff.active.is_(True)))

    async def set(self, channel: str, platform_id: str, role: str, actor: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Staff).where(Staff.channel == channel, Staff.platform_id == platform_id))
            if row is None:
                s.add(Staff(channel=channel, platform_id=platform_id, role=role, active=True))
            else:
                row.role, row.active = role, True
            s.add(AuditLog(actor=actor, action="staff.set", target=f"{channel}:{platform_id}", detail={"role": role}))

    async def remove(self, channel: str, platform_id: str, actor: str) -> bool:
        async with self.sessions.begin() as s:
            result = await s.execute(update(Staff).where(
                Staff.channel == channel, Staff.platform_id == platform_id).values(active=False))
            s.add(AuditLog(actor=actor, action="staff.remove", target=f"{channel}:{platform_id}", detail={}))
            return result.rowcount > 0

    async def ensure_admins(self, admins: list[tuple[str, str]]) -> None:
        for channel, platform_id in admins:
            if await self.role(channel, platform_id) != "admin":
                await self.set(channel, platform_id, "admin", actor="BOT_ADMINS")

    async def listing(self) -> list[StaffListing]:
        """Every account, disabled ones included, in the order they were created."""
        async with self.sessions() as s:
            rows = await s.execute(select(Staff.username, Staff.role, Staff.ward, Staff.channel,
                                          Staff.platform_id, Staff.active).order_by(Staff.id))
            return [StaffListing(*row) for row in rows]
