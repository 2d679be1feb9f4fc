"""One send schedule per channel in PostgreSQL, shared by every process of the bot.

Why: the platform's flood limit is for the bot, not for a process. With several processes
behind a load balancer each pacing itself at the configured rate, together they sent at a
multiple of it and drew thousands of 429s.

How: the channel's row holds the next free send slot (`next_slot`, the database's clock, the
one clock all processes share); slots are 1/rate apart. A process with sends waiting reserves
the next few slots in one statement (the row locked, then updated) and sends each
at its time, so the whole bot sends evenly at the rate, never in bursts, and a transaction
serves several sends (its latency does not slow sending down). Reservations reach at most
HORIZON_LIVE seconds ahead for replies and HORIZON_BROADCAST for broadcasts: when the schedule
is busy, replies of any process still get slots soon, broadcasts wait.

A 429 received anywhere is stored on the row (`paused_until`): no slot is given before it
ends, so every process waits it out and what queued up meanwhile leaves at the rate.

SQLite serves one process by design: the in-process bucket (bot/channels/pacing.py) is
enough there, and this class is not used.
"""

from __future__ import annotations

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert

from bot.storage.models import SendBudget

HORIZON_LIVE = 0.5  # seconds ahead replies may reserve slots
HORIZON_BROADCAST = 0.25  # ... and broadcasts

# The row lock serialises processes; clock_timestamp() is read after it is taken. Slots start
# at the next free one (not before now, nor inside a pause); as many as fit in the horizon.
TAKE = text("""
WITH cur AS (
    SELECT GREATEST(next_slot, clock_timestamp(), COALESCE(paused_until, '-infinity')) AS start,
           clock_timestamp() AS now
    FROM send_budgets WHERE channel = :channel FOR UPDATE
), n AS (
    SELECT start, now, GREATEST(0, LEAST(CAST(:want AS integer),
           FLOOR((CAST(:horizon AS float8) - EXTRACT(EPOCH FROM start - now)) * CAST(:rate AS float8)) + 1))::int AS count
    FROM cur
)
UPDATE send_budgets AS b SET next_slot = n.start + make_interval(secs => n.count / CAST(:rate AS float8))
FROM n WHERE b.channel = :channel
RETURNING EXTRACT(EPOCH FROM n.start - n.now), n.count
""")
PAUSE = text("""
UPDATE send_budgets SET
    paused_until = GREATEST(COALESCE(paused_until, '-infinity'), clock_timestamp() + make_interval(secs => CAST(:seconds AS float8))),
    next_slot = GREATEST(next_slot, clock_timestamp() + make_interval(secs => CAST(:seconds AS float8)))
WHERE channel = :channel
""")


class SharedBudget:
    def __init__(self, sessions, channel: str, rate: float):
        self.sessions = sessions
        self._engine = sessions.kw["bind"]
        self.channel = channel
        self.rate = rate
        self._exists = False

    async def _ensure(self) -> None:
        if self._exists:
            return
        async with self.sessions.begin() as s:
            await s.execute(insert(SendBudget).values(channel=self.channel, next_slot=func.clock_timestamp())
                            .on_conflict_do_nothing(index_elements=["channel"]))
        self._exists = True

    async def take(self, want: int, live: bool) -> tuple[list[float], float]:
        """(seconds from now of each slot reserved, up to `want`; if none, seconds to wait
        before asking again)."""
        await self._ensure()
        async with self._engine.begin() as conn:  # one statement: this runs once per send or so
            ahead, count = (await conn.execute(TAKE, {
                "channel": self.channel, "want": want, "rate": self.rate,
                "horizon": HORIZON_LIVE if live else HORIZON_BROADCAST})).one()
        ahead = float(ahead)
        if not count:
            return [], ahead - (HORIZON_LIVE if live else HORIZON_BROADCAST)
        return [ahead + i / self.rate for i in range(count)], 0.0

    async def pause(self, seconds: float) -> None:
        """A 429's retry_after: no slot for any process before it ends."""
        await self._ensure()
        async with self._engine.begin() as conn:
            await conn.execute(PAUSE, {"channel": self.channel, "seconds": max(0.0, seconds)})
