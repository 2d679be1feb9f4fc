"""What every channel is: the one declared contract between the bot and a messaging platform.

A channel (Telegram, Zalo OA, Zalo Bot, web chat) subclasses `Channel` and implements
`transmit` (one attempt to put one reply on the platform), usually `create` (build it from
settings and the context) and `off_reason`; everything else has a default here. The composition root (bot/runtime.py) builds
every channel from settings with `Channel.from_settings`, which says why a channel is off
when its settings are missing, and hands it a `ChannelContext`: the callable that answers an
incoming message and the storage it may use, so no channel imports the runtime.

`deliver` is written once, here: it renders the reply (buttons as numbered text unless the
channel shows real buttons), paces the platform calls, counts the send in the metrics and
reports the channel's health, then calls the channel's `transmit`. `send` (live replies)
retries rate limits and transient failures with the channel's `live_retry` back-off.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from aiohttp import web

from bot import metrics
from bot.channels.attempts import paced
from bot.channels.choices import Rendered, render
from bot.channels.health import ChannelHealth
from bot.channels.pacing import Pacer
from bot.contracts.delivery import BeforeSend, NotAttempted, RateLimited, RecipientGone, SendError, Transient
from bot.contracts.messages import Button, IncomingMessage, Reply
from bot.settings import Settings
from bot.storage.store import Store

Responder = Callable[[IncomingMessage], Awaitable[list[Reply]]]
Unreachable = Callable[[str], Awaitable[None]]
FloodCheck = Callable[[str], str]  # handlers.conversation.FloodGuard.check: "ok", "warn" or "drop"
Pace = Callable[[], Awaitable[None]]
WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """An HTTP route a channel serves on the bot's web app (a platform's webhook)."""

    path: str
    handler: WebHandler
    method: str = "POST"


@dataclass(frozen=True)
class Off:
    """A channel that cannot run with these settings, and why (shown by /healthz and the logs)."""

    reason: str

    @property
    def state(self) -> str:
        return f"off: {self.reason}"


@dataclass(frozen=True)
class ChannelContext:
    """What the composition root hands a channel: nothing of the runtime itself."""

    store: Store
    respond: Responder  # the conversation: an incoming message -> the replies to send
    flood: FloodCheck  # the conversation's flood guard, for replies a channel works out itself
    report_state: Callable[[str, str], None]  # (channel, "on" / "down: why") for /healthz

    def unreachable(self, channel: str) -> Unreachable:
        """Marks a citizen of `channel` who blocked or left (campaigns and hand-offs skip them)."""
        return lambda chat_id: self.store.users.mark_unreachable(channel, chat_id)


@dataclass(frozen=True)
class Outgoing:
    """One reply to transmit, with what `deliver` worked out for it."""

    chat_id: str
    reply: Reply
    rendered: Rendered  # the reply as text with its buttons as numbered choices (`Channel.render`)
    thread_id: int | None = None
    reply_to: int | None = None
    skip_parts: int = 0  # parts an earlier attempt delivered (channels that can resume skip them)


@dataclass(frozen=True)
class Delivered:
    message_id: int | None  # the platform's id of the last text message, where it has one
    rendered: Rendered


@dataclass(frozen=True)
class Backoff:
    """Pauses between tries after transient failures: `delays`, then `then` repeated; ends
    once the next pause would end more than `within` seconds after the first failure, or
    after `attempts` tries in all (rate limits included)."""

    delays: tuple[float, ...]
    then: float
    within: float | None = None
    attempts: int | None = None

    def pauses(self) -> Iterator[float]:
        deadline = None if self.within is None else time.monotonic() + self.within
        for delay in itertools.chain(self.delays, itertools.repeat(self.then)):
            if deadline is not None and time.monotonic() + delay > deadline:
                return
            yield delay


def as_is(reply: Reply) -> Rendered:
    """`Channel.render` for platforms that show buttons themselves: the text, no numbers."""
    return Rendered(reply.text)


class Channel(abc.ABC):
    """Base of every channel; see the module docstring."""

    name: ClassVar[str]
    edits_messages: ClassVar[bool] = False  # campaign progress edited in place (else sent anew)
    always_on: ClassVar[bool] = False  # served by our own web app: runs even without a database
    live_retry: ClassVar[Backoff] = Backoff((0.5, 1.0, 2.0, 4.0), 8.0, attempts=5)
    pacer: Pacer | None = None  # the platform's send rate; None: no rate to keep (web outbox)
    health: ChannelHealth | None = None  # set by Channels.register; sends report to it

    # --- construction ---------------------------------------------------------------
    @classmethod
    def off_reason(cls, settings: Settings) -> str | None:
        """Why the settings leave this channel off; None when it can run."""
        return None

    @classmethod
    def create(cls, settings: Settings, context: ChannelContext) -> Channel:
        """The channel, from settings it can run with (see `from_settings`). Default: a
        channel that needs nothing from either."""
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings, context: ChannelContext) -> Channel | Off:
        reason = cls.off_reason(settings)
        return Off(reason) if reason else cls.create(settings, context)

    # --- lifecycle, routes, health ----------------------------------------------------
    async def start(self) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Connect to the platform (register a webhook, start polling)."""

    async def stop(self) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Disconnect; events in hand may finish for a moment."""

    def report_to(self, health: ChannelHealth) -> None:
        """Where sends report this channel's health (Channels.register)."""
        self.health = health

    def routes(self) -> list[Route]:
        """The HTTP routes this channel serves (its webhook), added by bot/web.py."""
        return []

    async def probe(self) -> None:  # noqa: B027 - an optional hook, no-op by default
        """A read-only call proving the platform answers with our credentials (raises if
        not); bot/ops/health.py calls it periodically. Default: nothing to check."""

    # --- outgoing ---------------------------------------------------------------------
    def render(self, reply: Reply, start: int = 1) -> Rendered:
        """The reply as text, its buttons as numbered choices ("Gõ 1, 2 hoặc 3") numbered
        from `start`: the default for platforms without buttons (Rasa's
        `send_text_with_buttons`). Channels with real buttons override it."""
        return render(reply, start)

    @abc.abstractmethod
    async def transmit(self, out: Outgoing, pace: Pace) -> int | None:
        """One attempt to put `out` on the platform, awaiting `pace()` before each API call;
        raises bot.contracts.delivery types (with `parts_done` when it can resume). Returns the
        platform's message id where there is one."""

    async def deliver(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                      reply_to: int | None = None, broadcast: bool = False, skip_parts: int = 0,
                      before_send: BeforeSend | None = None, start: int = 1,
                      remember: bool = True) -> Delivered:
        """One attempt to send a reply, paced, counted and reported; raises bot.contracts.delivery
        types. `before_send` runs once, when the pacer lets the first call go
        (bot/channels/attempts.py). With `remember`, the numbered choices shown replace the
        citizen's stored ones (`remember_choices`); a turn numbering choices across several
        replies (`start`) stores them together instead."""
        rendered = self.render(reply, start)
        out = Outgoing(chat_id, reply, rendered, thread_id, reply_to, skip_parts)
        try:
            message_id = await self.transmit(out, paced(self.pacer, chat_id, broadcast, before_send))
        except NotAttempted:  # called off before anything was sent: says nothing about the channel
            raise
        except Exception as exc:
            metrics.count_send_error(self.name, exc)
            self._report_failed_send(exc)
            raise
        metrics.count_sent(self.name, broadcast)
        self._report_send(None)
        if remember and rendered.actions:  # sent: a storage failure must not make it look unsent
            await self.remember_choices(chat_id, [rendered])
        return Delivered(message_id, rendered)

    def _report_failed_send(self, exc: Exception) -> None:
        """A transient failure (5xx, timeout, network) or an unexpected error is a send
        problem; recipient-specific refusals (blocked, bad request, outside Zalo's window)
        and rate limits say nothing about the channel's health."""
        if isinstance(exc, Transient):
            self._report_send(f"sends failing: {exc.reason or type(exc).__name__}")
        elif not isinstance(exc, SendError):
            self._report_send(f"sends failing: {type(exc).__name__}")

    def _report_send(self, problem: str | None) -> None:
        if self.health is not None:
            self.health.report(self.name, "send", problem)

    async def send(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None:
        """Send a live reply (bot.contracts.messages.Messenger.send), retrying; the message id."""
        return (await self.send_live(chat_id, reply, thread_id=thread_id, reply_to=reply_to)).message_id

    async def send_live(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                        reply_to: int | None = None, start: int = 1, remember: bool = True) -> Delivered:
        """`deliver`, retrying rate limits (after the platform's wait) and transient failures
        (after `live_retry`'s pauses), resuming after the parts already delivered. A recipient
        who blocked or left is handed to `recipient_gone`, then RecipientGone propagates;
        other refusals (Rejected, OutsideWindow) propagate at once."""
        pauses = self.live_retry.pauses()
        limit = self.live_retry.attempts
        skip = 0
        for attempt in itertools.count(1):
            try:
                return await self.deliver(chat_id, reply, thread_id=thread_id, reply_to=reply_to,
                                          skip_parts=skip, start=start, remember=remember)
            except RecipientGone:
                await self.recipient_gone(chat_id)
                raise
            except RateLimited as exc:
                if limit is not None and attempt >= limit:
                    raise Transient("gave up after repeated rate limits") from exc
                skip = exc.parts_done
                await asyncio.sleep(exc.retry_after)
            except Transient as exc:
                delay = next(pauses, None) if limit is None or attempt < limit else None
                if delay is None:
                    raise
                skip = exc.parts_done
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def recipient_gone(self, chat_id: str) -> None:  # noqa: B027 - an optional hook, no-op by default
        """A citizen blocked the bot or left: channels mark them unreachable here."""

    async def remember_choices(self, chat_id: str, rendered: list[Rendered]) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Store the numbered choices just shown, for the number the citizen types back.
        Default: nothing (a channel that reads numbers back stores them, e.g. Zalo)."""

    async def edit(self, chat_id: str, message_id: int, reply: Reply) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Edit a sent message in place where the platform can (`edits_messages`); default: no-op."""

    async def edit_buttons(self, chat_id: str, message_id: int, buttons: list[list[Button]]) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Replace a sent message's buttons where the platform can (Telegram); default: no-op."""

    async def create_topic(self, chat_id: str, name: str) -> int | None:
        """A forum topic for a hand-off thread where the platform has them; default: None."""
        return None
