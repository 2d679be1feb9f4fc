"""Question-log writes kept in memory while the database is unreachable.

The bot keeps answering from the knowledge base during an outage; the log rows are
written when the database is back. The queue is bounded: beyond it the oldest rows are
dropped, counted and reported in the log, never silently.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot.privacy import redact
from bot.storage.models import QuestionLog, utcnow

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError, DBAPIError, OSError, TimeoutError, ConnectionError)
MAX_PENDING = 10_000


@dataclass
class PendingQuestion:
    channel: str
    user_key: str
    text: str
    normalized: str
    decision: str
    faq_id: str | None
    score: float
    alternatives: list[str]
    created_at: dt.datetime = field(default_factory=utcnow)


class PendingLogs:
    def __init__(self, limit: int = MAX_PENDING):
        self.items: deque[PendingQuestion] = deque()
        self.limit = limit
        self.dropped = 0
        self.database_down = False

    def add(self, item: PendingQuestion) -> None:
        if len(self.items) >= self.limit:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)

    async def flush(self, store) -> int:
        """Write queued rows; returns how many. Leaves them queued if the database is still down."""
        if not self.items:
            self.database_down = False
            return 0
        batch = list(self.items)
        try:
            async with store.sessions.begin() as s:
                s.add_all(QuestionLog(channel=p.channel, user_key=p.user_key, text=redact(p.text)[:2000],
                                      normalized=redact(p.normalized)[:2000], decision=p.decision,
                                      faq_id=p.faq_id, score=p.score, alternatives=p.alternatives,
                                      created_at=p.created_at) for p in batch)
        except DATABASE_ERRORS:
            return 0
        for _ in batch:
            self.items.popleft()
        self.database_down = False
        log.warning("database is back: wrote %d queued question logs%s", len(batch),
                    f"; {self.dropped} were dropped because the queue was full" if self.dropped else "")
        self.dropped = 0
        return len(batch)
