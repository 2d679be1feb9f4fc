"""Keeping the bot answering while the database is unreachable.

`Outage` remembers that the database failed lately, so the hot path (claiming an update,
finding the user) skips it for a few seconds instead of making every citizen wait for a
connection attempt to fail. `PendingLogs` keeps the question-log rows meanwhile and writes
them when the database is back. The queue is bounded: beyond it the oldest rows are
dropped, counted and reported in the log, never silently. Queued rows are already
redacted, so no personal data sits in memory waiting for the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy.exc import InterfaceError, OperationalError

from bot.storage.models import QuestionLog, utcnow

log = logging.getLogger(__name__)

# "The database cannot be reached", as opposed to a bug or a refused statement, which must
# surface as errors rather than be queued and retried forever.
DATABASE_ERRORS = (OperationalError, InterfaceError, OSError, TimeoutError, ConnectionError)
MAX_PENDING = 10_000
RETRY_SECONDS = 5.0


class Outage:
    """Whether the database failed lately; while `skip` is true the hot path does not try it."""

    def __init__(self, retry_seconds: float = RETRY_SECONDS):
        self.retry_seconds = retry_seconds
        self.down = False
        self._retry_at = 0.0

    @property
    def skip(self) -> bool:
        return self.down and time.monotonic() < self._retry_at

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            # The driver's own message ("database is locked", "connection refused"), never the
            # statement or its values.
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:160]
            log.error("database unavailable (%s: %s); answering from the knowledge base, queueing question logs",
                      type(exc).__name__, reason)
        self.down = True
        self._retry_at = time.monotonic() + self.retry_seconds

    def recovered(self) -> None:
        if self.down:
            log.warning("database reachable again")
        self.down = False


@dataclass
class PendingQuestion:
    """A question-log row waiting for the database; `text` and `normalized` are redacted."""

    channel: str
    user_key: str
    text: str
    normalized: str
    decision: str
    faq_id: str | None
    score: float
    alternatives: list[str]
    ward: str | None = None
    created_at: dt.datetime = field(default_factory=utcnow)


class PendingLogs:
    def __init__(self, limit: int = MAX_PENDING):
        self.items: deque[PendingQuestion] = deque()
        self.limit = limit
        self.dropped = 0
        self._flushing = asyncio.Lock()  # several messages after recovery must not write a row twice

    def add(self, item: PendingQuestion) -> None:
        if len(self.items) >= self.limit:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)

    async def flush(self, store) -> int:
        """Write queued rows; returns how many. Leaves them queued if the database is still down."""
        if not self.items:
            return 0
        async with self._flushing:
            return await self._flush(store)

    async def _flush(self, store) -> int:
        batch = list(self.items)
        if not batch:
            return 0
        try:
            async with store.sessions.begin() as s:
                s.add_all(QuestionLog(channel=p.channel, user_key=p.user_key, ward=p.ward, text=p.text[:2000],
                                      normalized=p.normalized[:2000], decision=p.decision, faq_id=p.faq_id,
                                      score=p.score, alternatives=p.alternatives, created_at=p.created_at)
                          for p in batch)
        except DATABASE_ERRORS as exc:
            store.outage.failed(exc)
            return 0
        written = {id(p) for p in batch}
        self.items = deque(p for p in self.items if id(p) not in written)
        store.outage.recovered()
        log.warning("wrote %d question logs queued while the database was unavailable%s", len(batch),
                    f"; {self.dropped} were dropped because the queue was full" if self.dropped else "")
        self.dropped = 0
        return len(batch)
