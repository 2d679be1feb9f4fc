"""Inbound event keys (`inbound_events`): platforms retry webhooks, we act on each event once.

The primary key does the work: the first process to insert a key owns the event, every
other insert of it fails, so de-duplication holds across processes and restarts.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.storage.models import InboundEvent, utcnow

MAX_KEY = 128


def event_key(prefix: str, *parts: object) -> str:
    """`prefix:part:part`, hashed when it would not fit the column."""
    key = ":".join([prefix, *(str(p) for p in parts)])
    if len(key) <= MAX_KEY:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


async def remember(sessions, key: str) -> bool:
    """Record `key`; False when it was already recorded (a duplicate delivery)."""
    try:
        async with sessions.begin() as s:
            s.add(InboundEvent(key=key[:MAX_KEY], created_at=utcnow()))
        return True
    except IntegrityError:
        return False


async def forget(sessions, key: str) -> None:
    """Drop `key` again: its event was not handled, so a redelivery must not count as a duplicate."""
    async with sessions.begin() as s:
        await s.execute(delete(InboundEvent).where(InboundEvent.key == key[:MAX_KEY]))


async def prune(sessions, prefix: str, older_than: dt.timedelta) -> int:
    """Forget keys of one channel older than the platform's retry horizon."""
    async with sessions.begin() as s:
        result = await s.execute(delete(InboundEvent).where(
            InboundEvent.key.like(f"{prefix}:%"), InboundEvent.created_at < utcnow() - older_than))
        return result.rowcount or 0
