"""The writes every citizen message makes, committed in groups (one transaction for many).

Each message needs a few small writes: claim its update id (idempotency), record that
its sender wrote (find or create the user row), and log the question with the new
fallback streak. One transaction each cost 1-2 ms of CPU in SQLAlchemy, the driver and
(on SQLite) aiosqlite's thread, and a dozen trips through the event loop, which capped
one process at about 60 messages/s (README, Benchmarks). Here callers queue their writes
and wait; one writer takes everything queued, runs it in a single transaction and
commits, then answers each caller. While it commits, new writes queue for the next
group, so groups grow with the load and the cost per write falls.

SQLite: the whole group runs in one worker thread on a plain (synchronous) connection to
the same file, one hop instead of several per statement. PostgreSQL: the group runs on a
pooled asyncpg connection, one round trip per statement (multi-row where possible).

Not write-behind: a caller gets its answer (a fresh claim, the user row, the question id)
only after the commit, so nothing a citizen was answered about is lost in a crash.
Failures keep the meaning they had: when the database is unreachable every caller of the
group gets that error (and the bot answers from the knowledge base, bot/storage/pending.py);
any other error is retried write by write, so one bad row fails only its own caller.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.models import ConversationContext, InboundEvent, QuestionLog, User, utcnow
from bot.storage.pending import DATABASE_ERRORS

log = logging.getLogger(__name__)

MAX_GROUP = 256  # writes per transaction; more wait for the next one


@dataclass(frozen=True)
class Claim:
    """Record an inbound event key; the result is True the first time it is seen."""

    key: str


@dataclass(frozen=True)
class Touch:
    """Find or create a user who just wrote; the result is the row (USER_COLUMNS)."""

    channel: str
    platform_id: str
    user_key: str
    ward: str | None  # the ward the channel reports, None to keep the stored one


@dataclass(frozen=True)
class LogRow:
    """Insert a question-log row (and the user's new fallback streak); the result is its id."""

    values: dict[str, Any]
    user_id: int | None = None
    streak: int | None = None  # None when unchanged


@dataclass(frozen=True)
class SaveContext:
    """Replace a user's conversation context (bot/storage/context.py); the result is None."""

    user_id: int
    faq_id: str | None
    choices: tuple[str, ...]


Op = Claim | Touch | LogRow | SaveContext
USER_COLUMNS = (User.id, User.channel, User.platform_id, User.user_key, User.ward, User.active,
                User.fallback_streak, User.state)


class GroupCommit:
    def __init__(self, engine: AsyncEngine, max_group: int = MAX_GROUP):
        self.engine = engine
        self.max_group = max_group
        self._queue: list[tuple[Op, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self.groups = 0  # transactions committed, and writes in them (tests, benchmarks)
        self.writes = 0
        database = engine.url.database or ""
        self._sqlite_file = engine.dialect.name == "sqlite" and database not in ("", ":memory:")
        self._sync_engine: Engine | None = None
        self._sync_lock = threading.Lock()
        # Statements built once, so SQLAlchemy compiles each one once; run with many rows
        # (executemany: multi-row statements on PostgreSQL, row by row on SQLite).
        dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._claim = (dialect_insert(InboundEvent).on_conflict_do_nothing(index_elements=["key"])
                       .returning(InboundEvent.key))
        upsert = dialect_insert(User)
        self._touch = upsert.on_conflict_do_update(
            index_elements=["channel", "platform_id"],
            set_={"last_inbound_at": upsert.excluded.last_inbound_at, "active": upsert.excluded.active,
                  "ward": func.coalesce(upsert.excluded.ward, User.ward)},
        ).returning(*USER_COLUMNS)
        self._log = insert(QuestionLog).returning(QuestionLog.id, sort_by_parameter_order=True)
        context = dialect_insert(ConversationContext)
        self._context = context.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"faq_id": context.excluded.faq_id, "choices": context.excluded.choices,
                  "updated_at": context.excluded.updated_at})
        self._streak = update(User).where(User.id == bindparam("uid")).values(fallback_streak=bindparam("streak"))

    async def submit(self, *ops: Op) -> list[Any]:
        """Queue writes (all in the same group) and wait until it is committed; their results."""
        loop = asyncio.get_running_loop()
        futures = []
        for op in ops:
            future = loop.create_future()
            future.add_done_callback(_retrieve)  # read even if the caller was cancelled meanwhile
            self._queue.append((op, future))
            futures.append(future)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        # A cancelled caller cancels only its own futures: the group is still written.
        return [await future for future in futures]

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:self.max_group], self._queue[self.max_group:]
            ops = [op for op, _future in group]
            try:
                results = await self._commit(ops)
            except DATABASE_ERRORS as exc:
                for _op, future in group:
                    _settle(future, exc=exc)
                continue
            except Exception:
                if len(group) > 1:
                    log.warning("a grouped write failed; retrying its %d writes one by one", len(group))
                for op, future in group:
                    try:
                        _settle(future, (await self._commit([op]))[0])
                    except Exception as exc:
                        _settle(future, exc=exc)
                continue
            for (_op, future), result in zip(group, results, strict=True):
                _settle(future, result)

    async def _commit(self, ops: list[Op]) -> list[Any]:
        now = utcnow()
        if self._sqlite_file:
            results = await asyncio.to_thread(self._commit_sqlite, ops, now)
        else:
            async with self.engine.begin() as conn:
                results = await conn.run_sync(self._write, ops, now)
        self.groups += 1
        self.writes += len(ops)
        return results

    def _commit_sqlite(self, ops: list[Op], now: dt.datetime) -> list[Any]:
        from bot.storage.db import sync_sqlite_engine

        with self._sync_lock:  # one group at a time, whichever worker thread runs it
            if self._sync_engine is None:
                self._sync_engine = sync_sqlite_engine(self.engine.url)
            with self._sync_engine.begin() as conn:
                return self._write(conn, ops, now)

    def close(self) -> None:
        """Release the SQLite connection of the writer thread (the next write opens it again)."""
        with self._sync_lock:
            if self._sync_engine is not None:
                self._sync_engine.dispose()
                self._sync_engine = None

    # --- the statements of one group (synchronous: a worker thread, or run_sync) ----------
    def _write(self, conn: Connection, ops: list[Op], now: dt.datetime) -> list[Any]:
        fresh = self._claims(conn, [op for op in ops if isinstance(op, Claim)], now)
        users = self._touches(conn, [op for op in ops if isinstance(op, Touch)], now)
        ids = iter(self._logs(conn, [op for op in ops if isinstance(op, LogRow)], now))
        self._contexts(conn, [op for op in ops if isinstance(op, SaveContext)], now)
        results: list[Any] = []
        for op in ops:
            if isinstance(op, Claim):
                results.append(op.key in fresh)
                fresh.discard(op.key)  # the same key twice in one group: only the first is fresh
            elif isinstance(op, Touch):
                results.append(users[(op.channel, op.platform_id)])
            elif isinstance(op, SaveContext):
                results.append(None)
            else:
                results.append(next(ids))
        return results

    def _claims(self, conn: Connection, claims: list[Claim], now: dt.datetime) -> set[str]:
        if not claims:
            return set()
        keys = dict.fromkeys(c.key for c in claims)
        return set(conn.execute(self._claim, [{"key": k, "created_at": now} for k in keys]).scalars())

    def _touches(self, conn: Connection, touches: list[Touch], now: dt.datetime) -> dict[tuple[str, str], Any]:
        """Find or create each user; they wrote just now, so they are reachable again."""
        if not touches:
            return {}
        # One row may not be upserted twice in a statement; sorted, so concurrent
        # transactions lock user rows in the same order.
        unique = sorted({(t.channel, t.platform_id): t for t in touches}.values(),
                        key=lambda t: (t.channel, t.platform_id))
        rows = [{"channel": t.channel, "platform_id": t.platform_id, "user_key": t.user_key, "ward": t.ward,
                 "active": True, "fallback_streak": 0, "state": "", "created_at": now, "last_inbound_at": now}
                for t in unique]
        return {(row.channel, row.platform_id): row for row in conn.execute(self._touch, rows)}

    def _contexts(self, conn: Connection, saves: list[SaveContext], now: dt.datetime) -> None:
        """Upsert each user's context; the last one queued for a user wins."""
        if not saves:
            return
        latest = sorted({op.user_id: op for op in saves}.values(), key=lambda op: op.user_id)
        conn.execute(self._context, [{"user_id": op.user_id, "faq_id": op.faq_id, "choices": list(op.choices),
                                      "updated_at": now} for op in latest])

    def _logs(self, conn: Connection, logs: list[LogRow], now: dt.datetime) -> list[int]:
        if not logs:
            return []
        ids = list(conn.execute(self._log, [{"created_at": now, **op.values} for op in logs]).scalars())
        streaks = sorted({op.user_id: op.streak for op in logs
                          if op.user_id is not None and op.streak is not None}.items())
        if streaks:
            conn.execute(self._streak, [{"uid": uid, "streak": streak} for uid, streak in streaks])
        return ids


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future, result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():  # its caller was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
