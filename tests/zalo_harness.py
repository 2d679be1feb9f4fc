"""Runs the real service (runtime, storage, conversation, web app) against the Zalo fakes."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.web import create_app
from tests.fakes.zalo_bot import FakeZaloBot
from tests.fakes.zalo_oa import FakeZaloOA, SentMessage
from tests.helpers import eventually, serve_app  # noqa: F401 - eventually: used by the Zalo tests
from tests.knowledge_cache import knowledge_for

USER = "8123456789012345678"  # Zalo ids are 64-bit numbers: kept as strings
WEBHOOK = "/zalo/webhook"
# A conversation test sends a citizen many messages in a few seconds; at the production spacing
# (CHAT_SEND_INTERVAL_SECONDS=1: 3 live messages per 3 s) each reply after the third waited
# seconds. Per-chat pacing itself is tested in tests/test_reply_pacing.py and the campaign tests.
FAST_CHAT = {"chat_send_interval_seconds": 0.05}


def oa_settings(fake: FakeZaloOA, database_url: str, **overrides) -> dict:
    values = dict(
        database_url=database_url, telegram_bot_token="", user_key_secret="test-secret",
        wards="phuong-a:Phường A", zalo_oa_app_id=fake.app_id, zalo_oa_secret_key=fake.oa_secret_key,
        zalo_oa_app_secret=fake.app_secret, zalo_oa_access_token=fake.access_token,
        zalo_oa_refresh_token=fake.refresh_token, zalo_oa_api_base_url=fake.api_base_url,
        zalo_oa_oauth_base_url=fake.oauth_base_url, zalo_oa_rate_per_second=200.0, **FAST_CHAT)
    values.update(overrides)
    return values


def bot_settings(fake: FakeZaloBot, database_url: str, **overrides) -> dict:
    values = dict(database_url=database_url, telegram_bot_token="", user_key_secret="test-secret",
                  zalo_bot_token=fake.token, zalo_bot_api_base_url=fake.base_url, zalo_bot_rate_per_second=200.0,
                  **FAST_CHAT)
    values.update(overrides)
    return values


class Service:
    """One running process: its runtime and the base URL of its web app."""

    def __init__(self, runtime: Runtime, base: str):
        self.runtime = runtime
        self.base = base

    @property
    def store(self):
        return self.runtime.store

    def channel(self, name: str = "zalo"):
        return self.runtime.channels.adapters[name]

    async def count(self, model, *where) -> int:
        async with self.store.sessions() as s:
            return await s.scalar(select(func.count()).select_from(model).where(*where))

    async def rows(self, model, *where) -> list:
        async with self.store.sessions() as s:
            return list((await s.scalars(select(model).where(*where))).all())


@contextlib.asynccontextmanager
async def running(settings: Settings | dict) -> AsyncIterator[Service]:
    if isinstance(settings, dict):
        settings = load_settings(_env_file=None, **settings)
    runtime = await Runtime.open(settings, knowledge_for(settings))
    await runtime.start_channels()
    try:
        async with serve_app(create_app(runtime)) as base:
            yield Service(runtime, base)
    finally:
        await runtime.close()


async def oa_say(fake: FakeZaloOA, service: Service, user: str, text: str, **event) -> list[SentMessage]:
    """A citizen's text through a signed webhook; returns what the OA sent them in answer."""
    before = len(fake.sent_to(user))
    status, _ = await fake.deliver_webhook(service.base + WEBHOOK, fake.make_event("user_send_text", user, text,
                                                                                   **event))
    assert status == 200
    await service.channel().idle()  # the event is handled in the background
    return fake.sent_to(user)[before:]


def choices(text: str) -> dict[str, str]:
    """label -> number of the numbered choices ("3. Quên mật khẩu VNeID") ending a text."""
    block = text.rsplit("\n\n", 1)[-1]  # the choices come last, after the answer's own numbered steps
    return {m.group(2).strip(): m.group(1) for m in re.finditer(r"^(\d+)\. (.+)$", block, re.M)}


def options(messages: list[SentMessage]) -> dict[str, str]:
    """label -> number of the choices shown in some OA messages: buttons, else numbered text."""
    found: dict[str, str] = {}
    for m in messages:
        if m.buttons:
            found.update({b["title"].split(". ", 1)[1]: b["payload"] for b in m.buttons})
        elif m.text:
            found.update(choices(m.text))
    return found


def number_of(found: dict[str, str], needle: str) -> str:
    return next(number for label, number in found.items() if needle.lower() in label.lower())
