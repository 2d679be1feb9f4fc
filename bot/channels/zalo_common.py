"""What the two Zalo channels share: stored numbered choices, turn handling, webhook plumbing.

Neither Zalo product has inline keyboards like Telegram's, so every reply carries numbered
choices (the default rendering of bot/channels/base.py) that the citizen answers by typing
the number (the OA may also show them as buttons that send the number); the choices shown
are stored per citizen (bot/channels/choices.py) so the number can be read back. Events are acknowledged at once and handled
in background tasks that this class keeps (and cancels on stop); one citizen's messages are
handled in order. Every citizen message, typed numbers included, passes the conversation's
flood guard.

While the database is unreachable citizens are still answered, as on Telegram: event keys
are remembered in memory (Store.claim_inbound_event), the conversation answers from the
knowledge base and queues question logs, and the adapter's own storage (the numbered choices
shown) is skipped while `store.outage` says the database is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bot import json_body, metrics
from bot.channels.base import Backoff, Channel, FloodCheck, Responder, Unreachable
from bot.channels.choices import ChoiceStore, Rendered
from bot.channels.keyed_locks import KeyedLocks
from bot.channels.pacing import Pacer
from bot.contracts import texts
from bot.contracts.delivery import RateLimited, RecipientGone, Transient
from bot.contracts.messages import IncomingMessage, Reply
from bot.storage import inbound
from bot.storage.pending import DATABASE_ERRORS
from bot.storage.store import Store
from handlers.middleware import claim_once

log = logging.getLogger(__name__)

# Later parts of one reply (see Parts): four tries, the same back-off as live replies.
PART_ATTEMPTS = 4
PART_RETRY = Backoff((0.5, 1.0, 2.0), 4.0, attempts=PART_ATTEMPTS)
MAX_WEBHOOK_BYTES = 64 * 1024
STOP_GRACE_SECONDS = 5.0
INBOUND_RETENTION = dt.timedelta(days=2)  # longer than any platform retry schedule
HOUSEKEEPING_SECONDS = 3600.0

T = TypeVar("T")


class WebhookRejected(Exception):
    """A webhook request refused before any processing: HTTP status and a metrics reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_json_body(request: web.Request, channel: str) -> tuple[bytes, dict[str, Any]]:
    """The raw body (needed for signatures) and its JSON object; 413 / 400 otherwise."""
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        raise WebhookRejected(413, "too_large")
    try:
        raw = await request.content.read(MAX_WEBHOOK_BYTES + 1)
    except web.HTTPRequestEntityTooLarge:
        raise WebhookRejected(413, "too_large") from None
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise WebhookRejected(413, "too_large")
    try:
        return raw, json_body.parse_object(raw)
    except json_body.BadJson:
        raise WebhookRejected(400, "malformed") from None


async def post_json(session: aiohttp.ClientSession, url: str, unreachable: Callable[[str], Exception],
                    **request: Any) -> tuple[int, Any]:
    """POST and read the answer: (HTTP status, its JSON, or None when the body is not JSON).

    A connection error or timeout raises `unreachable(description)`: each caller has its own
    exception for "try again later"."""
    try:
        async with session.post(url, **request) as resp:
            status = resp.status
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unreachable(f"{type(exc).__name__}: {exc}") from exc
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


class Parts:
    """Sends the messages one reply is made of (image, templates, text chunks) in order.

    Once one is out, a rate limit or transient failure of a later one is retried here:
    retrying the whole reply, as callers do, would send the first ones twice.
    """

    def __init__(self, pace: Callable[[], Awaitable[None]], send: Callable[..., Awaitable[Any]]):
        self._pace = pace
        self._send = send
        self.sent = 0

    async def __call__(self, *args: Any) -> Any:
        pauses = PART_RETRY.pauses()
        for attempt in itertools.count(1):
            await self._pace()
            try:
                result = await self._send(*args)
            except (RateLimited, Transient) as exc:
                if not self.sent or attempt >= PART_ATTEMPTS:
                    raise
                await asyncio.sleep(exc.retry_after if isinstance(exc, RateLimited) else next(pauses))
                continue
            self.sent += 1
            return result
        raise AssertionError("unreachable")


def rejection(channel: str, exc: WebhookRejected) -> web.Response:
    metrics.WEBHOOK_REJECTED.labels(channel, exc.reason).inc()
    return web.Response(status=exc.status, text=exc.reason.replace("_", " "))


