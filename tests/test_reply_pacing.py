"""The bot's own replies stay within TELEGRAM_RATE_PER_SECOND, "for the whole bot".

The real service pieces (PTB Application polling getUpdates, storage, conversation) against
the fake Bot API with Telegram's published flood limits enforced: 30 messages per sliding
second overall, 3 per 3 s in one chat. Judged by what the fake saw (429s, messages per
sliding second), never by how long anything took, so a busy machine cannot fail these.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from bot.channels.pacing import Pacer
from tests.telegram_harness import running_bot

RATE = 25.0  # TELEGRAM_RATE_PER_SECOND
CITIZENS = range(3000, 3120)
CHATTY = range(3200, 3205)  # write five times in a row, as impatient citizens do
QUESTIONS = ["quên mật khẩu vneid", "cách nộp hồ sơ trực tuyến", "mã otp là gì", "xin chào", "cảm ơn"]


def busiest_second(times: list[float]) -> int:
    """Most sends within any sliding one-second window (how the platform counts)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def feed(fake, updates: list[tuple[int, str]], per_second: float) -> None:
    """Citizens write at `per_second` on average; a late tick sends what is due at once
    (that only makes bursts bigger, never smaller)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, (uid, text) in enumerate(updates):
        due = started + index / per_second
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        fake.user_sends_text(uid, text)


async def wait_answered(fake, expected: Counter, within: float) -> Counter:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        got = Counter(s.chat_id for s in fake.sent if s.chat_id in expected)
        if all(got[uid] >= n for uid, n in expected.items()) or loop.time() > deadline:
            return got
        await asyncio.sleep(0.2)


@pytest.mark.slow(8)
async def test_replies_at_22_updates_per_second_draw_no_429_from_the_strict_fake(database_url, caplog):
    caplog.set_level(logging.WARNING, logger="bot.channels.pacing")
    async with running_bot(database_url, telegram_rate_per_second=RATE, flood_limit_per_minute=60) as bot:
        fake = bot.fake
        fake.enforce_rate_limit(global_per_second=30, per_chat_per_second=1, burst=3)
        updates = [(uid, QUESTIONS[uid % 2]) for uid in CITIZENS]
        for i, uid in enumerate(CHATTY):  # interleaved: five messages each, close together
            at = 20 + 22 * i
            updates[at:at] = [(uid, text) for text in QUESTIONS]
        await feed(fake, updates, per_second=22.0)
        expected = Counter(uid for uid, _ in updates)
        # Replies are at least one message each; at 25/s the last one is out within seconds
        # of the last update. The timeout is only there to end a broken run.
        got = await wait_answered(fake, expected, within=120)
        pauses = bot.runtime.telegram.pacer.pauses
    missing = {uid: n - got[uid] for uid, n in expected.items() if got[uid] < n}
    assert not missing, missing
    sends = [s for s in fake.sent if s.method.startswith("send")]
    busiest = busiest_second([s.time for s in sends])
    print(f"{len(updates)} updates, {len(sends)} messages, busiest second {busiest}, "
          f"429s {fake.stats['429']}")
    rejected = [(r.params.get("chat_id"), r.time) for r in fake.requests if r.status == 429]
    assert fake.stats["429"] == 0 and fake.stats["rate_limited"] == 0, rejected
    assert pauses == 0
    assert busiest <= 30
    assert not [r for r in caplog.records if "429" in r.getMessage()]


@pytest.mark.slow(6)
async def test_after_a_429_the_waiting_replies_drain_at_the_rate_not_at_once(database_url, caplog):
    caplog.set_level(logging.WARNING, logger="bot.channels.pacing")
    async with running_bot(database_url, telegram_rate_per_second=RATE, flood_limit_per_minute=60) as bot:
        fake = bot.fake
        fake.enforce_rate_limit(global_per_second=30, per_chat_per_second=1, burst=3)
        fake.fail_next("sendMessage", 429, retry_after=2)  # the first reply: Telegram says wait
        citizens = list(range(4000, 4090))
        for uid in citizens:  # one getUpdates batch: everyone is waiting when the pause ends
            fake.user_sends_text(uid, QUESTIONS[0])
        got = await wait_answered(fake, Counter(citizens), within=120)
        pacer = bot.runtime.telegram.pacer
    assert all(got[uid] >= 1 for uid in citizens), got
    sends = [s for s in fake.sent if s.method.startswith("send") and s.chat_id in citizens]
    # Every reply waited out the pause, then they left at the rate: 90 replies at 25/s is
    # more than 3 seconds, and no second held more than the platform allows.
    assert fake.stats["rate_limited"] == 0  # only the injected 429, no storm after it
    assert fake.stats["429"] == 1 and pacer.pauses == 1
    assert busiest_second([s.time for s in sends]) <= 30
    assert [r.levelname for r in caplog.records if "429" in r.getMessage()] == ["WARNING"]


async def test_live_replies_go_before_waiting_broadcasts_but_within_the_rate():
    pacer = Pacer(10.0, per_chat_interval=0.0, burst=1.0)
    order: list[str] = []

    async def send(kind: str, chat: str) -> None:
        await (pacer.live(chat) if kind == "live" else pacer.broadcast(chat))
        order.append(kind)

    loop = asyncio.get_running_loop()
    started = loop.time()
    broadcasts = [asyncio.create_task(send("broadcast", f"b{i}")) for i in range(6)]
    await asyncio.sleep(0)  # the broadcasts queue first
    lives = [asyncio.create_task(send("live", f"l{i}")) for i in range(3)]
    await asyncio.gather(*broadcasts, *lives)
    elapsed = loop.time() - started
    # The first broadcast had the one token at hand; then the three live replies, although
    # they came later; then the remaining broadcasts.
    assert order == ["broadcast", "live", "live", "live", *["broadcast"] * 5]
    assert elapsed >= 0.75  # nine tokens at 10/s with one at hand: nobody skipped the bucket


async def test_live_replies_to_one_chat_come_in_short_bursts_only():
    pacer = Pacer(1000.0, per_chat_interval=0.2)
    loop = asyncio.get_running_loop()
    stamps = []
    for _ in range(5):
        await pacer.live("42")
        stamps.append(loop.time())
    # Three at once (a photo, the answer, a menu), then no more than three per 0.6 s.
    assert stamps[3] - stamps[0] >= 0.59 and stamps[4] - stamps[1] >= 0.59


async def test_sends_into_a_group_past_its_limit_wait_for_the_window_and_others_do_not():
    """Telegram: 20 messages a minute into one group. A surge of hand-offs into the team's group
    waits for the window instead of drawing a 429 that would pause every citizen's replies too.
    (Scaled down here: 4 per 0.8 s.)"""
    from bot.channels.pacing import CHAT_MARGIN
    from bot.channels.telegram import is_group_chat

    pacer = Pacer(1000.0, per_chat_interval=0.01, group_limit=4, group_window=0.8, is_group=is_group_chat)
    loop = asyncio.get_running_loop()
    stamps: dict[str, list[float]] = {"-100500": [], "-100600": [], "42": []}

    async def send(chat: str, count: int) -> None:
        for _ in range(count):
            await pacer.live(chat)
            stamps[chat].append(loop.time())

    started = loop.time()
    await asyncio.gather(send("-100500", 6), send("-100600", 4), send("42", 6))
    team = stamps["-100500"]
    assert team[3] - started < 0.7  # the first four go at once (bursts of three per chat)
    assert team[4] - team[0] >= 0.8 + CHAT_MARGIN - 0.01 and team[5] - team[1] >= 0.8 + CHAT_MARGIN - 0.01
    assert stamps["-100600"][-1] - started < 0.7  # another group has its own four
    # A private chat's six go in two bursts of three (0.23 s apart), not after a group's window.
    assert stamps["42"][-1] - started < 0.9


async def test_the_telegram_channel_keeps_the_published_group_limit(base_settings):
    from telegram.constants import FloodLimit

    from bot.channels.telegram import TelegramChannel

    async def respond(message):  # pragma: no cover - nothing arrives here
        return []

    async def unreachable(chat):  # pragma: no cover
        pass

    channel = TelegramChannel(base_settings.model_copy(update={"telegram_bot_token": "1:x"}), respond, unreachable)
    assert (channel.pacer.group_limit, channel.pacer.group_window) == (FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP, 60.0)
