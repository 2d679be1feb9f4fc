"""The steps every incoming message passes before its feature sees it, as a small chain
(outermost first): error handling, event de-duplication, loading the sender, flood limit.

Each step is `async (turn, next) -> result`; `chain` folds them around the router. The
storage-free core (handlers/answering.py) has only the first and the last. Only the
conversation calls them, so every channel (Telegram, Zalo OA, Zalo Bot, web, terminal) gets
the same rules; the Zalo adapters' own numbered-choice replies use the same `FloodRule`
object (bot/runtime.py passes `conversation.flood.check`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial

from bot.contracts import texts
from bot.contracts.messages import IncomingMessage, Reply
from bot.storage.pending import DATABASE_ERRORS, PendingLogs
from bot.storage.store import Store
from handlers.router import Result, Turn

log = logging.getLogger(__name__)

Next = Callable[[Turn], Awaitable[Result]]
Step = Callable[[Turn, Next], Awaitable[Result]]


def chain(steps: Sequence[Step], handler: Next) -> Next:
    """`handler` wrapped by `steps`, the first step outermost."""
    for step in reversed(steps):
        handler = partial(step, next=handler)  # type: ignore[assignment]
    return handler


# --- error handling --------------------------------------------------------------------------
def error_replies(msg: IncomingMessage) -> list[Reply]:
    """An honest apology (not the "no answer" fallback, which would mislead). In a team
    group only messages meant for the bot get a notice, and never the citizen menu."""
    if not msg.is_group:
        return [Reply(texts.INTERNAL_ERROR, kind="error")]
    if msg.action is not None or msg.reply_to_bot or msg.thread_id is not None:
        return [Reply(texts.GROUP_INTERNAL_ERROR, kind="error")]
    return []


async def handle_errors(turn: Turn, next: Next) -> Result:
    try:
        return await next(turn)
    except Exception:  # a citizen never sees a stack trace
        log.exception("handler failed for channel=%s", turn.msg.channel)
        return error_replies(turn.msg)


# --- event de-duplication --------------------------------------------------------------------
@contextlib.asynccontextmanager
async def released_on_failure(store: Store, key: str) -> AsyncIterator[None]:
    """Forget a claimed event key again if handling it fails (or is cancelled), so the
    platform's redelivery is handled instead of dropped as a duplicate."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await store.events.release(key)
        raise


async def claim_once(store: Store, key: str, handle: Callable[[], Awaitable[None]]) -> bool:
    """Handle an event once across processes; False for a duplicate. For events handled
    outside the conversation (the Zalo adapters' follow events and numbered choices)."""
    if not await store.claim_inbound_event(key):
        return False
    async with released_on_failure(store, key):
        await handle()
    return True


class Deduplicate:
    """Platforms retry: an event with a key (IncomingMessage.event_key) is handled once across
    processes. A citizen's claim records the sender in the same transaction (Users.arrive)."""

    def __init__(self, store: Store):
        self.store = store

    async def __call__(self, turn: Turn, next: Next) -> Result:
        msg, store = turn.msg, self.store
        if msg.event_key is None:
            return await next(turn)
        if msg.is_group:
            fresh = await store.claim_inbound_event(msg.event_key)
        else:
            fresh, turn.user = await store.users.arrive(msg.event_key, msg.channel, msg.user_id, msg.ward or None)
            turn.arrived = True
        if not fresh:
            return []  # already handled here or by another process (the platform retried)
        async with released_on_failure(store, msg.event_key):
            return await next(turn)


# --- the sender -----------------------------------------------------------------------------
class LoadUser:
    """The sender's record (None while the database is unreachable, in which case the bot
    still answers from the knowledge base and queues its logs in `pending`)."""

    def __init__(self, store: Store, pending: PendingLogs):
        self.store = store
        self.pending = pending

    async def __call__(self, turn: Turn, next: Next) -> Result:
        store, msg = self.store, turn.msg
        if msg.is_group:
            return await next(turn)
        if not turn.arrived and not store.outage.skip:
            try:
                turn.user = await store.users.touch(msg.channel, msg.user_id, msg.ward or None)
            except DATABASE_ERRORS as exc:
                store.outage.failed(exc)
        if turn.user is not None:
            store.outage.recovered()
            if self.pending.items:
                await self.pending.flush(store)
        return await next(turn)


# --- flood limit ----------------------------------------------------------------------------
class FloodGuard:
    """Per-user sliding window; the first message over the limit gets one polite notice.

    Users quiet for a minute are forgotten now and then, so memory follows the number of
    people writing right now, not everyone who ever wrote."""

    PRUNE_EVERY = 1000  # checks

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._warned: set[str] = set()
        self._checks = 0

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        idle = [key for key, window in self._seen.items() if not window or now - window[-1] > 60]
        for key in idle:
            del self._seen[key]
            self._warned.discard(key)

    def check(self, key: str, now: float | None = None) -> str:
        """'ok', 'warn' (send one notice) or 'drop'."""
        now = time.monotonic() if now is None else now
        self._checks += 1
        if self._checks % self.PRUNE_EVERY == 0:
            self._prune(now)
        window = self._seen[key]
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) < self.per_minute:
            window.append(now)
            self._warned.discard(key)
            return "ok"
        if key in self._warned:
            return "drop"
        self._warned.add(key)
        return "warn"


class FloodRule:
    """The one flood rule for citizens on every channel: `per_minute` messages per sender
    (0: no limit), keyed "<channel>:<user id>"; the conversation's step and the Zalo adapters'
    own replies call the same `check`."""

    def __init__(self, per_minute: int):
        self.guard = FloodGuard(per_minute)

    def __len__(self) -> int:
        return len(self.guard)

    def check(self, key: str) -> str:
        return self.guard.check(key) if self.guard.per_minute > 0 else "ok"

    async def __call__(self, turn: Turn, next: Next) -> Result:
        msg = turn.msg
        if msg.is_group:
            return await next(turn)
        verdict = self.check(f"{msg.channel}:{msg.user_id}")
        if verdict == "ok":
            return await next(turn)
        return [Reply(texts.FLOOD, kind="notice")] if verdict == "warn" else []
