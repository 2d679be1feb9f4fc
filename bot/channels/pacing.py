"""Per-channel pacing: one global rate for the bot, with live replies ahead of broadcasts.

Why not PTB's AIORateLimiter: with its defaults it re-raises a 429 at once and does not pace
private chats, and it has no notion of priority, so a big broadcast would delay citizens'
answers. Here every send waits for a token from a bucket that refills at `rate` per second,
live replies and broadcasts alike; a dispatcher hands tokens out in order, waiting live
replies first. So replies never queue behind a broadcast, and never go over the rate either
(a getUpdates batch or a group commit releasing many replies at once is spread out at the
rate, not sent in one burst that the platform answers with 429s).

With several processes the sends take slots, 1/rate apart, from one schedule in the database
(`shared`, a bot/storage/send_budget.SharedBudget), reserved a few at a time, so the rate
holds for the whole bot; replies may reserve further ahead than broadcasts. If the database
cannot be asked, this process falls back to its own bucket until it can.

A 429's retry_after pauses the whole channel, live replies too (that wait is the platform's,
not ours), in every process (the shared schedule stores it), and empties the bucket: after
the pause the queue drains at the rate, not all at once. Slots reserved here that would fall
inside the pause are given up and their sends queue again.

Per chat: broadcasts to one chat are spaced `per_chat_interval` apart (Telegram: about one
message per second per chat); live replies may come in short bursts (a photo, the answer, a
menu), at most CHAT_BURST (3) within CHAT_BURST * per_chat_interval seconds. Those waits
happen under the chat's own lock, never under the global one, so one citizen's messages do
not hold up everyone else.

Per group, where the platform has such a limit (`group_limit` per `group_window` seconds, for
the chats `is_group` names; Telegram: 20 a minute into one group): live sends into a group past
it wait for the window, so a surge of hand-offs into a ward team's group is spread over the
minute instead of drawing a 429, whose pause would hold up every citizen's reply as well.
Counted per process: two processes share the global rate through the database, not this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

FORGET_AFTER = 10_000  # per-chat stamps kept before stale ones are dropped
CHAT_BURST = 3  # live sends to one chat within CHAT_BURST * per_chat_interval seconds
# ... plus this margin: we stamp a send before its request leaves, the platform when it
# arrives, and the first of a burst may arrive later than the last.
CHAT_MARGIN = 0.2
SHARED_TIMEOUT = 2.0  # seconds to wait for the database's bucket before using our own
SHARED_RETRY = 10.0  # after the shared bucket failed, use our own this long before asking again
# ... at this share of the rate: the other processes may be pacing alone too (at full rate each,
# two processes drew 429s); a deployment runs one or two processes, rarely more.
SHARED_FALLBACK_SHARE = 0.5
# A reserved slot that this process reaches later than this (its event loop stalled: CPU
# starvation, a long GC) is given back and a new one taken: sent late, it would land in the
# same second as other processes' on-time slots and exceed the bot-wide rate.
LATE_SLOT = 0.2
LATE_RETRIES = 3  # ... but a send is not held back more often than this


class SharedSlots(Protocol):
    """A send schedule kept where every process of the bot sees it (the database)."""

    async def take(self, want: int, live: bool) -> tuple[list[float], float]:
        """(seconds from now of each send slot reserved, up to `want`; if none, seconds to
        wait before asking again)."""

    async def pause(self, seconds: float) -> None:
        """Pause the channel for every process and empty the bucket."""


class _Chat:
    __slots__ = ("group_sent", "lock", "sent", "users")

    def __init__(self, group_limit: int | None = None) -> None:
        self.sent: deque[float] = deque(maxlen=CHAT_BURST)  # times of the latest sends
        # ... and, in a group with a limit, of the latest `group_limit` ones
        self.group_sent: deque[float] | None = deque(maxlen=group_limit) if group_limit else None
        self.lock = asyncio.Lock()
        self.users = 0

    @property
    def last(self) -> float:
        return self.sent[-1] if self.sent else float("-inf")


class Pacer:
    def __init__(self, rate: float, per_chat_interval: float = 1.0, burst: float | None = None,
                 name: str = "channel", group_limit: int | None = None, group_window: float = 60.0,
                 is_group: Callable[[str], bool] | None = None):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.name = name
        self.rate = rate
        self.per_chat_interval = per_chat_interval
        self.group_limit = group_limit
        self.group_window = group_window
        self._is_group = is_group or (lambda _chat: False)
        # A small bucket: the platform counts in sliding one-second windows, so a burst of
        # `capacity` plus a second of refill must stay under its limit (25/s + 2.5 < 30/s).
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._chats: dict[str, _Chat] = {}
        self._live: deque[asyncio.Future] = deque()
        self._bulk: deque[asyncio.Future] = deque()
        self._dispatcher: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self.shared: SharedSlots | None = None  # the database's schedule, with several processes
        self._reserved: dict[asyncio.Future, tuple[asyncio.TimerHandle, bool]] = {}  # slot timers
        self._late: weakref.WeakKeyDictionary[asyncio.Future, int] = weakref.WeakKeyDictionary()
        self._shared_failed_at = float("-inf")
        self.pauses = 0  # 429s received by this process on the channel
        # Called with retry_after seconds on each 429 seen here (the campaign engine stores
        # it in the database so the broadcasting process pauses too).
        self.on_pause: Callable[[float], None] | None = None

    def connect(self, name: str, on_pause: Callable[[float], None] | None,
                shared: SharedSlots | None) -> None:
        """Wire the pacer into the campaign engine (a 429 stored for every process) and, with
        several processes, the database's send schedule; called once by the composition root."""
        self.name = name
        if self.on_pause is None:
            self.on_pause = on_pause
        if self.shared is None:
            self.shared = shared

    # --- pauses ---------------------------------------------------------------------
    def pause(self, seconds: float) -> None:
        """Honour a 429 retry_after received here, for the whole channel (every process)."""
        self.pauses += 1
        log.warning("%s: rate limited (429), pausing sends for %.1f s (%d 429s in this process)",
                    self.name, seconds, self.pauses)
        self.hold(seconds)
        if self.on_pause is not None:
            self.on_pause(seconds)
        if self.shared is not None:
            self._spawn(self._share_pause(seconds))

    def hold(self, seconds: float) -> None:
        """Pause for a retry_after another process received (no callback, not counted).

        The bucket is emptied and refills only from the end of the pause, so what queued up
        meanwhile leaves at the rate."""
        until = time.monotonic() + max(0.0, seconds)
        if until <= self._paused_until:
            return
        self._paused_until = until
        self._tokens = min(self._tokens, 0.0)
        self._stamp = max(self._stamp, until)
        self._requeue_reserved()

    def _requeue_reserved(self) -> None:
        """Slots reserved before a pause would fall inside it: their sends queue again, in order."""
        if not self._reserved:
            return
        pending = list(self._reserved.items())
        self._reserved.clear()
        for waiter, (timer, live) in reversed(pending):
            timer.cancel()
            if not waiter.done():
                (self._live if live else self._bulk).appendleft(waiter)
        self._kick()

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    async def _wait_pause(self) -> None:
        # A pause may be extended by another 429 while we sleep, hence the re-check.
        delay = self._paused_until - time.monotonic()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self._paused_until - time.monotonic()

    async def _share_pause(self, seconds: float) -> None:
        assert self.shared is not None
        try:
            async with asyncio.timeout(SHARED_TIMEOUT):
                await self.shared.pause(seconds)
        except Exception:
            log.warning("%s: could not share the 429 pause with other processes", self.name, exc_info=True)

    # --- the two kinds of send ------------------------------------------------------
    async def live(self, chat_id: str | None = None) -> None:
        """Before a reply to a citizen (or a team group): ahead of broadcasts, within the rate."""
        if chat_id is None:
            await self._token(live=True)
            return
        async with self._chat(str(chat_id)) as chat:
            window = CHAT_BURST * self.per_chat_interval + CHAT_MARGIN
            if len(chat.sent) == CHAT_BURST:  # a short burst is fine, a long one is not
                wait = chat.sent[0] + window - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            group = chat.group_sent
            if group is not None and len(group) == group.maxlen:  # the group's limit is used up
                wait = group[0] + self.group_window + CHAT_MARGIN - time.monotonic()
                if wait > 0:
                    log.info("%s: %d messages into group %s within %.0f s; the next waits %.1f s",
                             self.name, group.maxlen, chat_id, self.group_window, wait)
                    await asyncio.sleep(wait)
            await self._token(live=True)
            chat.sent.append(time.monotonic())
            if group is not None:
                group.append(chat.sent[-1])

    async def broadcast(self, chat_id: str) -> None:
        """Before a broadcast message: wait for the chat's spacing, then for the global rate."""
        async with self._chat(str(chat_id)) as chat:  # one chat's parts go one after the other
            wait = chat.last + self.per_chat_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._token(live=False)
            chat.sent.append(time.monotonic())

    def waiting(self, chat_id: str | int) -> bool:
        """Whether a send to this chat is waiting for its turn (a reply's later parts)."""
        chat = self._chats.get(str(chat_id))
        return chat is not None and chat.users > 0

    @contextlib.asynccontextmanager
    async def _chat(self, chat_id: str):
        chat = self._chats.get(chat_id)
        if chat is None:
            if len(self._chats) >= FORGET_AFTER:
                self._forget(time.monotonic())
            chat = self._chats[chat_id] = _Chat(self.group_limit if self._is_group(chat_id) else None)
        chat.users += 1
        try:
            async with chat.lock:
                yield chat
        finally:
            chat.users -= 1

    def _forget(self, now: float) -> None:
        horizon = CHAT_BURST * self.per_chat_interval
        stale = [key for key, chat in self._chats.items() if not chat.users and now - chat.last > horizon
                 and (not chat.group_sent or now - chat.group_sent[-1] > self.group_window)]
        for key in stale:
            del self._chats[key]

    # --- tokens ---------------------------------------------------------------------
    async def _token(self, live: bool) -> None:
        if (self.shared is None and not self._live and not self._bulk
                and time.monotonic() >= self._paused_until):
            self._refill(time.monotonic())
            if self._tokens >= 1.0:  # nobody waiting and a token at hand: no queue
                self._tokens -= 1.0
                return
        waiter = asyncio.get_running_loop().create_future()
        (self._live if live else self._bulk).append(waiter)
        self._kick()
        await waiter  # cancelled while waiting: the dispatcher skips it

    def _kick(self) -> None:
        if (self._live or self._bulk) and (self._dispatcher is None or self._dispatcher.done()):
            with contextlib.suppress(RuntimeError):  # no running loop: nobody can be waiting
                self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        """Hand out tokens while anyone waits: live replies first, then broadcasts in order."""
        try:
            await self._hand_out()
        except Exception:  # a bug here must not leave every send waiting forever
            log.exception("%s: pacing failed; letting the waiting sends go", self.name)
            while (item := self._next_waiter()) is not None:
                item[0].set_result(None)

    async def _hand_out(self) -> None:
        while True:
            for queue in (self._live, self._bulk):
                while queue and queue[0].done():  # cancelled waiters
                    queue.popleft()
            if not self._live and not self._bulk:
                return
            await self._wait_pause()
            live = sum(1 for w in self._live if not w.done())
            want = live + sum(1 for w in self._bulk if not w.done())
            if not want:
                continue
            if self.shared is not None and time.monotonic() - self._shared_failed_at > SHARED_RETRY:
                asked = time.monotonic()
                try:
                    async with asyncio.timeout(SHARED_TIMEOUT):
                        delays, wait = await self.shared.take(want, live > 0)  # wait: a stored pause too
                except Exception as exc:
                    self._shared_failed_at = time.monotonic()
                    log.warning("%s: the shared send budget is unavailable (%s); pacing this process "
                                "alone for %.0f s", self.name, type(exc).__name__, SHARED_RETRY)
                    continue
                self._use_slots(delays, time.monotonic() - asked)
                if len(delays) < want:
                    await asyncio.sleep(max(wait, 0.001))
                continue
            now = time.monotonic()  # our own bucket: one process, or the database is away
            rate = self.rate * (SHARED_FALLBACK_SHARE if self.shared is not None else 1.0)
            self._refill(now, rate)
            granted = min(want, max(0, math.floor(self._tokens)))
            self._tokens -= granted
            for _ in range(granted):
                item = self._next_waiter()
                if item is None:
                    break
                item[0].set_result(None)
            if granted < want:
                await asyncio.sleep(max((1.0 - self._tokens) / rate, 0.001))

    def _use_slots(self, delays: list[float], trip: float) -> None:
        """Give the reserved slots (seconds after the schedule's "now") to the waiters in line.

        The schedule's "now" fell somewhere in the `trip` the answer took: the slots are counted
        from its middle. When the trip was longer than LATE_SLOT (a starved event loop, a slow
        database) their times are not known well enough: sent at a guess they could land in
        another process's slots and exceed the bot-wide rate, so they are left unused and new
        ones taken (at most LATE_RETRIES times per send, as for a slot reached late)."""
        unsure: list[tuple[asyncio.Future, bool]] = []
        for delay in delays:
            item = self._next_waiter()
            if item is None:
                break
            late = self._late.get(item[0], 0)
            if trip > LATE_SLOT and late < LATE_RETRIES:
                self._late[item[0]] = late + 1
                unsure.append(item)
                continue
            self._release_at(*item, delay - trip / 2)
        for waiter, live in reversed(unsure):  # first in line again, in their order
            (self._live if live else self._bulk).appendleft(waiter)

    def _next_waiter(self) -> tuple[asyncio.Future, bool] | None:
        for queue, live in ((self._live, True), (self._bulk, False)):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    return waiter, live
        return None

    def _release_at(self, waiter: asyncio.Future, live: bool, delay: float) -> None:
        """Let a send go at its reserved slot, `delay` seconds from now."""
        if delay <= 0.001:
            waiter.set_result(None)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay

        def release() -> None:
            self._reserved.pop(waiter, None)
            if waiter.done():
                return
            late = self._late.get(waiter, 0)
            if loop.time() - due > LATE_SLOT and late < LATE_RETRIES:
                self._late[waiter] = late + 1  # the slot has passed: queue again, first in line
                (self._live if live else self._bulk).appendleft(waiter)
                self._kick()
                return
            waiter.set_result(None)

        self._reserved[waiter] = (loop.call_later(delay, release), live)

    def _refill(self, now: float, rate: float | None = None) -> None:
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * (rate or self.rate))
            self._stamp = now

    def _spawn(self, coro) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no running loop (a synchronous caller in a test)
            coro.close()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)
