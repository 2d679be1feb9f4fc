"""Deleting what is older than the retention period (LOG_RETENTION_DAYS)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import (
    AuditLog,
    Feedback,
    Handoff,
    HandoffMessage,
    InboundEvent,
    QuestionLog,
    TeamPost,
    utcnow,
)


async def purge(sessions: async_sessionmaker, older_than: dt.timedelta) -> dict[str, int]:
    """Delete logs older than the retention period (questions, feedback, closed hand-offs)."""
    cutoff = utcnow() - older_than
    async with sessions.begin() as s:
        counts = {}
        counts["feedback"] = (await s.execute(delete(Feedback).where(Feedback.created_at < cutoff))).rowcount
        old_handoffs = select(Handoff.id).where(Handoff.state == "closed", Handoff.last_activity_at < cutoff)
        await s.execute(delete(HandoffMessage).where(HandoffMessage.handoff_id.in_(old_handoffs)))
        await s.execute(delete(TeamPost).where(TeamPost.handoff_id.in_(old_handoffs)))
        counts["handoffs"] = (await s.execute(
            delete(Handoff).where(Handoff.state == "closed", Handoff.last_activity_at < cutoff))).rowcount
        counts["questions"] = (await s.execute(
            delete(QuestionLog).where(QuestionLog.created_at < cutoff))).rowcount
        counts["audit"] = (await s.execute(delete(AuditLog).where(AuditLog.created_at < cutoff))).rowcount
        # Duplicate-detection keys are only needed while a platform may still retry.
        await s.execute(delete(InboundEvent).where(InboundEvent.created_at < utcnow() - dt.timedelta(days=2)))
        return counts