class ZaloChannel(Channel):
    """Base of the two Zalo channels; subclasses implement `transmit` and `create`. Zalo cannot
    edit sent messages: campaign progress goes out as new messages (`edits_messages`)."""

    def __init__(self, store: Store, respond: Responder, on_unreachable: Unreachable, pacer: Pacer,
                 flood: FloodCheck | None = None):
        self.store = store
        self._respond = respond
        self._on_unreachable = on_unreachable
        self._flood = flood or (lambda _key: "ok")
        self.pacer = pacer
        self.choices = ChoiceStore(store.sessions, self.name)
        self._locks = KeyedLocks()
        self._tasks: set[asyncio.Task] = set()

    # --- background tasks -------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], what: str = "event") -> asyncio.Task:
        """Run `coro` in the background, keeping a reference (asyncio only keeps weak ones)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s: %s failed: %s", self.name, what, t.exception(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def idle(self) -> None:
        """Wait until every background event has been handled (tests, shutdown)."""
        while any(not t.done() for t in self._tasks if t.get_name() != "loop"):
            await asyncio.gather(*(t for t in list(self._tasks) if t.get_name() != "loop"),
                                 return_exceptions=True)

    async def stop_tasks(self) -> None:
        """Let events in hand finish for a moment, then cancel what is left (loops included)."""
        for task in self._tasks:
            if task.get_name() == "loop":
                task.cancel()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*late, return_exceptions=True)

    def spawn_loop(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = self.spawn(coro, "background loop")
        task.set_name("loop")
        return task

    async def housekeeping(self) -> None:
        """Forget old inbound event keys of this channel, once an hour."""
        while True:
            try:
                await inbound.prune(self.store.sessions, self.name, INBOUND_RETENTION)
            except Exception:
                log.warning("%s: could not prune inbound event keys", self.name, exc_info=True)
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    # --- storage ------------------------------------------------------------------
    async def _db(self, what: str, call: Callable[[], Awaitable[T]], default: T) -> T:
        """`call()` unless the database is known to be down. When it cannot be reached the
        outage is noted (so the next calls skip it for a while) and `default` returned: the
        citizen is answered all the same."""
        outage = self.store.outage
        if outage.skip:
            return default
        try:
            return await call()
        except DATABASE_ERRORS as exc:
            outage.failed(exc)
            log.warning("%s: database unavailable, %s", self.name, what)
            return default

    async def _mark_gone(self, chat_id: str) -> None:
        """The citizen blocked or unfollowed: stop sending to them (campaigns, hand-offs).
        During a database outage this is lost; the next send to them fails and marks them."""
        await self._db("a citizen who left is not marked unreachable",
                       lambda: self._on_unreachable(str(chat_id)), None)

    # --- incoming -------------------------------------------------------------------
    def take(self, key: str, citizen: str, handle: Callable[[], Awaitable[None]]) -> None:
        """Handle a platform event once, in the background, after the earlier events of
        `citizen` (its sender, or "" when it has none).

        The webhook is acknowledged without waiting for the database: the key is claimed in
        the background (Store.claim_inbound_event, which keeps answering from memory while
        the database is unreachable). If handling fails the key is forgotten again, so a
        redelivery of the event is not dropped as a duplicate of one that was never handled.
        """
        self.spawn(self._handle_once(key, citizen or key, handle))

    async def _handle_once(self, key: str, order: str, handle: Callable[[], Awaitable[None]]) -> None:
        async with self._locks.hold(order):  # one citizen's events in the order they came
            # False for a duplicate (Zalo retried, or another process has it); a failure is
            # raised (logged by spawn()) after the key is forgotten, as in the conversation.
            await claim_once(self.store, key, handle)

    async def on_text(self, user_id: str, text: str) -> None:
        """A citizen's text: a number picks one of the choices shown last, else it is a message.

        Called by `take`'s task, which holds the citizen's lock."""
        choice = await self._db("stored choices not read; the message is read as text",
                                lambda: self.choices.resolve(user_id, text), None)
        if choice is not None and choice.reply is not None:
            await self._local_reply(user_id, choice.reply)
            return
        if choice is not None and choice.action is not None:
            msg = IncomingMessage(channel=self.name, user_id=user_id, action=choice.action)
        else:
            msg = IncomingMessage(channel=self.name, user_id=user_id, text=text)
        await self.send_turn(user_id, await self._respond(msg))

    async def _local_reply(self, user_id: str, reply: Reply) -> None:
        """A reply worked out here (quiz verdict, "type 1 to 6"): same flood guard as the
        conversation, and the citizen's message reopens the messaging window."""
        verdict = self._flood(f"{self.name}:{user_id}")
        if verdict == "drop":
            return
        if verdict == "warn":
            reply = Reply(texts.FLOOD, kind="notice")
        await self._db("a message from a citizen is not recorded",
                       lambda: self.store.users.touch(self.name, user_id), None)
        await self.send_turn(user_id, [reply], keep_choices=True)

    async def on_message(self, msg: IncomingMessage) -> None:
        """Anything else from a citizen (follow, an image...); called under the citizen's lock."""
        await self.send_turn(msg.chat, await self._respond(msg))

    # --- outgoing -------------------------------------------------------------------
    async def send_turn(self, chat_id: str, replies: list[Reply], *, keep_choices: bool = False) -> None:
        """Send one turn's replies, numbering choices across them, then store those choices."""
        sent: list[Rendered] = []
        number = 1
        for reply in replies:
            try:
                rendered = (await self.send_live(chat_id, reply, start=number, remember=False)).rendered
            except RecipientGone:
                return  # marked unreachable: the rest would fail the same way
            except Exception:
                log.warning("%s: a reply could not be sent", self.name, exc_info=True)
                continue
            sent.append(rendered)
            number += len(rendered.actions)
        if not keep_choices:
            await self.remember_choices(chat_id, sent)

    async def remember_choices(self, chat_id: str, rendered: list[Rendered]) -> None:
        """Remember the numbered choices just shown; without the database the replies are
        out all the same, and typed numbers read as text."""
        await self._db("the choices just shown are not stored", lambda: self.choices.save(chat_id, rendered), None)

    async def recipient_gone(self, chat_id: str) -> None:
        await self._mark_gone(chat_id)
