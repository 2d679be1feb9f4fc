"""The delivery engine: starts due campaigns and sends them, crash-safe, paced, per channel.

Every (campaign, recipient) pair is a row. Sending is claimed per channel: one lease per
channel in the database ("campaign-sender:<channel>", bot/storage/locks.py), renewed by a
heartbeat; if a renewal fails the sender stops at once. So Telegram and Zalo campaigns
proceed independently, and since only the lease holder broadcasts on a channel, the
channel's broadcast rate holds across processes. Within its lease the sender keeps a window
of rows in flight, taken round-robin from every due campaign, so a small urgent warning is
not stuck behind a 100,000-recipient campaign.

The lease holder reads a window of due `pending` rows (remembering in memory which it has
taken), and marks each one `pending -> sending` only when the pacer lets its first API call
go (the adapter's `before_send` hook, bot/channels/attempts.py), in its own committed
write, conditional on the row still being pending and its campaign still sending. The result
is written only while the row is still `sending`. So a crash leaves in `sending` only the
deliveries whose send had begun: the next holder of the channel's lease marks them
`uncertain` and they are reported, never re-sent (nobody gets a campaign twice, nobody is
skipped silently), while the rows that were still waiting for their turn are simply
`pending` and are sent by the next holder. Retries (429, 5xx, timeouts) go back to `pending` with a
`next_attempt_at`, never a sleep inside the window; a multi-part message (photo, text,
quiz) records the parts delivered, so a retry resumes at the part that failed.

Every process also runs the bookkeeping (`coordinate`): start due campaigns (creating rows
with one INSERT ... SELECT, re-checking the approval threshold on the real count), expire,
finish, and post the progress message and final report of the staff member who launched
it. Recipients are streamed in windows, so memory stays flat however many there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import math
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.campaigns.service import BROADCAST_CHANNELS, LOCAL_TZ, campaign_reply, recipients_query, skip_pending
from bot.channels.attempts import NotAttempted
from bot.channels.errors import OutsideWindow, RateLimited, RecipientGone, Rejected, SendError, Transient
from bot.storage import locks
from bot.storage.models import AuditLog, Campaign, ChannelPause, Delivery, Subscription, User, utcnow
from bot.storage.send_budget import SharedBudget
from handlers.messages import Reply

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=60)
SENDER_LOCK = "campaign-sender:{channel}"
MAX_ATTEMPTS = 5  # 5xx / timeouts; a 429 is not counted (the platform asked us to wait)
BACKOFF_BASE = 2.0  # seconds before the first retry, doubled each attempt
BACKOFF_CAP = 300.0
WINDOW_SECONDS = 1.0  # rows in flight per channel: about a second of sending
MIN_WINDOW = 4
RECORD_EVERY = 0.25  # seconds between batched writes of results
STOP_GRACE = 10.0  # on shutdown, in-flight sends get this long to finish
PROGRESS_EVERY = 5.0  # seconds between edits of the staff's progress message
PROGRESS_MESSAGE_EVERY = 600.0  # channels that cannot edit get a new message this often
FINAL_STATES = ("done", "expired", "cancelled")
RUNNING_STATES = ("scheduled", "pending_approval", "paused", "sending")
STATE_LABELS = {"sending": "đang gửi", "paused": "tạm dừng", "done": "đã gửi xong",
                "expired": "hết hạn", "cancelled": "đã hủy"}

# Per-channel rule: given the recipient's last inbound time, a reason to skip them, or None.
# A rule may also have `async prepare(sessions)`, awaited before each window (e.g. a quota).
ChannelRule = Callable[[dt.datetime | None], str | None]


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


class _NotInFlight(NotAttempted):
    """The row is no longer pending (or its campaign no longer sending) when its turn came, or
    its new state could not be written: the send is called off, the row stays as it is."""


@dataclass
class Outcome:
    id: int
    campaign_id: int
    state: str
    error: str | None
    attempts: int
    parts_done: int
    next_attempt_at: dt.datetime | None = None
    from_state: str = "sending"  # the row's state the result replaces: "pending" if never marked in flight


@dataclass
class _Content:
    reply: Reply
    parts: int


class CampaignRunner:
    def __init__(self, sessions, channels, *, window: int | None = None,
                 rules: dict[str, ChannelRule] | None = None, on_unreachable=None, owner: str | None = None,
                 poll_seconds: float = 2.0, lease: dt.timedelta = LEASE, approval_threshold: int | None = None):
        self.sessions = sessions
        self.channels = channels
        self.window = window  # None: window_size() from the channel's rate
        self.rules = rules or {}
        self.on_unreachable = on_unreachable
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_seconds = poll_seconds
        self.lease = lease  # a crashed sender's channel is taken over after this
        self.approval_threshold = approval_threshold  # None: no re-check at start
        self.max_attempts = MAX_ATTEMPTS
        self.backoff = backoff  # attempts -> seconds before the next retry
        self.progress_every = PROGRESS_EVERY
        self._rr: dict[str, int] = {}  # channel -> campaign served last (round-robin)
        self._content: dict[int, _Content] = {}
        self._senders: dict[str, asyncio.Task] = {}
        self._pause_tasks: set[asyncio.Task] = set()

    # --- main loop -----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """The service's loop: bookkeeping every poll, one sender task per channel with work."""
        while not stop.is_set():
            try:
                await self.coordinate()
                for channel in await self._channels_with_work():
                    task = self._senders.get(channel)
                    if task is None or task.done():
                        self._senders[channel] = asyncio.create_task(self._sender(channel, stop))
            except Exception:
                log.exception("campaign runner failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)
        await asyncio.gather(*self._senders.values(), return_exceptions=True)

    async def run_once(self, stop: asyncio.Event | None = None) -> bool:
        """Bookkeeping, then send what is due now on every channel; True if anything happened."""
        worked = await self.coordinate()
        channels = await self._channels_with_work()
        if channels:
            results = await asyncio.gather(*(self._sender(c, stop) for c in channels))
            worked = any(results) or worked
            worked = await self.coordinate() or worked
        return worked

    # --- bookkeeping (every process) -------------------------------------------------
    async def coordinate(self) -> bool:
        self.wire_pacers()
        worked = await self._expire_overdue()
        worked = await self._start_due() or worked
        worked = await self._finish_done() or worked
        await self._progress_round()
        await self._report_finished()
        return worked

    def wire_pacers(self) -> None:
        """A 429 seen by any adapter here is stored as a channel pause, for the sender anywhere;
        on PostgreSQL (several processes) every send takes its token from the channel's shared
        bucket, so the platform's rate holds for the whole bot (bot/storage/send_budget.py)."""
        shared = _dialect(self.sessions) == "postgresql"
        for name, adapter in self.channels.adapters.items():
            pacer = getattr(adapter, "pacer", None)
            if pacer is None:
                continue
            if getattr(pacer, "on_pause", None) is None:
                pacer.on_pause = lambda seconds, name=name: self._spawn_pause(name, seconds)
                pacer.name = name  # for its log lines
            if shared and getattr(pacer, "shared", False) is None:
                pacer.shared = SharedBudget(self.sessions, name, pacer.rate)

    def _spawn_pause(self, channel: str, seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self.store_pause(channel, seconds))
        self._pause_tasks.add(task)
        task.add_done_callback(self._pause_tasks.discard)

    async def store_pause(self, channel: str, seconds: float) -> None:
        until = utcnow() + dt.timedelta(seconds=seconds)
        try:
            async with self.sessions.begin() as s:
                result = await s.execute(update(ChannelPause).where(
                    ChannelPause.channel == channel, ChannelPause.paused_until < until).values(paused_until=until))
                if result.rowcount or await s.get(ChannelPause, channel) is not None:
                    return  # extended, or a longer pause is already stored
                s.add(ChannelPause(channel=channel, paused_until=until))
        except IntegrityError:  # another process stored one at the same moment
            await self.store_pause(channel, seconds)
        except Exception:
            log.warning("could not store the %s pause", channel, exc_info=True)

    async def _expire_overdue(self) -> bool:
        now = utcnow()
        async with self.sessions.begin() as s:
            due = (await s.scalars(select(Campaign.id).where(
                Campaign.state.in_(RUNNING_STATES), Campaign.expires_at < now))).all()
            for campaign_id in due:
                await s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.state.in_(RUNNING_STATES))
                                .values(state="expired", finished_at=now))
        # Pending rows of stopped campaigns are skipped in short batches (see skip_pending); this
        # also catches a retry recorded as pending just after a cancellation or expiry, and rows a
        # cancellation left when its process stopped half-way. Read first (no write lock held
        # while looking), then write only where there is something to skip.
        async with self.sessions() as s:
            stopped = (await s.execute(select(Campaign.id, Campaign.state).where(
                Campaign.state.in_(("cancelled", "expired")),
                exists().where(Delivery.campaign_id == Campaign.id, Delivery.state == "pending")))).all()
        for campaign_id, state in stopped:
            await skip_pending(self.sessions, campaign_id, state)
        return bool(due)

    async def _start_due(self) -> bool:
        now = utcnow()
        async with self.sessions() as s:
            due = (await s.scalars(select(Campaign.id).where(
                Campaign.state == "scheduled", Campaign.scheduled_at <= now,
                or_(Campaign.expires_at.is_(None), Campaign.expires_at > now))
                .order_by(Campaign.scheduled_at, Campaign.id))).all()
        started = False
        for campaign_id in due:
            started = await self._start(campaign_id) or started
        return started

    async def _start(self, campaign_id: int) -> bool:
        """First start creates the delivery rows; a resume only flips the state back."""
        now = utcnow()
        async with self.sessions.begin() as s:
            campaign = await s.get(Campaign, campaign_id)
            if campaign is None or campaign.state != "scheduled":
                return False
            if campaign.started_at is not None:
                result = await s.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                                Campaign.state == "scheduled")
                                         .values(state="sending"))
                return bool(result.rowcount)
            rows = recipients_query(campaign.segment or {}, campaign.channel)
            count = await s.scalar(select(func.count()).select_from(rows.subquery())) or 0
            if (self.approval_threshold is not None and count > self.approval_threshold
                    and campaign.approved_by is None):
                # The segment grew past the threshold since creation: a second person decides.
                result = await s.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                                Campaign.state == "scheduled")
                                         .values(state="pending_approval", requires_approval=True, recipients=count))
                if result.rowcount:
                    s.add(AuditLog(actor="campaign-engine", action="campaign.needs_approval",
                                   target=str(campaign_id), detail={"recipients": count}))
                    log.warning("campaign %s: %d recipients now, above the approval threshold", campaign_id, count)
                return bool(result.rowcount)
            result = await s.execute(update(Campaign).where(
                Campaign.id == campaign_id, Campaign.state == "scheduled", Campaign.started_at.is_(None))
                .values(state="sending", started_at=now))
            if not result.rowcount:  # another process started it first
                return False
            sub = rows.subquery()
            await s.execute(insert(Delivery).from_select(
                ["campaign_id", "user_id", "channel", "state", "attempts", "parts_done", "updated_at"],
                select(literal(campaign_id), sub.c.id, sub.c.channel, literal("pending"), literal(0), literal(0),
                       literal(now, type_=Delivery.__table__.c.updated_at.type))))
            recipients = await s.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)) or 0
            await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(recipients=recipients))
        await self._open_progress(campaign_id)
        return True

    async def _finish_done(self) -> bool:
        open_rows = exists().where(Delivery.campaign_id == Campaign.id, Delivery.state.in_(("pending", "sending")))
        async with self.sessions.begin() as s:
            result = await s.execute(update(Campaign).where(Campaign.state == "sending", ~open_rows)
                                     .values(state="done", finished_at=utcnow())
                                     .execution_options(synchronize_session=False))
            return bool(result.rowcount)

    # --- which channels need a sender --------------------------------------------------
    async def _channels_with_work(self) -> list[str]:
        names = list(dict.fromkeys([*self.channels.adapters, *BROADCAST_CHANNELS]))
        now = utcnow()
        found = []
        async with self.sessions() as s:
            for channel in names:
                due = await s.scalar(select(Delivery.id).join(Campaign, Campaign.id == Delivery.campaign_id).where(
                    Campaign.state == "sending", Delivery.channel == channel, Delivery.state == "pending",
                    or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)).limit(1))
                # Rows left `sending` need a sender too: the next lease holder resolves them.
                stuck = due or await s.scalar(select(Delivery.id).where(
                    Delivery.state == "sending", Delivery.channel == channel).limit(1))
                if due or stuck:
                    found.append(channel)
        return found

    # --- one channel's sender ----------------------------------------------------------
    async def _sender(self, channel: str, stop: asyncio.Event | None) -> bool:
        """Send what is due on `channel` while holding its lease; False if another process has it."""
        name = SENDER_LOCK.format(channel=channel)
        if not await locks.acquire(self.sessions, name, self.owner, self.lease):
            return False
        halt = asyncio.Event()
        lost = asyncio.Event()
        watchers = [asyncio.create_task(self._heartbeat(name, lost, halt))]
        if stop is not None:
            watchers.append(asyncio.create_task(_relay(stop, halt)))
        try:
            resolved = await self._resolve_stuck(channel)
            adapter = self.channels.adapters.get(channel)
            if adapter is None or not hasattr(adapter, "deliver"):
                return await self._skip_channel(channel, adapter) or resolved
            return await self._pump(channel, adapter, halt, lost) or resolved
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            if not lost.is_set():
                with contextlib.suppress(Exception):
                    await locks.release(self.sessions, name, self.owner)

    async def _heartbeat(self, name: str, lost: asyncio.Event, halt: asyncio.Event) -> None:
        """Renew the lease; stop the sender at once if a renewal fails or comes too late."""
        lease = self.lease.total_seconds()
        last_ok = time.monotonic()  # the lease is ours until at least last_ok + lease
        delay = lease / 3
        while True:
            await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                ok = await locks.acquire(self.sessions, name, self.owner, self.lease)
            except Exception:  # the database hiccupped: the lease still runs, try again soon
                log.warning("could not renew %s", name, exc_info=True)
                ok = None
            if ok and started - last_ok < lease:
                last_ok, delay = started, lease / 3
                continue
            if ok is None and time.monotonic() - last_ok < 0.7 * lease:
                delay = min(lease / 10, 1.0)
                continue
            log.error("%s: lease lost (taken, or not renewed in time); this process stops sending", name)
            lost.set()
            halt.set()
            return

    async def _resolve_stuck(self, channel: str) -> bool:
        """Rows another holder left `sending` (it crashed or lost the lease) become uncertain."""
        now = utcnow()
        async with self.sessions.begin() as s:
            stuck = (await s.execute(select(Delivery.campaign_id, func.count()).where(
                Delivery.channel == channel, Delivery.state == "sending").group_by(Delivery.campaign_id))).all()
            if not stuck:
                return False
            await s.execute(update(Delivery).where(Delivery.channel == channel, Delivery.state == "sending")
                            .values(state="uncertain", error="process stopped while sending", updated_at=now)
                            .execution_options(synchronize_session=False))
            for campaign_id, n in stuck:
                await s.execute(update(Campaign).where(Campaign.id == campaign_id)
                                .values(uncertain=Campaign.uncertain + n))
                log.warning("campaign %s: %d %s deliveries were in flight when a sender stopped; marked uncertain",
                            campaign_id, n, channel)
        return True

    async def _skip_channel(self, channel: str, adapter) -> bool:
        """Rows for a channel this process cannot send on are skipped, with the reason."""
        reason = f"channel {channel} " + ("is not running" if adapter is None else "cannot deliver broadcasts")
        async with self.sessions.begin() as s:
            result = await s.execute(update(Delivery).where(
                Delivery.channel == channel, Delivery.state == "pending",
                Delivery.campaign_id.in_(select(Campaign.id).where(Campaign.state == "sending")))
                .values(state="skipped", error=reason, updated_at=utcnow())
                .execution_options(synchronize_session=False))
            return bool(result.rowcount)

    async def _pump(self, channel: str, adapter, halt: asyncio.Event, lost: asyncio.Event) -> bool:
        """Keep a window of deliveries in flight until nothing is due; write results in batches."""
        tasks: dict[asyncio.Task, int] = {}  # in flight -> delivery id
        outcomes: list[Outcome] = []
        changed = asyncio.Event()
        waker = asyncio.create_task(_relay(halt, changed))
        resumable = "skip_parts" in inspect.signature(adapter.deliver).parameters
        worked = False
        low_water = 0  # refill once no more than half the window is in flight
        idle_since: float | None = None  # last time a claim found nothing due
        last_flush = last_progress = time.monotonic()

        def finished(task: asyncio.Task) -> None:
            tasks.pop(task, None)
            if not task.cancelled() and task.exception() is None and task.result() is not None:
                outcomes.append(task.result())
            changed.set()

        try:
            while not halt.is_set():
                now = time.monotonic()
                if len(tasks) <= low_water and (idle_since is None or now - idle_since > 2 * RECORD_EVERY):
                    taken = set(tasks.values()) | {o.id for o in outcomes}  # not re-read until recorded
                    batch, window = await self._claim_next(channel, adapter, len(tasks), taken)
                    if batch is None:
                        idle_since = now
                    elif batch:
                        idle_since, worked, low_water = None, True, window // 2
                        for content, row in batch:
                            task = asyncio.create_task(self._deliver(channel, adapter, content, row, resumable))
                            tasks[task] = row.id
                            task.add_done_callback(finished)
                if not tasks and not outcomes and idle_since is not None:
                    break
                now = time.monotonic()
                if outcomes and (now - last_flush >= RECORD_EVERY or not tasks):
                    ready = outcomes[:]
                    outcomes.clear()
                    await self._record(ready)
                    last_flush = now
                if now - last_progress >= self.progress_every:
                    last_progress = now
                    await self._progress_round()
                if tasks:
                    changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), RECORD_EVERY)
        finally:
            waker.cancel()
            if tasks and not lost.is_set():  # shutting down: let what is in flight finish
                await asyncio.wait(set(tasks), timeout=STOP_GRACE)
            for task in set(tasks):  # lease lost: stop at once; these rows will read `uncertain`
                task.cancel()
            await asyncio.gather(*tasks, waker, return_exceptions=True)
            if outcomes:
                await self._record(outcomes[:])
        return worked

    async def _claim_next(self, channel: str, adapter, in_flight: int,
                          taken: set[int]) -> tuple[list[tuple[_Content, Claimed]] | None, int]:
        """(rows to send next, from the due campaigns in turn, and that campaign's window);
        rows are [] if the window is full, None if nothing is due now."""
        await self._sync_pause(channel, adapter)
        now = utcnow()
        async with self.sessions() as s:
            campaign_ids = list((await s.scalars(select(Campaign.id).where(
                Campaign.state == "sending", or_(Campaign.expires_at.is_(None), Campaign.expires_at > now))
                .order_by(Campaign.id))).all())
        last = self._rr.get(channel, 0)
        ordered = [c for c in campaign_ids if c > last] + [c for c in campaign_ids if c <= last]
        full = False
        for campaign_id in ordered:
            content = await self._campaign_content(campaign_id)
            window = self._window(adapter, content.parts)
            if in_flight > window // 2:
                full = True
                continue
            rows = await self._claim(channel, campaign_id, window - in_flight, taken)
            if rows:
                self._rr[channel] = campaign_id
                return [(content, row) for row in rows], window
        return ([] if full else None), 0

    def _window(self, adapter, parts: int) -> int:
        if self.window is not None:
            return self.window
        pacer = getattr(adapter, "pacer", None)
        if pacer is None:
            return MIN_WINDOW * 2
        return window_size(pacer.rate, parts, pacer.per_chat_interval)

    async def _campaign_content(self, campaign_id: int) -> _Content:
        content = self._content.get(campaign_id)
        if content is None:
            async with self.sessions() as s:
                campaign = await s.get(Campaign, campaign_id)
            reply = campaign_reply(campaign)
            content = self._content[campaign_id] = _Content(reply, message_parts(reply))
        return content

    async def _sync_pause(self, channel: str, adapter) -> None:
        """Honour a 429 another process received (stored by store_pause)."""
        pacer = getattr(adapter, "pacer", None)
        if pacer is None:
            return
        async with self.sessions() as s:
            until = await s.scalar(select(ChannelPause.paused_until).where(ChannelPause.channel == channel))
        if until is not None:
            remaining = (until - utcnow()).total_seconds()
            if remaining > pacer.paused_for:
                pacer.hold(remaining)

    async def _claim(self, channel: str, campaign_id: int, limit: int, taken: set[int]) -> list[Claimed]:
        """Due pending rows of one campaign on `channel`, not already `taken` by this sender.

        Nothing is written here: a row is marked in flight only when its send begins
        (`_mark_in_flight`). Only the channel's lease holder reads rows to send; the mark is
        conditional, so a row is sent by one sender even if a lease changes hands meanwhile."""
        now = utcnow()
        rule = self.rules.get(channel)
        prepare = getattr(rule, "prepare", None)
        if prepare is not None:  # rules with state (quotas) re-read it per window
            await prepare(self.sessions)
        async with self.sessions() as s:
            due = (select(Delivery.id, Delivery.user_id, Delivery.attempts, Delivery.parts_done).where(
                Delivery.campaign_id == campaign_id, Delivery.channel == channel, Delivery.state == "pending",
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now))
                .order_by(Delivery.id).limit(limit))
            if taken:
                due = due.where(Delivery.id.not_in(list(taken)))
            claimed = (await s.execute(due)).all()
            if not claimed:
                return []
            people = {row.id: row for row in (await s.execute(
                select(User.id, User.platform_id, User.active, User.last_inbound_at,
                       Subscription.active.label("subscribed"))
                .join(Subscription, Subscription.user_id == User.id, isouter=True)
                .where(User.id.in_([row[1] for row in claimed if row[1] is not None])))).all()}
        rows = []
        for delivery_id, user_id, attempts, parts_done in sorted(claimed):
            person = people.get(user_id)
            row = Claimed(delivery_id, campaign_id, person.platform_id if person else None, attempts, parts_done)
            if person is None:
                row.skip = "recipient deleted their data"
            elif not person.active:
                row.skip = "recipient is no longer reachable"
            elif not person.subscribed:
                row.skip = "unsubscribed"
            elif rule is not None:
                row.skip = rule(person.last_inbound_at)
            rows.append(row)
        return rows

    async def _mark_in_flight(self, delivery_id: int) -> None:
        """`pending -> sending`, committed before the send: from here a crash makes the row
        `uncertain`. Raises _NotInFlight if the row was resolved or its campaign paused,
        cancelled or expired since it was read."""
        async with self.sessions.begin() as s:
            result = await s.execute(update(Delivery).where(
                Delivery.id == delivery_id, Delivery.state == "pending",
                Delivery.campaign_id.in_(select(Campaign.id).where(Campaign.state == "sending")))
                .values(state="sending", updated_at=utcnow()).execution_options(synchronize_session=False))
        if not result.rowcount:
            raise _NotInFlight(delivery_id)

    async def _deliver(self, channel: str, adapter, content: _Content, row: Claimed,
                       resumable: bool) -> Outcome | None:
        """One delivery attempt; every failure becomes an outcome, none escapes. None when the
        row was not ours to send after all (see _mark_in_flight): nothing was sent."""
        marked = False

        async def before_send() -> None:
            nonlocal marked
            try:
                await self._mark_in_flight(row.id)
            except _NotInFlight:
                raise
            except Exception as exc:  # the database is busy or down: not sent, still pending
                log.warning("campaign %s: delivery %s not sent now, its state could not be written (%s)",
                            row.campaign_id, row.id, type(exc).__name__)
                raise _NotInFlight(row.id) from exc
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
            if "before_send" in inspect.signature(adapter.deliver).parameters:
                kwargs["before_send"] = before_send
            else:  # an adapter without a pacer (the web outbox): marked just before the call
                await before_send()
            await adapter.deliver(row.platform_id, content.reply, **kwargs)
            return outcome("sent", None, row.attempts + 1, content.parts)
        except asyncio.CancelledError:
            raise
        except _NotInFlight:
            return None
        except SendError as exc:
            parts = max(row.parts_done, getattr(exc, "parts_done", 0) if resumable else 0)
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

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Write results, only onto rows still in the state the sender left them (`sending`, or
        `pending` for a row skipped before its send): a later holder may have resolved them."""
        now = utcnow()
        retrying = {o.campaign_id for o in outcomes if o.state == "pending"}
        if retrying:  # a retry of a campaign stopped meanwhile is dropped, with the reason
            # Read in its own transaction: on SQLite a transaction that reads and then writes
            # fails at once ("database is locked") if another write committed in between.
            async with self.sessions() as s:
                states = dict((await s.execute(select(Campaign.id, Campaign.state)
                                               .where(Campaign.id.in_(retrying)))).all())
            for o in outcomes:
                if o.state == "pending" and states.get(o.campaign_id) in ("cancelled", "expired"):
                    o.state, o.error, o.next_attempt_at = "skipped", states[o.campaign_id], None
        async with self.sessions.begin() as s:
            table = Delivery.__table__
            await s.execute(
                table.update().where(table.c.id == bindparam("b_id"), table.c.state == bindparam("b_from")).values(
                    state=bindparam("b_state"), error=bindparam("b_error"), attempts=bindparam("b_attempts"),
                    parts_done=bindparam("b_parts"), next_attempt_at=bindparam("b_next"), updated_at=now),
                [{"b_id": o.id, "b_from": o.from_state, "b_state": o.state, "b_error": o.error,
                  "b_attempts": o.attempts, "b_parts": o.parts_done, "b_next": o.next_attempt_at} for o in outcomes])

    # --- progress and reports ------------------------------------------------------------
    def _report_adapter(self, campaign: Campaign):
        if not campaign.report_channel or not campaign.report_chat:
            return None
        return self.channels.adapters.get(campaign.report_channel)

    async def counts(self, campaign_id: int) -> dict[str, Counter]:
        """Delivery counts by channel and state."""
        async with self.sessions() as s:
            rows = await s.execute(select(Delivery.channel, Delivery.state, func.count()).where(
                Delivery.campaign_id == campaign_id).group_by(Delivery.channel, Delivery.state))
            by_channel: dict[str, Counter] = {}
            for channel, state, n in rows:
                by_channel.setdefault(channel, Counter())[state] = n
            return by_channel

    def eta_seconds(self, campaign: Campaign, by_channel: dict[str, Counter]) -> float:
        """Time left at each channel's configured rate (channels send in parallel)."""
        parts = message_parts(campaign_reply(campaign))
        longest = 0.0
        for channel, counts in by_channel.items():
            pacer = getattr(self.channels.adapters.get(channel), "pacer", None)
            rate = pacer.rate if pacer is not None else 1.0
            wait = pacer.paused_for if pacer is not None else 0.0
            remaining = counts["pending"] + counts["sending"]
            if remaining:
                longest = max(longest, wait + remaining * parts / rate)
        return longest

    def render(self, campaign: Campaign, by_channel: dict[str, Counter], state: str) -> Reply:
        counts = sum(by_channel.values(), Counter())
        total = sum(counts.values())
        remaining = counts["pending"] + counts["sending"]
        line = (f"📣 Chiến dịch #{campaign.id} \"{campaign.title}\" — {STATE_LABELS.get(state, state)}\n"
                f"Đã gửi {counts['sent']}/{total} · lỗi {counts['failed']} · chặn bot {counts['blocked']} · "
                f"bỏ qua {counts['skipped']} · không chắc chắn {counts['uncertain']} · còn lại {remaining}")
        if state == "sending" and remaining:
            seconds = self.eta_seconds(campaign, by_channel)
            eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
            line += f"\nDự kiến xong lúc {eta.astimezone(LOCAL_TZ):%H:%M} (còn khoảng {_duration(seconds)})"
        if state in FINAL_STATES:
            head = {"done": "✅ Kết thúc.", "expired": "⌛ Hết hạn: tin chưa gửi đã được bỏ.",
                    "cancelled": "🛑 Đã hủy: tin chưa gửi đã được bỏ."}[state]
            line = f"{head} {line}"
            if counts["uncertain"]:
                line += ("\nTin \"không chắc chắn\": đang gửi thì tiến trình dừng, có thể đã tới người nhận; "
                         "không gửi lại để tránh trùng.")
        return Reply(line, kind="notice")

    async def _open_progress(self, campaign_id: int) -> None:
        async with self.sessions() as s:
            campaign = await s.get(Campaign, campaign_id)
        adapter = self._report_adapter(campaign) if campaign else None
        if adapter is None or campaign.report_message_id is not None:
            return
        try:
            message_id = await adapter.send(campaign.report_chat,
                                            self.render(campaign, await self.counts(campaign_id), "sending"))
        except Exception:
            log.warning("could not post campaign progress", exc_info=True)
            return
        async with self.sessions.begin() as s:
            await s.execute(update(Campaign).where(Campaign.id == campaign_id)
                            .values(report_message_id=message_id, progress_at=utcnow()))

    async def _progress_round(self) -> None:
        """Edit the progress message of running campaigns; one process per edit (progress_at)."""
        now = utcnow()
        async with self.sessions() as s:
            campaigns = list(await s.scalars(select(Campaign).where(
                Campaign.state.in_(("sending", "paused")), Campaign.report_chat.is_not(None),
                or_(Campaign.progress_at.is_(None),
                    Campaign.progress_at < now - dt.timedelta(seconds=self.progress_every)))))
        for campaign in campaigns:
            adapter = self._report_adapter(campaign)
            if adapter is None:
                continue
            edits = getattr(adapter, "edits_messages", True) and campaign.report_message_id is not None
            every = self.progress_every if edits else max(self.progress_every, PROGRESS_MESSAGE_EVERY)
            async with self.sessions.begin() as s:
                claimed = await s.execute(update(Campaign).where(
                    Campaign.id == campaign.id,
                    or_(Campaign.progress_at.is_(None), Campaign.progress_at < now - dt.timedelta(seconds=every)))
                    .values(progress_at=now))
            if not claimed.rowcount:
                continue
            reply = self.render(campaign, await self.counts(campaign.id), campaign.state)
            try:
                if edits:
                    await adapter.edit(campaign.report_chat, campaign.report_message_id, reply)
                else:
                    await adapter.send(campaign.report_chat, reply)
            except Exception:
                log.warning("could not update campaign %s progress", campaign.id, exc_info=True)

    async def _report_finished(self) -> None:
        """One final report per finished campaign (done, expired, cancelled once it had started)."""
        in_flight = exists().where(Delivery.campaign_id == Campaign.id, Delivery.state == "sending")
        async with self.sessions() as s:
            campaigns = list(await s.scalars(select(Campaign).where(
                Campaign.state.in_(FINAL_STATES), Campaign.reported_at.is_(None), Campaign.report_chat.is_not(None),
                or_(Campaign.state != "cancelled", Campaign.started_at.is_not(None)), ~in_flight)))
        for campaign in campaigns:
            adapter = self._report_adapter(campaign)
            if adapter is None:
                continue
            async with self.sessions.begin() as s:
                claimed = await s.execute(update(Campaign).where(Campaign.id == campaign.id,
                                                                 Campaign.reported_at.is_(None))
                                          .values(reported_at=utcnow()))
            if not claimed.rowcount:
                continue
            by_channel = await self.counts(campaign.id)
            try:
                if campaign.report_message_id is not None and getattr(adapter, "edits_messages", True):
                    await adapter.edit(campaign.report_chat, campaign.report_message_id,
                                       self.render(campaign, by_channel, campaign.state))
                await adapter.send(campaign.report_chat, self.render(campaign, by_channel, campaign.state))
            except Exception:
                log.warning("could not post the report of campaign %s", campaign.id, exc_info=True)


def _dialect(sessions) -> str | None:
    bind = getattr(sessions, "kw", {}).get("bind")
    return bind.dialect.name if bind is not None else None


def _duration(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} phút"
    return f"{minutes // 60} giờ {minutes % 60} phút"


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()

