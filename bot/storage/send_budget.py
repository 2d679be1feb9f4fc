"""One token bucket per channel in PostgreSQL, shared by every process of the bot.

Why: the platform's flood limit is for the bot, not for a process. With several processes
behind a load balancer each one pacing itself at the configured rate, together they sent
at a multiple of it and drew thousands of 429s. Here each grant is one short transaction
on the channel's row (SELECT ... FOR UPDATE, then UPDATE), so grants are serialised across
processes and counted against one clock, the database's (clock_timestamp()). A process asks
only while it has sends waiting, and sends what it was granted at once, so what leaves the
bot in any second is at most `capacity` plus a second of refill.

Live replies may empty the bucket; broadcasts leave `reserve` tokens in it, so a reply in
one process is not queued behind the campaign another process is sending.

A 429 received anywhere is stored on the row: every process then waits it out, and the
bucket refills only from its end, so what queued up meanwhile drains at the rate.

SQLite serves one process by design: the in-process bucket (bot/channels/pacing.py) is
enough there, and this class is not used.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from bot.storage.models import SendBudget

RESERVE = 1.0  # tokens broadcasts leave for live replies


class SharedBudget:
    def __init__(self, sessions, channel: str, rate: float, capacity: float, reserve: float = RESERVE):
        self.sessions = sessions
        self.channel = channel
        self.rate = rate
        self.capacity = capacity
        self.reserve = reserve
        self._exists = False

    async def _ensure(self) -> None:
        if self._exists:
            return
        async with self.sessions.begin() as s:
            await s.execute(insert(SendBudget).values(
                channel=self.channel, tokens=0.0, stamp=func.clock_timestamp())
                .on_conflict_do_nothing(index_elements=["channel"]))
        self._exists = True

    async def _locked(self, s) -> tuple[float, dt.datetime, dt.datetime | None, dt.datetime]:
        row = (await s.execute(
            select(SendBudget.tokens, SendBudget.stamp, SendBudget.paused_until, func.clock_timestamp())
            .where(SendBudget.channel == self.channel).with_for_update())).one()
        tokens, stamp, paused_until, now = row
        return tokens, stamp, paused_until, now

    async def take(self, want: int, live: bool) -> tuple[int, float]:
        """(up to `want` tokens now, seconds until the next one may be there)."""
        await self._ensure()
        async with self.sessions.begin() as s:
            tokens, stamp, paused_until, now = await self._locked(s)
            if paused_until is not None and paused_until > now:
                return 0, (paused_until - now).total_seconds()
            if now > stamp:
                # The stamp only moves forward: a clock read before waiting for the row lock
                # may be older than the last grant's, and then adds nothing.
                tokens = min(self.capacity, tokens + (now - stamp).total_seconds() * self.rate)
                stamp = now
            # (A bucket of one token keeps none back: broadcasts could never take it.)
            keep = 0.0 if live else min(self.reserve, max(0.0, self.capacity - 1.0))
            granted = max(0, min(want, math.floor(tokens - keep)))
            tokens -= granted
            await s.execute(update(SendBudget).where(SendBudget.channel == self.channel)
                            .values(tokens=tokens, stamp=stamp))
        return granted, (1.0 + keep - tokens) / self.rate

    async def pause(self, seconds: float) -> None:
        """A 429's retry_after: every process waits, then the bucket refills from empty."""
        await self._ensure()
        async with self.sessions.begin() as s:
            tokens, stamp, paused_until, now = await self._locked(s)
            until = now + dt.timedelta(seconds=max(0.0, seconds))
            if paused_until is not None and paused_until >= until:
                return
            await s.execute(update(SendBudget).where(SendBudget.channel == self.channel)
                            .values(paused_until=until, tokens=min(tokens, 0.0), stamp=max(stamp, until)))
