"""Login throttling under concurrent guesses: the count is taken and the attempt recorded in
one step, so a burst of parallel guesses gets no more password checks than the policy allows,
also when the guesses are spread over two servers on one database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import Counter

import aiohttp
from sqlalchemy import select, update

from bot.dashboard import auth
from bot.storage.models import LoginAttempt, utcnow
from tests.dashboard_harness import PASSWORD, running_site

GUESSES = 120  # far more than the policy admits, all at once: a race would show


async def _guess(http: aiohttp.ClientSession, url: str, username: str, password: str) -> int:
    """One login POST with its own login-form token (cookie and field agree, as after a GET)."""
    token = f"t{id(http)}"
    async with http.post(url + "/dashboard/login", data={"csrf_token": token, "username": username,
                                                         "password": password},
                         headers={"Cookie": f"{auth.LOGIN_CSRF_COOKIE}={token}"}, allow_redirects=False) as resp:
        await resp.read()
        return resp.status


async def _attempts(site, username: str) -> list[LoginAttempt]:
    async with site.runtime.store.sessions() as s:
        return list(await s.scalars(select(LoginAttempt).where(LoginAttempt.username == username)
                                    .order_by(LoginAttempt.id)))


async def test_concurrent_wrong_guesses_get_at_most_the_policy_number_of_checks(database_url):
    limit = 5
    async with contextlib.AsyncExitStack() as stack:
        # Two servers (each with its own connection pool) on one database, like two processes.
        first = await stack.enter_async_context(running_site(database_url, dashboard_login_max_failures=limit))
        second = await stack.enter_async_context(running_site(database_url, dashboard_login_max_failures=limit))
        await first.account("lan", "staff", ward="phuong-a")
        http = await stack.enter_async_context(aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), connector=aiohttp.TCPConnector(limit=0)))
        checks_before = auth.PASSWORD_CHECKS["lan"]
        statuses = await asyncio.gather(*(
            _guess(http, (first if i % 2 else second).url, "lan", f"sai-mat-khau-{i}") for i in range(GUESSES)))
        checks = auth.PASSWORD_CHECKS["lan"] - checks_before
        admitted = await _attempts(first, "lan")

    counted = Counter(statuses)
    assert set(counted) <= {401, 429}, counted  # nothing failed with a server error
    assert counted[401] == checks == len(admitted) == limit, (counted, checks, len(admitted))
    assert counted[429] == GUESSES - limit
    assert not any(row.success for row in admitted)


async def test_a_success_keeps_the_record_and_restarts_the_count(database_url):
    async with running_site(database_url, dashboard_login_max_failures=3) as site:
        await site.account("lan", "staff", ward="phuong-a")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            assert [await _guess(http, site.url, "lan", "sai") for _ in range(2)] == [401, 401]
            assert await _guess(http, site.url, "lan", PASSWORD) == 303
            # The failures before the success are kept, the success recorded.
            assert [row.success for row in await _attempts(site, "lan")] == [False, False, True]
            # Counting restarts at the success: three more failures are admitted, the fourth waits.
            assert [await _guess(http, site.url, "lan", "sai") for _ in range(4)] == [401, 401, 401, 429]
            assert await _guess(http, site.url, "lan", PASSWORD) == 429  # even the right password
            assert len(await _attempts(site, "lan")) == 6  # refused attempts are audited, not admitted
            # The window passes: admitted again.
            async with site.runtime.store.sessions.begin() as s:
                await s.execute(update(LoginAttempt).values(created_at=utcnow() - dt.timedelta(minutes=16)))
            assert await _guess(http, site.url, "lan", PASSWORD) == 303
