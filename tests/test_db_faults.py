"""Database faults that used to break replies for everyone, through the real PTB Application,
the fake Bot API and a real database: text a database cannot store queued during an outage,
a network black hole to PostgreSQL, PostgreSQL refusing connections, and /healthz while writes
fail. Each citizen must get a real answer from the knowledge base, never the apology."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.channels.telegram import webhook_path
from bot.contracts import texts
from bot.contracts.messages import IncomingMessage
from bot.storage.pending import DATABASE_ERRORS, DatabaseUnavailable, is_outage
from bot.web import create_app
from tests.helpers import serve_app
from tests.telegram_harness import TOKEN, running_bot
from tests.test_faults import WEBHOOK, PostgresProxy, asking, breakable_database, stored_questions

APOLOGY = texts.INTERNAL_ERROR.split("\n")[0][:30]


def answered(fake, user: int) -> str:
    [first, *_] = fake.sent_to(user)
    return first.plain_text


def test_incoming_text_is_made_storable_for_every_channel():
    msg = IncomingMessage("zalo", "u\x00", text="cau hoi \ud800 a\x00b\nc", author="Lan\udc00")
    assert msg.text == "cau hoi \ufffd ab\nc" and msg.user_id == "u" and msg.author == "Lan\ufffd"
    assert IncomingMessage("web", "x", text="đăng ký\tthường trú").text == "đăng ký\tthường trú"


def test_outage_is_classified_by_what_the_driver_says():
    class Refused(Exception):
        sqlstate = "55000"  # database "x" is not currently accepting connections

    class Terminated(Exception):
        sqlstate = "57P01"  # terminating connection due to administrator command

    class BadValue(Exception):
        sqlstate = "22021"  # invalid byte sequence: a refused value, not an outage

    from sqlalchemy.exc import DBAPIError

    assert is_outage(DBAPIError(None, None, Refused("not accepting")))
    assert is_outage(DBAPIError(None, None, Terminated("terminated")))
    assert not is_outage(DBAPIError(None, None, BadValue("bad")))
    assert is_outage(TimeoutError()) and is_outage(ConnectionRefusedError())
    assert issubclass(DatabaseUnavailable, DATABASE_ERRORS)


async def test_unstorable_text_queued_during_an_outage_poisons_nothing(database_url, caplog):
    """Lock / cut the database, ask a normal question and one with a lone surrogate and a NUL,
    let the database back: every later citizen is answered, and every queued log is written."""
    caplog.set_level(logging.WARNING, logger="bot.storage.pending")
    async with breakable_database(database_url) as db, running_bot(db.url, **WEBHOOK) as bot, \
            asking(bot, webhook=True) as ask:
        fake, store = bot.fake, bot.store
        store.outage.retry_seconds = 0.5
        await ask(1, "vneid là gì")
        await fake.wait_for_sent(1, chat_id=1)
        await db.cut()
        await ask(2, "quên mật khẩu vneid")
        await ask(3, "cau hoi \ud800 quen mat khau vneid \u0000")
        for user in (2, 3):
            await fake.wait_for_sent(1, chat_id=user, timeout=40)
        await db.restore()
        await asyncio.sleep(store.outage.retry_seconds)
        for user, question in ((1, "cổng dịch vụ công là gì"), (2, "vneid là gì"), (3, "quên mật khẩu vneid")):
            await ask(user, question)
        for user in (1, 2, 3):
            await fake.wait_for_sent(2, chat_id=user, timeout=20)
            assert all(APOLOGY not in m.plain_text for m in fake.sent_to(user))
        last = fake.sent_to(3)[-1]  # the question asked after the outage: answered or offered
        assert "Quên mật khẩu VNeID" in last.plain_text + str(last.reply_markup)
    texts_stored = [row.text for row in await stored_questions(database_url)]
    assert "cau hoi \ufffd quen mat khau vneid " in texts_stored  # the NUL is gone, the rest kept
    assert len(texts_stored) == 6
    assert any("question logs queued while the database was unavailable" in r.getMessage()
               for r in caplog.records)


async def test_one_refused_row_in_the_queue_fails_alone(database_url, caplog):
    """A queued row the database refuses for a reason other than an outage is dropped alone
    and reported; the rows around it are written, and the queue is not left stuck."""
    from bot.storage.db import create_engine, migrate
    from bot.storage.pending import PendingLogs, PendingQuestion
    from bot.storage.store import Store

    caplog.set_level(logging.WARNING, logger="bot.storage.pending")
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        store = Store(engine, "x")
        queue = PendingLogs()
        queue.add(PendingQuestion("telegram", "k", "q1", "q1", "answer", None, 1.0, []))
        queue.add(PendingQuestion("telegram", "k", "q2", "q2", "answer", None, 1.0,
                                  [object()]))  # not JSON: refused by the driver, whatever the backend
        queue.add(PendingQuestion("telegram", "k", "q3", "q3", "answer", None, 1.0, []))
        assert await queue.flush(store) == 2
        assert not queue.items and not store.outage.down
    finally:
        await engine.dispose()
    assert [r.text for r in await stored_questions(database_url)] == ["q1", "q3"]
    assert any("1 were refused by the database" in r.getMessage() for r in caplog.records)


@contextlib.asynccontextmanager
async def postgres_behind_proxy(database_url: str):
    if not database_url.startswith("postgresql"):
        pytest.skip("a network black hole and refused connections are PostgreSQL faults")
    proxy = await PostgresProxy(database_url).start()
    try:
        yield proxy
    finally:
        await proxy.close()


# Statement and connect timeouts for the black-hole test, given in DATABASE_URL (production:
# 10 s and 5 s, checked below): the citizens' first wait is bounded by them, whatever they are.
PG_TIMEOUTS = {"command_timeout": "2", "timeout": "1"}


async def test_postgres_timeouts_are_set_by_default(database_url):
    """The black-hole test below runs with shorter timeouts; these are the ones a plain
    DATABASE_URL gets (asyncpg's connect arguments, as the driver receives them)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    from sqlalchemy import event

    from bot.storage.db import create_engine

    seen: dict = {}
    engine = create_engine(database_url)
    event.listen(engine.sync_engine, "do_connect", lambda _d, _r, _a, params: seen.update(params))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert (seen["command_timeout"], seen["timeout"]) == (10, 5)
    assert engine.pool.timeout() == 5


@pytest.mark.slow(10, only="postgres")
async def test_postgres_black_hole_citizens_answered_from_the_knowledge_base(database_url):
    """Packets to PostgreSQL vanish with connections open: without statement, connect and pool
    timeouts every citizen waited 90 s for nothing. Now each is answered from the knowledge base
    (the first ones after the timeouts, later ones at once), and logs are written afterwards."""
    async with postgres_behind_proxy(database_url) as proxy, \
            running_bot(make_url(proxy.url).update_query_dict(PG_TIMEOUTS).render_as_string(hide_password=False),
                        **WEBHOOK) as bot, asking(bot, webhook=True) as ask:
        fake, store = bot.fake, bot.store
        store.outage.retry_seconds = 1.0
        await ask(1, "vneid là gì")
        await fake.wait_for_sent(1, chat_id=1)
        proxy.black_hole()
        started = time.monotonic()
        await ask(2, "quên mật khẩu vneid")
        await fake.wait_for_sent(1, chat_id=2, timeout=60)
        first_wait = time.monotonic() - started
        await ask(3, "cổng dịch vụ công là gì")  # the outage is known now: no new wait
        await fake.wait_for_sent(1, chat_id=3, timeout=30)
        assert "Quên mật khẩu VNeID" in answered(fake, 2) and "Cổng Dịch vụ công" in answered(fake, 3)
        assert first_wait < 30  # bounded by the timeouts (2 s statement, 1 s connect, 5 s pool here), not minutes
        await proxy.restore()
        await asyncio.sleep(store.outage.retry_seconds)
        await ask(1, "thanh toán không dùng tiền mặt là gì")
        await fake.wait_for_sent(2, chat_id=1, timeout=40)
        assert all(APOLOGY not in m.plain_text for u in (1, 2, 3) for m in fake.sent_to(u))
    stored = {row.text for row in await stored_questions(database_url)}
    assert {"quên mật khẩu vneid", "cổng dịch vụ công là gì", "thanh toán không dùng tiền mặt là gì"} <= stored


async def test_postgres_refusing_connections_is_an_outage(database_url):
    """ALTER DATABASE ... ALLOW_CONNECTIONS false and terminated backends raise errors that are
    not OperationalError; read by their SQLSTATE, they are an outage like any other."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    url = make_url(database_url)
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    async def allow(on: bool) -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {str(on).lower()}'))
            if not on:
                await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": url.database})

    try:
        async with running_bot(database_url, **WEBHOOK) as bot, asking(bot, webhook=True) as ask:
            fake, store = bot.fake, bot.store
            store.outage.retry_seconds = 0.5
            await ask(1, "vneid là gì")
            await fake.wait_for_sent(1, chat_id=1)
            await allow(False)
            for user, question in ((2, "quên mật khẩu vneid"), (3, "cổng dịch vụ công là gì")):
                await ask(user, question)
                await fake.wait_for_sent(1, chat_id=user, timeout=30)
            assert "Quên mật khẩu VNeID" in answered(fake, 2) and "Cổng Dịch vụ công" in answered(fake, 3)
            await allow(True)
            await asyncio.sleep(store.outage.retry_seconds)
            await ask(1, "quên mật khẩu vneid")
            await fake.wait_for_sent(2, chat_id=1, timeout=30)
            assert all(APOLOGY not in m.plain_text for u in (1, 2, 3) for m in fake.sent_to(u))
    finally:
        await allow(True)
        await admin.dispose()
    stored = [row.text for row in await stored_questions(database_url)]
    assert stored.count("quên mật khẩu vneid") == 2 and "cổng dịch vụ công là gì" in stored


async def test_healthz_is_down_while_writes_fail_and_heals_after(database_url):
    """SQLite answers reads while another process holds the write lock: /healthz used to say ok."""
    async with breakable_database(database_url) as db, running_bot(db.url, **WEBHOOK) as bot, \
            asking(bot, webhook=True) as ask:
        fake, store = bot.fake, bot.store
        store.outage.retry_seconds = 0.5
        async with serve_app(create_app(bot.runtime)) as base, aiohttp.ClientSession() as http:
            async def health() -> tuple[int, dict]:
                async with http.get(f"{base}/healthz") as resp:
                    return resp.status, await resp.json()

            assert (await health())[0] == 200
            await db.cut()
            await ask(2, "quên mật khẩu vneid")
            await fake.wait_for_sent(1, chat_id=2, timeout=40)
            status, body = await health()
            assert status == 503 and body["database"].startswith("down")
            await db.restore()
            await asyncio.sleep(store.outage.retry_seconds + 0.1)
            deadline = time.monotonic() + 30
            while (await health())[0] != 200:  # the probe write goes through once the lock is gone
                assert time.monotonic() < deadline, "healthz did not recover"
                await asyncio.sleep(0.5)
    assert webhook_path(TOKEN)
