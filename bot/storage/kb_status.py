"""Recorded reviews and suspensions of knowledge entries, and once-per-period job marks.

Each write is one transaction together with its audit-log row, so the record of who
reviewed or suspended an entry can never be missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, inspect, select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.models import AuditLog, Feedback, JobMark, KbEntryStatus, Staff, utcnow


@dataclass(frozen=True)
class EntryStatus:
    entry_id: str
    reviewed_at: dt.datetime | None = None
    reviewed_by: str | None = None
    review_source: str | None = None
    suspended: bool = False
    suspended_at: dt.datetime | None = None
    suspended_by: str | None = None


def _status(row: KbEntryStatus) -> EntryStatus:
    return EntryStatus(row.entry_id, row.reviewed_at, row.reviewed_by, row.review_source, bool(row.suspended),
                       row.suspended_at, row.suspended_by)


class KbStatusQueries:
    def __init__(self, sessions):
        self.sessions = sessions

    async def statuses(self) -> dict[str, EntryStatus]:
        async with self.sessions() as s:
            return {r.entry_id: _status(r) for r in await s.scalars(select(KbEntryStatus))}

    async def fingerprint(self) -> tuple:
        """Changes whenever a review or suspension is recorded (cheap to poll)."""
        async with self.sessions() as s:
            return tuple((await s.execute(select(func.count(), func.max(KbEntryStatus.updated_at)))).one())

    async def _row(self, s, entry_id: str) -> KbEntryStatus:
        row = await s.get(KbEntryStatus, entry_id, with_for_update=True)
        if row is None:
            row = KbEntryStatus(entry_id=entry_id, suspended=False)
            s.add(row)
        return row

    async def _write(self, entry_id: str, change, action: str, actor: str, detail: dict) -> EntryStatus:
        """Apply `change(row, now)`; a concurrent first write of the same id is retried once."""
        for attempt in (1, 2):
            try:
                async with self.sessions.begin() as s:
                    row = await self._row(s, entry_id)
                    now = utcnow()
                    change(row, now)
                    row.updated_at = now
                    s.add(AuditLog(actor=actor[:128], action=action, target=entry_id, detail=detail))
                    await s.flush()
                    return _status(row)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def record_review(self, entry_id: str, actor: str, source: str | None = None) -> EntryStatus:
        def change(row: KbEntryStatus, now: dt.datetime) -> None:
            row.reviewed_at, row.reviewed_by = now, actor[:128]
            if source:
                row.review_source = source[:500]

        return await self._write(entry_id, change, "kb.review", actor, {"source": source} if source else {})

    async def set_suspended(self, entry_id: str, actor: str, suspended: bool) -> EntryStatus:
        def change(row: KbEntryStatus, now: dt.datetime) -> None:
            row.suspended = suspended
            row.suspended_at, row.suspended_by = (now, actor[:128]) if suspended else (None, None)

        return await self._write(entry_id, change, "kb.suspend" if suspended else "kb.resume", actor, {})

    # --- weekly digest ---------------------------------------------------------------------
    async def claim_period(self, name: str, period: str) -> bool:
        """True for exactly one caller per (name, period), across processes and restarts."""
        async with self.sessions.begin() as s:
            claimed = await s.execute(update(JobMark).where(JobMark.name == name, JobMark.period != period)
                                      .values(period=period, updated_at=utcnow()))
            if claimed.rowcount:
                return True
            if await s.scalar(select(JobMark.name).where(JobMark.name == name)) is not None:
                return False
        try:
            async with self.sessions.begin() as s:
                s.add(JobMark(name=name, period=period))
            return True
        except IntegrityError:  # another process made the first mark
            return False

    async def last_period(self, name: str) -> str | None:
        async with self.sessions() as s:
            return await s.scalar(select(JobMark.period).where(JobMark.name == name))

    async def admin_chats(self, channel: str = "telegram") -> list[str]:
        """Private chats of active admin accounts linked to `channel` (BOT_ADMINS, `staff add --telegram`)."""
        async with self.sessions() as s:
            rows = await s.scalars(select(Staff.platform_id).where(
                Staff.role == "admin", Staff.active.is_(True), Staff.channel == channel,
                Staff.platform_id.is_not(None)).order_by(Staff.id))
            return list(dict.fromkeys(r for r in rows if r))

    async def most_disliked(self, since: dt.datetime, limit: int = 10) -> list[tuple[str, int]]:
        """(entry id, 👎 count) since `since`, most first."""
        count = func.count().label("n")
        async with self.sessions() as s:
            rows = await s.execute(select(Feedback.faq_id, count).where(
                Feedback.helpful.is_(False), Feedback.faq_id.is_not(None), Feedback.created_at >= since)
                .group_by(Feedback.faq_id).order_by(count.desc(), Feedback.faq_id).limit(limit))
            return [(faq_id, int(n)) for faq_id, n in rows]

    async def audit(self, actor: str, action: str, target: str | None, detail: dict) -> None:
        async with self.sessions.begin() as s:
            s.add(AuditLog(actor=actor[:128], action=action, target=target, detail=detail))


async def read_statuses_without_migrating(database_url: str) -> dict[str, EntryStatus]:
    """The recorded statuses, read on a short-lived engine of its own (`kb validate`) without
    creating or migrating anything: a database without the table has none."""
    from bot.storage.db import create_engine, session_factory

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda c: inspect(c).has_table("kb_entry_status")):
                return {}
        return await KbStatusQueries(session_factory(engine)).statuses()
    finally:
        await engine.dispose()
