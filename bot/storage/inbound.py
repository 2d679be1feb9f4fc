"""Inbound event keys (`inbound_events`): platforms retry webhooks, we act on each event once.

The primary key does the work: the first process to insert a key owns the event, every
other insert of it fails, so de-duplication holds across processes and restarts.

While the database is unreachable the bot still answers (see bot/storage/pending.py), so
keys are also kept in a bounded in-memory set: a retry reaching this process during the
outage, or soon after it, is still recognised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections import OrderedDict
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.group_commit import Claim, GroupCommit, Touch
from bot.storage.models import InboundEvent, utcnow
from bot.storage.pending import DATABASE_ERRORS, Outage

MAX_KEY = 128
RECENT_KEYS = 20_000


def event_key(prefix: str, *parts: object) -> str:
    """`prefix:part:part`, hashed when it would not fit the column."""
    key = ":".join([prefix, *(str(p) for p in parts)])
    if len(key) <= MAX_KEY:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


class RecentKeys:
    """The last `limit` keys this process claimed, oldest forgotten first."""

    def __init__(self, limit: int = RECENT_KEYS):
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.limit:
            self._keys.popitem(last=False)

    def discard(self, key: str) -> None:
        """Forget `key` (its event was not handled, so a redelivery is not a duplicate)."""
        self._keys.pop(key, None)


async def remember(sessions, key: str) -> bool:
    """Record `key`; False when it was already recorded (a duplicate delivery).

    Database errors other than the duplicate propagate (the caller decides what an
    outage means)."""
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


class InboundEvents:
    """Claiming incoming events once, across processes, and through database outages.

    Claims go through the grouped writes of every message (bot/storage/group_commit.py). While
    the database is unreachable (`outage`) only this process's memory of recent keys decides,
    so citizens keep getting answers (once each) during an outage."""

    def __init__(self, sessions: async_sessionmaker, group: GroupCommit, outage: Outage, recent: RecentKeys):
        self.sessions = sessions
        self.group = group
        self.outage = outage
        self.recent = recent

    async def claim(self, key: str, touch: Touch | None = None) -> tuple[bool, Any]:
        """(True the first time `key` is seen by any process, False for a duplicate (platform
        retry); the row of `touch`, written in the same transaction, or None when the database
        was not reached or the key is a duplicate this process remembers)."""
        if key in self.recent:
            return False, None
        fresh, row = True, None
        if not self.outage.skip:
            try:
                if touch is None:
                    [fresh] = await self.group.submit(Claim(key[:MAX_KEY]))
                else:
                    fresh, row = await self.group.submit(Claim(key[:MAX_KEY]), touch)
                self.outage.recovered()
            except DATABASE_ERRORS as exc:
                self.outage.failed(exc)
        if fresh:
            self.recent.add(key)
        return fresh, row

    async def release(self, key: str) -> None:
        """Undo `claim`: the event was not handled, so a redelivery must be."""
        self.recent.discard(key)
        if not self.outage.skip:
            try:
                await forget(self.sessions, key)
            except DATABASE_ERRORS as exc:
                self.outage.failed(exc)

    async def writes_work(self, wait: float = 3.0) -> bool:
        """False while writes are known to fail (an outage the hot path met: locked, disk full,
        unreachable). Once the retry pause is over, one real write through the same path as the
        citizens' messages decides, so /healthz heals as soon as the database does."""
        outage = self.outage
        if not outage.down:
            return True
        if outage.skip:
            return False
        try:
            async with asyncio.timeout(wait):
                await self.group.submit(Claim("probe:writes"))
        except (TimeoutError, *DATABASE_ERRORS) as exc:
            outage.failed(exc)
            return False
        outage.recovered()
        return True
