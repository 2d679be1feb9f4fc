"""Everything the campaign engine asks of channel adapters, and only here.

One delivery attempt (`deliver`) marks its row in flight when the pacer lets the first API
call go (the adapter's `before_send` hook, bot/channels/attempts.py) and maps every failure
to an outcome: retries (429, 5xx, timeouts) go back to `pending` with a `next_attempt_at`,
never a sleep; a multi-part message (photo, text, quiz) records the parts delivered, so a
retry resumes at the part that failed (`skip_parts`). The sender also wires the pacers (a 429
seen anywhere is stored as a channel pause; on PostgreSQL the send budget is shared by every
process), sizes the window of rows in flight from a channel's rate, and posts or edits the
staff's progress messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.contracts.delivery import (
    NotAttempted,
    OutsideWindow,
    RateLimited,
    RecipientGone,
    Rejected,
    SendError,
    Transient,
)
from bot.storage.campaigns import CampaignStore, Outcome
from bot.storage.models import utcnow

if TYPE_CHECKING:
    from bot.contracts.messages import Reply  # contract type, for annotations only

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # 5xx / timeouts; a 429 is not counted (the platform asked us to wait)
BACKOFF_BASE = 2.0  # seconds before the first retry, doubled each attempt
BACKOFF_CAP = 300.0
WINDOW_SECONDS = 1.0  # rows in flight per channel: about a second of sending
MIN_WINDOW = 4


def window_size(rate: float, parts: int = 1, per_chat_interval: float = 1.0) -> int:
    """Deliveries a channel keeps in flight: enough to keep its pacer busy for about a
    second, more when each needs several parts spaced `per_chat_interval` apart in one chat.
    A crash leaves at most this many rows `uncertain`."""
    busy = WINDOW_SECONDS + per_chat_interval * (parts - 1)
    return max(MIN_WINDOW, math.ceil(rate * busy / parts))


def backoff(attempts: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))


def message_parts(reply: Reply) -> int:
    """API calls one delivery needs (photo, text, quiz); text longer than a message is rare."""
    return 1 + bool(reply.image_url) + bool(reply.quiz)


@dataclass
class Claimed:
    id: int
    campaign_id: int
    platform_id: str | None
    attempts: int
    parts_done: int
    skip: str | None = None  # reason not to send at all (unsubscribed meanwhile, window...)


@dataclass
class Content:
    reply: Reply
    parts: int


class NotInFlight(NotAttempted):
    """The row is no longer pending (or its campaign no longer sending) when its turn came, or
    its new state could not be written: the send is called off, the row stays as it is."""




class ChannelSender:
    """Sends campaign messages and staff reports through the registered channel adapters."""

    def __init__(self, store: CampaignStore, channels, on_unreachable=None):
        self.store = store
        self.channels = channels
        self.on_unreachable = on_unreachable
        self.max_attempts = MAX_ATTEMPTS
        self.backoff = backoff  # attempts -> seconds before the next retry
        self.pause_tasks: set[asyncio.Task] = set()

    def names(self) -> list[str]:
        return list(self.channels.adapters)

    def _adapter(self, channel: str):
        return self.channels.adapters.get(channel)

    def _pacer(self, channel: str):
        adapter = self.channels.adapters.get(channel)
        return adapter.pacer if adapter is not None else None

    # --- pacing ----------------------------------------------------------------------
    def wire_pacers(self) -> None:
        """A 429 seen by any adapter here is stored as a channel pause, for the sender anywhere;
        on PostgreSQL (several processes) every send takes its token from the channel's shared
        bucket, so the platform's rate holds for the whole bot (bot/storage/send_budget.py)."""
        shared = self.store.dialect == "postgresql"
        for name, adapter in self.channels.adapters.items():
            if adapter.pacer is not None:
                adapter.pacer.connect(
                    name, on_pause=lambda seconds, name=name: self._spawn_pause(name, seconds),
                    shared=self.store.shared_budget(name, adapter.pacer.rate) if shared else None)

    def _spawn_pause(self, channel: str, seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self.store_pause(channel, seconds))
        self.pause_tasks.add(task)
        task.add_done_callback(self.pause_tasks.discard)

    async def store_pause(self, channel: str, seconds: float) -> None:
        try:
            await self.store.save_pause(channel, seconds)
        except Exception:
            log.warning("could not store the %s pause", channel, exc_info=True)

    async def sync_pause(self, channel: str) -> None:
        """Honour a 429 another process received (stored by store_pause)."""
        pacer = self._pacer(channel)
        if pacer is None:
            return
        until = await self.store.pause_until(channel)
        if until is not None:
            remaining = (until - utcnow()).total_seconds()
            if remaining > pacer.paused_for:
                pacer.hold(remaining)

    def window(self, channel: str, parts: int) -> int:
        """Rows to keep in flight on `channel` for a message of `parts` API calls."""
        pacer = self._pacer(channel)
        if pacer is None:
            return MIN_WINDOW * 2
        return window_size(pacer.rate, parts, pacer.per_chat_interval)

    def rate(self, channel: str) -> tuple[float, float]:
        """(messages per second, seconds of pause left) of `channel` (1/s when unpaced)."""
        pacer = self._pacer(channel)
        if pacer is None:
            return 1.0, 0.0
        return pacer.rate, pacer.paused_for

    # --- campaign deliveries -----------------------------------------------------------
    def cannot_deliver(self, channel: str) -> str | None:
        """Why this process cannot send broadcasts on `channel`, or None if it can."""
        adapter = self._adapter(channel)
        if adapter is None:
            return f"channel {channel} is not running"
        return None

    def resumable(self, channel: str) -> bool:
        """Whether the channel can resume a multi-part message at a given part (every channel's
        `deliver` can: bot/channels/base.py)."""
        return self._adapter(channel) is not None

    async def _mark_in_flight(self, row: Claimed) -> None:
        """`pending -> sending`, committed before the send: from here a crash makes the row
        `uncertain`. Raises NotInFlight if the row was resolved or its campaign paused,
        cancelled or expired since it was read, or if its state could not be written."""
        try:
            marked = await self.store.mark_in_flight(row.id)
        except Exception as exc:  # the database is busy or down: not sent, still pending
            log.warning("campaign %s: delivery %s not sent now, its state could not be written (%s)",
                        row.campaign_id, row.id, type(exc).__name__)
            raise NotInFlight(row.id) from exc
        if not marked:
            raise NotInFlight(row.id)

    async def deliver(self, channel: str, content: Content, row: Claimed, resumable: bool) -> Outcome | None:
        """One delivery attempt; every failure becomes an outcome, none escapes. None when the
        row was not ours to send after all (see _mark_in_flight): nothing was sent."""
        adapter = self._adapter(channel)
        marked = False

        async def before_send() -> None:
            nonlocal marked
            await self._mark_in_flight(row)
            marked = True

        def outcome(state: str, error: str | None, attempts: int, parts: int = row.parts_done,
                    retry_in: float | None = None) -> Outcome:
            at = utcnow() + dt.timedelta(seconds=retry_in) if retry_in is not None else None
            return Outcome(row.id, row.campaign_id, state, error[:300] if error else None, attempts, parts, at,
                           "sending" if marked else "pending")

        if row.skip:
            return outcome("skipped", row.skip, row.attempts)
        kwargs: dict = {"broadcast": True}
        if resumable and row.parts_done:
            kwargs["skip_parts"] = row.parts_done
        try:
            await adapter.deliver(row.platform_id, content.reply, before_send=before_send, **kwargs)
            return outcome("sent", None, row.attempts + 1, content.parts)
        except asyncio.CancelledError:
            raise
        except NotInFlight:
            return None
        except SendError as exc:
            parts = max(row.parts_done, exc.parts_done if resumable else 0)
            reason = exc.reason or type(exc).__name__
            if parts:
                reason = f"{reason} (after {parts} of {content.parts} parts)"
            if isinstance(exc, RateLimited):  # not an attempt: the platform asked us to wait
                return outcome("pending", f"rate limited ({exc.retry_after:.0f}s)", row.attempts, parts,
                               retry_in=exc.retry_after)
            attempts = row.attempts + 1
            if isinstance(exc, RecipientGone):
                if self.on_unreachable is not None:
                    with contextlib.suppress(Exception):
                        await self.on_unreachable(channel, row.platform_id)
                return outcome("blocked", reason, attempts, parts)
            if isinstance(exc, OutsideWindow):
                return outcome("skipped", exc.reason or "outside messaging window", attempts, parts)
            if isinstance(exc, Rejected):
                return outcome("failed", reason, attempts, parts)
            if attempts >= self.max_attempts:
                return outcome("failed", f"gave up after {attempts} attempts: {reason}", attempts, parts)
            kind = "transient" if isinstance(exc, Transient) else type(exc).__name__
            return outcome("pending", f"{kind}: {reason}", attempts, parts, retry_in=self.backoff(attempts))
        except Exception as exc:  # a bug or an unmapped error: this row fails, the others go on
            log.exception("campaign %s: unexpected error delivering %s", row.campaign_id, row.id)
            return outcome("failed", f"unexpected error: {type(exc).__name__}: {exc}", row.attempts + 1)

    # --- staff reports -----------------------------------------------------------------
    def can_report(self, channel: str | None) -> bool:
        return channel is not None and self._adapter(channel) is not None

    def edits_messages(self, channel: str) -> bool:
        return self._adapter(channel).edits_messages

    async def post(self, channel: str, chat: str, reply: Reply):
        """Send a report message; its message id (for later edits)."""
        return await self._adapter(channel).send(chat, reply)

    async def edit(self, channel: str, chat: str, message_id, reply: Reply) -> None:
        await self._adapter(channel).edit(chat, message_id, reply)
