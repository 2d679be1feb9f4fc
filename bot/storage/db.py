"""Engine creation (SQLite pragmas, PostgreSQL pool) and schema migrations."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATION_LOCK_KEY = 0x64766362  # pg_advisory_xact_lock key ("dvcb"): one migrating process at a time
PG_CONNECT_TIMEOUT_S = 5
# Every PostgreSQL statement gives up after this: on a network black hole (packets dropped,
# connections open) queries would otherwise hang for minutes while citizens wait. A timeout
# is an outage like any other: the bot answers from the knowledge base and queues its logs.
PG_COMMAND_TIMEOUT_S = 10
PG_POOL_TIMEOUT_S = 5


def _classify_errors(context) -> BaseException | None:
    """SQLAlchemy `handle_error` hook: a driver error that means the database cannot be used now
    (bot.storage.pending.is_outage, which reads the SQLSTATE and the driver's own types) is raised
    as DatabaseUnavailable and its connection discarded, so every `except DATABASE_ERRORS` treats
    it as an outage, whatever exception type the driver chose."""
    from bot.storage.pending import DatabaseUnavailable, is_outage

    if context.engine is not None and context.engine.dialect.name == "sqlite":
        return None  # SQLite's errors say what they are by type (locked, busy, full: OperationalError)
    error = context.sqlalchemy_exception or context.original_exception
    if isinstance(error, DatabaseUnavailable) or not is_outage(error):
        return None
    context.is_disconnect = True  # the pool drops this connection instead of reusing it
    orig = context.original_exception
    return DatabaseUnavailable(None, None, orig if isinstance(orig, Exception) else Exception(str(orig)),
                               connection_invalidated=True)


def sqlite_busy_timeout_ms(url) -> int:
    """How long a SQLite write waits for another connection's lock before failing (then the bot
    answers without the database): DATABASE_URL's `timeout` query parameter, in seconds as
    Python's sqlite3 takes it (`sqlite+aiosqlite:///data/bot.sqlite3?timeout=2`), else 10 s."""
    given = make_url(url).query.get("timeout")
    return round(float(given) * 1000) if given else SQLITE_BUSY_TIMEOUT_MS


def _sqlite_pragmas_with(busy_timeout_ms: int):
    def pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
    return pragmas


def create_engine(url: str, command_timeout: float | None = PG_COMMAND_TIMEOUT_S) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, a busy timeout and foreign keys.

    `hide_parameters`: error messages and logs never carry bound values (question text,
    platform ids). `command_timeout` (PostgreSQL): None for migrations, which may rewrite a
    big table."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        busy_ms = sqlite_busy_timeout_ms(parsed)
        engine = create_async_engine(url, connect_args={"timeout": busy_ms / 1000}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas_with(busy_ms))
        event.listen(engine.sync_engine, "handle_error", _classify_errors)
        return engine
    # Short connect, statement and pool timeouts: while the server is unreachable the bot answers
    # without it (bot/storage/pending.py) instead of keeping citizens waiting a minute per attempt.
    # DATABASE_URL may set other values with asyncpg's names: ?timeout=<s>&command_timeout=<s>.
    given = parsed.query
    connect_args = {"timeout": float(given.get("timeout", PG_CONNECT_TIMEOUT_S))}
    if command_timeout is not None:
        connect_args["command_timeout"] = float(given.get("command_timeout", command_timeout))
    engine = create_async_engine(parsed.difference_update_query(["timeout", "command_timeout"]), pool_size=10, max_overflow=10, pool_pre_ping=True,
                                 pool_timeout=PG_POOL_TIMEOUT_S, connect_args=connect_args, hide_parameters=True)
    event.listen(engine.sync_engine, "handle_error", _classify_errors)
    return engine


def sync_sqlite_engine(url) -> Engine:
    """A synchronous engine on the same SQLite file (pysqlite, same pragmas and busy timeout),
    for the grouped writes that run in a worker thread (bot/storage/group_commit.py).

    Its transactions begin IMMEDIATE: they always write, so they take the write lock up front
    and wait for it (busy timeout) like any writer, instead of pysqlite's implicit deferred BEGIN.
    See README "Benchmarks" for the "database is locked" episodes this was meant to stop: fewer
    since (one real-rate run in three instead of three in three), not none.
    """
    busy_ms = sqlite_busy_timeout_ms(url)
    engine = create_sync_engine(make_url(url).set(drivername="sqlite"),
                                connect_args={"timeout": busy_ms / 1000, "check_same_thread": False,
                                              "isolation_level": None},
                                hide_parameters=True)
    event.listen(engine, "connect", _sqlite_pragmas_with(busy_ms))
    event.listen(engine, "begin", _begin_immediate)
    event.listen(engine, "handle_error", _classify_errors)
    return engine


def _begin_immediate(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


async def ping(engine: AsyncEngine) -> None:
    """One trivial statement; raises when the database cannot be reached (/healthz)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (run at start-up and by `python -m bot db upgrade`).

    A database already at the newest revision (every start but the first after an upgrade) is
    left alone after one query: running alembic to find nothing to do costs more than the rest
    of opening the store."""
    if revision == "head" and await current_revision(engine) == head_revision():
        return

    def upgrade(connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # processes starting together on an empty database
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await conn.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


@functools.cache
def head_revision() -> str | None:
    """The schema revision this code expects (the newest migration); read once per process."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
