"""Small pieces of the Telegram channel and conversation that must not grow or drift."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels import telegram as tg
from bot.channels.telegram import MAX_TEXT, KeyedLocks, live_delays, split_text, utf16_len
from handlers.conversation import FloodGuard
from tests.fakes.telegram_api import FakeTelegram


def test_flood_guard_forgets_quiet_users():
    guard = FloodGuard(per_minute=3)
    for user in range(5000):
        guard.check(f"telegram:{user}", now=0.0)
    assert len(guard) == 5000  # all wrote within the minute: all remembered
    for user in range(FloodGuard.PRUNE_EVERY):
        guard.check(f"telegram:late{user}", now=120.0)  # two minutes later the first crowd is forgotten
    assert len(guard) <= FloodGuard.PRUNE_EVERY
    assert all(guard.check("telegram:x", now=200.0) == "ok" for _ in range(3))
    assert guard.check("telegram:x", now=200.0) == "warn" and guard.check("telegram:x", now=200.0) == "drop"


async def test_keyed_locks_serialise_one_chat_and_are_forgotten_after():
    locks = KeyedLocks()
    order: list[str] = []

    async def work(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(pause)
            order.append(f"{name}-")

    await asyncio.gather(work("a", "a1", 0.05), work("a", "a2", 0), work("b", "b1", 0))
    assert order.index("a1-") < order.index("a2+")  # same chat: in order
    assert order.index("b1+") < order.index("a1-")  # another chat does not wait
    assert len(locks) == 0
    for chat in range(1000):
        async with locks.hold(str(chat)):
            pass
    assert len(locks) == 0


def test_live_retries_stop_after_the_budget_and_stay_short(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tg.time, "monotonic", lambda: clock[0])
    delays = []
    for delay in live_delays():
        delays.append(delay)
        clock[0] += delay
    assert max(delays) <= tg.LIVE_MAX_DELAY
    assert tg.LIVE_RETRY_SECONDS - tg.LIVE_MAX_DELAY <= sum(delays) <= tg.LIVE_RETRY_SECONDS


async def test_fake_counts_text_length_in_utf16_units():
    from telegram.error import BadRequest

    async with FakeTelegram() as fake:
        fake.add_private_chat(1)
        async with fake.make_bot() as bot:
            await bot.send_message(1, "😀" * 2048)  # 4,096 UTF-16 units: the limit
            try:
                await bot.send_message(1, "😀" * 2049)
            except BadRequest as exc:
                assert "too long" in str(exc).lower()
            else:
                raise AssertionError("4,098 UTF-16 units accepted")


async def test_fake_reports_a_group_upgraded_to_a_supergroup():
    from telegram.error import ChatMigrated

    async with FakeTelegram() as fake:
        fake.add_group(-4001, "Tổ CNS")
        fake.migrate_group(-4001, -1004001)
        async with fake.make_bot() as bot:
            try:
                await bot.send_message(-4001, "xin chào")
            except ChatMigrated as exc:
                assert exc.new_chat_id == -1004001
            else:
                raise AssertionError("sent to a migrated group")
            await bot.send_message(-1004001, "xin chào")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", " ", "\n", "ạ", "😀", "𝕍"]), max_size=12_000))
def test_split_text_fits_telegram_in_utf16_units_and_keeps_the_text(text):
    parts = split_text(text)
    assert all(utf16_len(p) <= MAX_TEXT for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split()) or not text.strip()


def test_retry_after_is_read_as_ptb_22_wants_without_a_deprecation_warning():
    import datetime
    import warnings

    from telegram.error import RetryAfter

    from bot.channels.telegram import retry_after_seconds

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PTB warns when RetryAfter is built unless opted in
        assert retry_after_seconds(RetryAfter(3)) == 3.0
        assert retry_after_seconds(RetryAfter(datetime.timedelta(seconds=1.5))) == 1.5
