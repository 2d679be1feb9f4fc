"""Named leases in the database, so one of several processes runs a job at a time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.models import JobLock, utcnow


async def acquire(sessions, name: str, owner: str, ttl: dt.timedelta) -> bool:
    """Take or renew the lease `name` for `owner`; False while another owner holds it."""
    now = utcnow()
    async with sessions.begin() as s:
        result = await s.execute(
            update(JobLock).where(JobLock.name == name, (JobLock.owner == owner) | (JobLock.until < now))
            .values(owner=owner, until=now + ttl))
        if result.rowcount:
            return True
        if await s.scalar(select(JobLock.name).where(JobLock.name == name)) is not None:
            return False
    try:
        async with sessions.begin() as s:
            s.add(JobLock(name=name, owner=owner, until=now + ttl))
        return True
    except IntegrityError:  # another process created it first
        return False


async def release(sessions, name: str, owner: str) -> None:
    async with sessions.begin() as s:
        await s.execute(update(JobLock).where(JobLock.name == name, JobLock.owner == owner)
                        .values(until=utcnow() - dt.timedelta(seconds=1)))
