"""Routes outgoing messages to the adapter of their channel (implements handlers' Messenger),
and keeps each channel's live health from what its sends, start-up and API checks report."""

from __future__ import annotations

import functools
import logging
from typing import Protocol

from bot.channels.attempts import NotAttempted
from bot.channels.errors import ChannelUnavailable, SendError, Transient
from handlers.messages import Reply

log = logging.getLogger(__name__)


class ChannelAdapter(Protocol):
    name: str

    async def send(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None: ...

    async def create_topic(self, chat_id: str, name: str) -> int | None: ...


def short_reason(text: str) -> str:
    """One line for /healthz and logs (PTB appends the whole HTML error page to some errors)."""
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text.split(". Parsing the server response")[0][:160]


# A failing start or API check means the platform cannot be reached at all ("down"); failing
# sends while it answers otherwise mean "degraded". Both make /healthz say "degraded".
DOWN_SOURCES = ("start", "check")


class ChannelHealth:
    """Open problems per channel and source ("start", "check", "send"); none = healthy."""

    def __init__(self) -> None:
        self._problems: dict[str, dict[str, str]] = {}

    def report(self, channel: str, source: str, problem: str | None) -> None:
        """Record `problem` (None = that source works again) and log changes of state."""
        before = self.state(channel)
        problems = self._problems.setdefault(channel, {})
        if problem is None:
            problems.pop(source, None)
        else:
            problems[source] = short_reason(problem)
        after = self.state(channel)
        if after != before:
            if after is None:
                log.info("channel %s: healthy again", channel)
            else:
                log.warning("channel %s: %s", channel, after)

    def state(self, channel: str) -> str | None:
        """'down: why', 'degraded: why' or None when nothing is wrong."""
        problems = self._problems.get(channel) or {}
        for source in DOWN_SOURCES:
            if source in problems:
                return f"down: {problems[source]}"
        if "send" in problems:
            return f"degraded: {problems['send']}"
        return None

    def merged(self, configured: dict[str, str]) -> dict[str, str]:
        """The configured states ("on", "off: why", adapters' own reports) with live problems on top."""
        states = dict(configured)
        for channel in self._problems:
            live = self.state(channel)
            if live is not None and not states.get(channel, "on").startswith("off"):
                states[channel] = live
        return states


class Channels:
    def __init__(self) -> None:
        self.adapters: dict[str, ChannelAdapter] = {}
        self.health = ChannelHealth()

    def register(self, adapter: ChannelAdapter) -> None:
        from bot.ops.metrics import instrument_deliver

        if hasattr(adapter, "deliver"):  # every channel reports sends and errors the same way
            deliver = instrument_deliver(adapter.name, adapter.deliver)  # type: ignore[attr-defined]
            adapter.deliver = self._watch_sends(adapter.name, deliver)  # type: ignore[attr-defined]
        self.adapters[adapter.name] = adapter

    def _watch_sends(self, channel: str, deliver):
        """A send that goes through clears the channel's send problem; a transient failure
        (5xx, timeout, network) or an unexpected error sets it. Recipient-specific refusals
        (blocked, bad request, outside Zalo's window) and rate limits say nothing about health."""

        @functools.wraps(deliver)
        async def wrapped(*args, **kwargs):
            try:
                result = await deliver(*args, **kwargs)
            except Transient as exc:
                self.health.report(channel, "send", f"sends failing: {exc.reason or type(exc).__name__}")
                raise
            except (SendError, NotAttempted):
                raise
            except Exception as exc:
                self.health.report(channel, "send", f"sends failing: {type(exc).__name__}")
                raise
            self.health.report(channel, "send", None)
            return result

        return wrapped

    async def send(self, channel: str, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None:
        adapter = self.adapters.get(channel)
        if adapter is None:
            raise ChannelUnavailable(channel)
        return await adapter.send(chat_id, reply, thread_id=thread_id, reply_to=reply_to)

    async def create_topic(self, channel: str, chat_id: str, name: str) -> int | None:
        adapter = self.adapters.get(channel)
        return await adapter.create_topic(chat_id, name) if adapter else None

    async def edit_buttons(self, channel: str, chat_id: str, message_id: int, buttons) -> None:
        """Replace a sent message's buttons where the channel can (Telegram); others ignore it."""
        edit = getattr(self.adapters.get(channel), "edit_buttons", None)
        if edit is not None:
            await edit(chat_id, message_id, buttons)
