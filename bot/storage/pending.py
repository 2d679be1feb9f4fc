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

from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.privacy import storable
from bot.storage.models import QuestionLog, utcnow

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
RETRY_SECONDS = 5.0
PROBE_SECONDS = 30.0  # while one caller tries the database again, the others keep skipping it

# PostgreSQL error classes that mean "the server cannot serve us now", whatever the driver
# calls them: 08 connection exception, 53 insufficient resources, 57 operator intervention
# (admin shutdown, crash shutdown, cannot connect now), 58 system error (I/O).
OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
# 55000 object_not_in_prerequisite_state covers "database ... is not currently accepting
# connections" (ALTER DATABASE ... ALLOW_CONNECTIONS false); 3D000 a database that is gone.
OUTAGE_SQLSTATES = frozenset({"55000", "3D000"})


class DatabaseUnavailable(OperationalError):
    """A driver error classified as an outage (bot.storage.db translates them into this)."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE the driver reported, looking through SQLAlchemy's and the adapter's wrappers."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and code:
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be used right now (answer from the knowledge
    base and queue the writes), as opposed to a bug or a refused value, which must surface.

    Decided from what the driver can tell: a connection SQLAlchemy invalidated, a SQLSTATE
    class of unavailability, network and timeout errors, SQLite's operational errors (locked,
    busy, I/O, full, cannot open). Not from a list of exception types, which misses cases."""
    if isinstance(exc, (DatabaseUnavailable, OSError, TimeoutError, ConnectionError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc)
    if code is not None:
        return code[:2] in OUTAGE_SQLSTATE_CLASSES or code in OUTAGE_SQLSTATES
    orig = getattr(exc, "orig", None)
    if isinstance(orig, (OSError, TimeoutError, ConnectionError)):
        return True
    # SQLite (no SQLSTATE): sqlite3.OperationalError is locked/busy/I/O/full/readonly/cannot open.
    return isinstance(exc, (OperationalError, InterfaceError))


# "The database cannot be reached", as opposed to a bug or a refused statement, which must
# surface as errors rather than be queued and retried forever. Driver errors that do not carry
# their class in their type are translated into DatabaseUnavailable by bot.storage.db's
# `handle_error` hook (using `is_outage`), so an `except DATABASE_ERRORS` sees them too.
DATABASE_ERRORS = (OperationalError, InterfaceError, OSError, TimeoutError, ConnectionError, sa_exc.TimeoutError)


def short_reason(exc: BaseException) -> str:
    """The driver's own message ("database is locked", "connection refused"), never the statement
    or its values."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


class Outage:
    """Whether the database failed lately; while `skip` is true the hot path does not try it.

    After `retry_seconds` one caller (the probe) tries the database again while the others
    keep skipping it: when a connection hangs (a network black hole) only that caller waits
    for the timeout, not every citizen writing at that moment."""

    def __init__(self, retry_seconds: float = RETRY_SECONDS):
        self.retry_seconds = retry_seconds
        self.down = False
        self.reason = ""
        self._retry_at = 0.0
        self._probe_until = 0.0

    @property
    def skip(self) -> bool:
        if not self.down:
            return False
        now = time.monotonic()
        if now < self._retry_at or now < self._probe_until:
            return True
        self._probe_until = now + PROBE_SECONDS  # this caller probes; `failed`/`recovered` end it
        return False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            log.error("database unavailable (%s: %s); answering from the knowledge base, queueing question logs",
                      type(exc).__name__, short_reason(exc))
        self.down = True
        self.reason = short_reason(exc)
        self._retry_at = time.monotonic() + self.retry_seconds
        self._probe_until = 0.0

    def recovered(self) -> None:
        if self.down:
            log.warning("database reachable again")
        self.down = False
        self.reason = ""
        self._probe_until = 0.0


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
        """All queued rows in one transaction; if that fails for a reason other than an outage,
        row by row, so one row the database refuses is dropped (and reported) alone and never
        blocks the queue or the messages that trigger the flush."""
        batch = list(self.items)
        if not batch:
            return 0
        refused = 0
        try:
            await _write(store, batch)
        except Exception as exc:
            if is_outage(exc):
                store.outage.failed(exc)
                return 0
            log.warning("queued question logs could not be written together (%s); writing them one by one",
                        short_reason(exc))
            for index, row in enumerate(batch):
                try:
                    await _write(store, [row])
                except Exception as row_exc:
                    if is_outage(row_exc):  # gone again: keep what is not written yet
                        store.outage.failed(row_exc)
                        self._forget(batch[:index])
                        return index - refused
                    refused += 1
        self._forget(batch)
        store.outage.recovered()
        written = len(batch) - refused
        log.warning("wrote %d question logs queued while the database was unavailable%s%s", written,
                    f"; {self.dropped} were dropped because the queue was full" if self.dropped else "",
                    f"; {refused} were refused by the database and dropped" if refused else "")
        self.dropped = 0
        return written

    def _forget(self, rows: list[PendingQuestion]) -> None:
        done = {id(p) for p in rows}
        self.items = deque(p for p in self.items if id(p) not in done)


async def _write(store, rows: list[PendingQuestion]) -> None:
    async with store.sessions.begin() as s:
        s.add_all(QuestionLog(channel=p.channel, user_key=p.user_key, ward=p.ward, text=storable(p.text)[:2000],
                              normalized=storable(p.normalized)[:2000], decision=p.decision, faq_id=p.faq_id,
                              score=p.score, alternatives=p.alternatives, created_at=p.created_at)
                  for p in rows)
