"""Per-channel pacing: one global rate for the bot, with live replies ahead of broadcasts.

Why not PTB's AIORateLimiter: with its defaults it re-raises a 429 at once and does not pace
private chats, and it has no notion of priority, so a big broadcast would delay citizens'
answers. Here a token bucket refills at `rate` per second; broadcast sends wait for a token,
live replies take one without waiting (the bucket may go into debt, which slows the
broadcast, not the reply). A 429's retry_after pauses the whole channel.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    def __init__(self, rate: float, per_chat_interval: float = 1.0, burst: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.per_chat_interval = per_chat_interval
        self.capacity = burst if burst is not None else max(1.0, rate / 5)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._last_chat: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.pauses = 0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def pause(self, seconds: float) -> None:
        """Honour a 429 retry_after for the whole channel."""
        self.pauses += 1
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    async def _wait_pause(self) -> None:
        # A pause may be extended by another 429 while we sleep, hence the re-check.
        delay = self._paused_until - time.monotonic()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self._paused_until - time.monotonic()

    async def live(self) -> None:
        """Before a reply to a citizen: never queued behind broadcasts, but respects 429 pauses."""
        await self._wait_pause()
        now = time.monotonic()
        self._refill(now)
        self._tokens -= 1.0

    async def broadcast(self, chat_id: str) -> None:
        """Before a broadcast message: wait for the global rate and the per-chat spacing."""
        async with self._lock:  # broadcasts take tokens in order
            while True:
                await self._wait_pause()
                now = time.monotonic()
                self._refill(now)
                chat_wait = self._last_chat.get(chat_id, 0.0) + self.per_chat_interval - now
                if self._tokens >= 1.0 and chat_wait <= 0:
                    self._tokens -= 1.0
                    self._last_chat[chat_id] = now
                    if len(self._last_chat) > 10_000:
                        self._forget(now)
                    return
                token_wait = (1.0 - self._tokens) / self.rate if self._tokens < 1.0 else 0.0
                await asyncio.sleep(max(token_wait, chat_wait, 0.001))

    def _forget(self, now: float) -> None:
        stale = [chat for chat, at in self._last_chat.items() if now - at > self.per_chat_interval]
        for chat in stale:
            del self._last_chat[chat]
