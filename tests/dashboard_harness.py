"""Serves the real app (dashboard + web chat) over HTTP on a fresh database, with staff accounts."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from bot.dashboard import auth
from bot.runtime import Runtime, ServiceRuntime
from bot.settings import load_settings
from bot.storage.dashboard_queries import DashboardQueries
from bot.storage.models import QuestionLog, utcnow
from bot.web import create_app
from tests.helpers import serve_app
from tests.knowledge_cache import knowledge_for

WARDS = "phuong-a:Phường A,phuong-b:Phường B"
PASSWORD = "mat-khau-rat-dai-123"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')

# Accounts are created directly; a cheaper scrypt cost keeps the suite fast (the format stores it).
auth_hash_cache: dict[str, str] = {}


def cheap_hash(password: str) -> str:
    if password not in auth_hash_cache:
        n = auth.SCRYPT_N
        auth.SCRYPT_N = 2**10
        try:
            auth_hash_cache[password] = auth.hash_password(password)
        finally:
            auth.SCRYPT_N = n
    return auth_hash_cache[password]


@dataclass
class Page:
    status: int
    text: str
    url: str
    headers: dict

    @property
    def csrf(self) -> str:
        found = CSRF_RE.search(self.text)
        assert found, f"no CSRF token on {self.url}"
        return found.group(1)


class Client:
    """A browser-like HTTP client: keeps cookies, follows redirects, reads CSRF tokens from pages."""

    def __init__(self, base: str):
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str, **kw) -> Page:
        async with self.http.get(self.base + path, **kw) as resp:
            return Page(resp.status, await resp.text(), str(resp.url), dict(resp.headers))

    async def raw(self, path: str) -> tuple[int, bytes, dict]:
        async with self.http.get(self.base + path) as resp:
            return resp.status, await resp.read(), dict(resp.headers)

    async def post(self, path: str, data: dict | list, *, csrf_from: str | None = None, **kw) -> Page:
        """POST a form; with csrf_from, first read the token from that page like a browser would."""
        if csrf_from is not None:
            token = (await self.get(csrf_from)).csrf
            data = [*data.items(), ("csrf_token", token)] if isinstance(data, dict) else [*data, ("csrf_token", token)]
        async with self.http.post(self.base + path, data=data, **kw) as resp:
            return Page(resp.status, await resp.text(), str(resp.url), dict(resp.headers))

    async def login(self, username: str, password: str = PASSWORD) -> Page:
        page = await self.get("/dashboard/login")
        return await self.post("/dashboard/login", {"csrf_token": page.csrf, "username": username,
                                                    "password": password})

    async def chat(self, text: str | None = None, action: str | None = None, ward: str | None = None) -> dict:
        body = {"text": text} if text is not None else {"action": action}
        if ward:
            body["ward"] = ward
        async with self.http.post(self.base + "/chat/api/message", json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def updates(self) -> list[dict]:
        async with self.http.post(self.base + "/chat/api/updates", json={}) as resp:
            return (await resp.json())["replies"]

    async def close(self) -> None:
        await self.http.close()


class Site:
    def __init__(self, url: str, runtime: ServiceRuntime):
        self.url = url
        self.runtime = runtime
        self.queries = DashboardQueries(runtime.store)
        self._clients: list[Client] = []

    async def account(self, username: str, role: str, ward: str | None = None, telegram: str | None = None) -> None:
        await self.queries.upsert_staff(username, cheap_hash(PASSWORD), role, ward, telegram)

    async def client(self, username: str | None = None) -> Client:
        client = Client(self.url)
        self._clients.append(client)
        if username is not None:
            page = await client.login(username)
            assert page.status == 200 and "/dashboard/" in page.url and "login" not in page.url, page.text[:500]
        return client

    async def seed_question(self, text: str, *, ward: str | None, decision: str = "fallback",
                            channel: str = "telegram", days_ago: float = 0, outcome: str | None = None,
                            faq_id: str | None = None) -> None:
        normalized = self.runtime.knowledge.matcher.match(text).normalized
        async with self.runtime.store.sessions.begin() as s:
            s.add(QuestionLog(channel=channel, user_key=f"k{len(text)}", ward=ward, text=text,
                              normalized=normalized,
                              decision=decision, faq_id=faq_id, score=10.0, alternatives=[], outcome=outcome,
                              created_at=utcnow() - dt.timedelta(days=days_ago)))

    async def close(self) -> None:
        for client in self._clients:
            await client.close()


def settings_for(database_url: str, **overrides):
    values = dict(database_url=database_url, user_key_secret="test-secret", wards=WARDS, telegram_bot_token="",
                  kb_reload_seconds=0.3, flood_limit_per_minute=200)
    values.update(overrides)
    return load_settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def running_site(database_url: str, **overrides) -> AsyncIterator[Site]:
    settings = settings_for(database_url, **overrides)
    runtime = await Runtime.open(settings, knowledge_for(settings))
    try:
        async with serve_app(create_app(runtime)) as url:
            site = Site(url, runtime)
            try:
                yield site
            finally:
                await site.close()
    finally:
        await runtime.close()
