"""Per-channel pacing: one global rate for the bot, with live replies ahead of broadcasts.

Why not PTB's AIORateLimiter: with its defaults it re-raises a 429 at once and does not pace
private chats, and it has no notion of priority, so a big broadcast would delay citizens'
answers. Here a token bucket refills at `rate` per second; broadcast sends wait for a token,
live replies take one without waiting (the bucket may go into debt, which slows the
broadcast, not the reply). A 429's retry_after pauses the whole channel, live replies too:
that wait is the platform's, not ours.

Broadcast sends to one chat are also spaced `per_chat_interval` apart (Telegram: about one
message per second per chat). That wait happens under the chat's own lock, never under the
global one, so a photo + text + quiz to one citizen does not hold up everyone else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

FORGET_AFTER = 10_000  # per-chat stamps kept before stale ones are dropped


class _Chat:
    __slots__ = ("last", "lock", "users")

    def __init__(self) -> None:
        self.last = float("-inf")
        self.lock = asyncio.Lock()
        self.users = 0


class Pacer:
    def __init__(self, rate: float, per_chat_interval: float = 1.0, burst: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.per_chat_interval = per_chat_interval
        # A small bucket: the platform counts in sliding one-second windows, so a burst of
        # `capacity` plus a second of refill must stay under its limit (25/s + 2.5 < 30/s).
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._chats: dict[str, _Chat] = {}
        self._lock = asyncio.Lock()
        self.pauses = 0  # 429s received by this process on the channel
        # Called with retry_after seconds on each 429 seen here (the campaign engine stores
        # it in the database so the broadcasting process pauses too).
        self.on_pause: Callable[[float], None] | None = None

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def pause(self, seconds: float) -> None:
        """Honour a 429 retry_after received here, for the whole channel."""
        self.pauses += 1
        self.hold(seconds)
        if self.on_pause is not None:
            self.on_pause(seconds)

    def hold(self, seconds: float) -> None:
        """Pause for a retry_after another process received (no callback, not counted)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    async def _wait_pause(self) -> None:
        # A pause may be extended by another 429 while we sleep, hence the re-check.
        delay = self._paused_until - time.monotonic()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self._paused_until - time.monotonic()

    async def live(self) -> None:
        """Before a reply to a citizen: never queued behind broadcasts, but respects 429 pauses."""
        await self._wait_pause()
        self._refill(time.monotonic())
        self._tokens -= 1.0

    async def broadcast(self, chat_id: str) -> None:
        """Before a broadcast message: wait for the chat's spacing, then for the global rate."""
        chat = self._chats.get(chat_id)
        if chat is None:
            if len(self._chats) >= FORGET_AFTER:
                self._forget(time.monotonic())
            chat = self._chats[chat_id] = _Chat()
        chat.users += 1
        try:
            async with chat.lock:  # one chat's parts go one after the other
                wait = chat.last + self.per_chat_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._token()
                chat.last = time.monotonic()
        finally:
            chat.users -= 1

    async def _token(self) -> None:
        async with self._lock:  # broadcasts take tokens in arrival order
            while True:
                await self._wait_pause()
                now = time.monotonic()
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    def _forget(self, now: float) -> None:
        stale = [key for key, chat in self._chats.items()
                 if not chat.users and now - chat.last > self.per_chat_interval]
        for key in stale:
            del self._chats[key]
