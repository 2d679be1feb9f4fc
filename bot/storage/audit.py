"""The audit log (`audit_log`): who did what to which record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import AuditLog


class AuditTrail:
    def __init__(self, sessions: async_sessionmaker):
        self.sessions = sessions

    async def record(self, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
        async with self.sessions.begin() as s:
            s.add(AuditLog(actor=actor, action=action, target=target, detail=detail))
