"""A database that is locked or out of connections (a flood of logins, a long migration) is a
"busy, try again" to the person at the screen (503 with a Vietnamese message and Retry-After),
not a 500; and the same request works once the database is free again."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.dashboard import auth
from tests.dashboard_harness import PASSWORD, running_site


@contextlib.asynccontextmanager
async def database_held(database_url: str) -> AsyncIterator[None]:
    """Another connection holds the lock the login needs: SQLite's whole file, PostgreSQL's table."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(url.database, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("BEGIN"))
            await conn.execute(text("LOCK TABLE login_attempts IN ACCESS EXCLUSIVE MODE"))
            yield
            await conn.execute(text("ROLLBACK"))
    finally:
        await engine.dispose()


async def _login(http: aiohttp.ClientSession, site_url: str, password: str) -> tuple[int, str, str | None]:
    token = "busy-test"
    async with http.post(site_url + "/dashboard/login", allow_redirects=False,
                         data={"csrf_token": token, "username": "lan", "password": password},
                         headers={"Cookie": f"{auth.LOGIN_CSRF_COOKIE}={token}"}) as resp:
        return resp.status, await resp.text(), resp.headers.get("Retry-After")


def _short_waits(database_url: str) -> str:
    """The same database, with waits for a lock of about a second (SQLite's busy timeout,
    PostgreSQL's statement timeout) so the test does not sit out the production defaults."""
    key = "timeout" if database_url.startswith("sqlite") else "command_timeout"
    return database_url + ("&" if "?" in database_url else "?") + f"{key}=1"


async def test_a_login_while_the_database_is_locked_is_a_polite_503_then_works(database_url):
    async with running_site(_short_waits(database_url)) as site:
        await site.account("lan", "staff", ward="phuong-a")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            async with database_held(database_url):
                status, body, retry_after = await _login(http, site.url, PASSWORD)
            assert status == 503, body
            assert "thử lại" in body and "Traceback" not in body
            assert retry_after is not None and int(retry_after) > 0
            status, _body, _ = await _login(http, site.url, PASSWORD)
            assert status == 303  # the database is free again: the same login goes through
