"""What is due, who sends it, and the loop: starts due campaigns and drives the senders.

Every (campaign, recipient) pair is a row. Sending is claimed per channel: one lease per
channel in the database ("campaign-sender:<channel>", bot/storage/locks.py), renewed by a
heartbeat; if a renewal fails the sender stops at once. So Telegram and Zalo campaigns
proceed independently, and since only the lease holder broadcasts on a channel, the
channel's broadcast rate holds across processes. Within its lease the sender keeps a window
of rows in flight, taken round-robin from every due campaign, so a small urgent warning is
not stuck behind a 100,000-recipient campaign.

The lease holder reads a window of due `pending` rows (remembering in memory which it has
taken), and marks each one `pending -> sending` only when the pacer lets its first API call
go (bot/campaigns/sender.py), in its own committed write, conditional on the row still being
pending and its campaign still sending. The result is written only while the row is still
`sending`. So a crash leaves in `sending` only the deliveries whose send had begun: the next
holder of the channel's lease marks them `uncertain` and they are reported, never re-sent
(nobody gets a campaign twice, nobody is skipped silently), while the rows that were still
waiting for their turn are simply `pending` and are sent by the next holder.

Every process also runs the bookkeeping (`coordinate`): start due campaigns (creating rows
with one INSERT ... SELECT, re-checking the approval threshold on the real count), expire,
finish, and the progress messages and final reports (bot/campaigns/progress.py). Recipients
are streamed in windows, so memory stays flat however many there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time

from bot.campaigns.progress import ProgressReporter
from bot.campaigns.rules import CampaignRule
from bot.campaigns.sender import ChannelSender, Claimed, Content, message_parts
from bot.campaigns.service import campaign_reply
from bot.storage.campaigns import BROADCAST_CHANNELS, CampaignStore, DueDelivery, Outcome
from bot.storage.models import utcnow

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=60)
SENDER_LOCK = "campaign-sender:{channel}"
RECORD_EVERY = 0.25  # seconds between batched writes of results
STOP_GRACE = 10.0  # on shutdown, in-flight sends get this long to finish

# Per-channel rule: given the recipient's last inbound time, a reason to skip them, or None.
# A rule may also have `async prepare(store)`, awaited before each window (e.g. a quota).
ChannelRule = CampaignRule  # a platform's limits (bot/campaigns/rules.py)


class Scheduler:
    def __init__(self, store: CampaignStore, sender: ChannelSender, progress: ProgressReporter, *,
                 window: int | None = None, rules: dict[str, ChannelRule] | None = None,
                 owner: str | None = None, poll_seconds: float = 2.0, lease: dt.timedelta = LEASE,
                 approval_threshold: int | None = None):
        self.store = store
        self.sender = sender
        self.progress = progress
        self.window = window  # None: from the channel's rate (sender.window)
        self.rules = rules or {}
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_seconds = poll_seconds
        self.lease = lease  # a crashed sender's channel is taken over after this
        self.approval_threshold = approval_threshold  # None: no re-check at start
        self.stop_grace = STOP_GRACE  # seconds in-flight sends get on shutdown (tests shorten it)
        self._rr: dict[str, int] = {}  # channel -> campaign served last (round-robin)
        self._content: dict[int, Content] = {}
        self._senders: dict[str, asyncio.Task] = {}

    # --- main loop -----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """The service's loop: bookkeeping every poll, one sender task per channel with work."""
        while not stop.is_set():
            try:
                await self.coordinate()
                for channel in await self.channels_with_work():
                    task = self._senders.get(channel)
                    if task is None or task.done():
                        self._senders[channel] = asyncio.create_task(self.send_channel(channel, stop))
            except Exception:
                log.exception("campaign runner failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)
        await asyncio.gather(*self._senders.values(), return_exceptions=True)

    async def run_once(self, stop: asyncio.Event | None = None) -> bool:
        """Bookkeeping, then send what is due now on every channel; True if anything happened."""
        worked = await self.coordinate()
        channels = await self.channels_with_work()
        if channels:
            results = await asyncio.gather(*(self.send_channel(c, stop) for c in channels))
            worked = any(results) or worked
            worked = await self.coordinate() or worked
        return worked

    # --- bookkeeping (every process) -------------------------------------------------
    async def coordinate(self) -> bool:
        self.sender.wire_pacers()
        worked = await self._expire_overdue()
        worked = await self._start_due() or worked
        worked = await self.store.finish_done() or worked
        await self.progress.round()
        await self.progress.report_finished()
        return worked

    async def _expire_overdue(self) -> bool:
        due = await self.store.expire_overdue(utcnow())
        # Pending rows of stopped campaigns are skipped in short batches (see skip_pending); this
        # also catches a retry recorded as pending just after a cancellation or expiry, and rows a
        # cancellation left when its process stopped half-way. Read first (no write lock held
        # while looking), then write only where there is something to skip.
        for campaign_id, state in await self.store.stopped_with_pending():
            await self.store.skip_pending(campaign_id, state)
        return bool(due)

    async def _start_due(self) -> bool:
        started = False
        for campaign_id in await self.store.due_to_start(utcnow()):
            started = await self._start(campaign_id) or started
        return started

    async def _start(self, campaign_id: int) -> bool:
        """First start creates the delivery rows; a resume only flips the state back."""
        result = await self.store.start(campaign_id, self.approval_threshold)
        if result.outcome == "needs_approval":
            log.warning("campaign %s: %d recipients now, above the approval threshold",
                        campaign_id, result.recipients)
        if result.outcome != "started":
            return bool(result.outcome)
        await self.progress.open(campaign_id)
        return True

    async def channels_with_work(self) -> list[str]:
        names = list(dict.fromkeys([*self.sender.names(), *BROADCAST_CHANNELS]))
        return await self.store.channels_with_work(names, utcnow())

    # --- one channel's sender ----------------------------------------------------------
    async def send_channel(self, channel: str, stop: asyncio.Event | None) -> bool:
        """Send what is due on `channel` while holding its lease; False if another process has it."""
        name = SENDER_LOCK.format(channel=channel)
        if not await self.store.acquire_lease(name, self.owner, self.lease):
            return False
        halt = asyncio.Event()
        lost = asyncio.Event()
        watchers = [asyncio.create_task(self._heartbeat(name, lost, halt))]
        if stop is not None:
            watchers.append(asyncio.create_task(_relay(stop, halt)))
        try:
            resolved = await self._resolve_stuck(channel)
            reason = self.sender.cannot_deliver(channel)
            if reason is not None:  # rows for a channel this process cannot send on are skipped
                return await self.store.skip_channel(channel, reason) or resolved
            return await self._pump(channel, halt, lost) or resolved
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            if not lost.is_set():
                with contextlib.suppress(Exception):
                    await self.store.release_lease(name, self.owner)

    async def _heartbeat(self, name: str, lost: asyncio.Event, halt: asyncio.Event) -> None:
        """Renew the lease; stop the sender at once if a renewal fails or comes too late."""
        lease = self.lease.total_seconds()
        last_ok = time.monotonic()  # the lease is ours until at least last_ok + lease
        delay = lease / 3
        while True:
            await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                ok = await self.store.acquire_lease(name, self.owner, self.lease)
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
        stuck = await self.store.resolve_stuck(channel)
        for campaign_id, n in stuck:
            log.warning("campaign %s: %d %s deliveries were in flight when a sender stopped; marked uncertain",
                        campaign_id, n, channel)
        return bool(stuck)

    async def _pump(self, channel: str, halt: asyncio.Event, lost: asyncio.Event) -> bool:
        """Keep a window of deliveries in flight until nothing is due; write results in batches."""
        tasks: dict[asyncio.Task, int] = {}  # in flight -> delivery id
        outcomes: list[Outcome] = []
        changed = asyncio.Event()
        waker = asyncio.create_task(_relay(halt, changed))
        resumable = self.sender.resumable(channel)
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
                    batch, window = await self._claim_next(channel, len(tasks), taken)
                    if batch is None:
                        idle_since = now
                    elif batch:
                        idle_since, worked, low_water = None, True, window // 2
                        for content, row in batch:
                            task = asyncio.create_task(self.sender.deliver(channel, content, row, resumable))
                            tasks[task] = row.id
                            task.add_done_callback(finished)
                if not tasks and not outcomes and idle_since is not None:
                    break
                now = time.monotonic()
                if outcomes and (now - last_flush >= RECORD_EVERY or not tasks):
                    ready = outcomes[:]
                    outcomes.clear()
                    await self.store.record(ready)
                    last_flush = now
                if now - last_progress >= self.progress.every:
                    last_progress = now
                    await self.progress.round()
                if tasks:
                    changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), RECORD_EVERY)
        finally:
            waker.cancel()
            if tasks and not lost.is_set():  # shutting down: let what is in flight finish
                await asyncio.wait(set(tasks), timeout=self.stop_grace)
            for task in set(tasks):  # lease lost: stop at once; these rows will read `uncertain`
                task.cancel()
            await asyncio.gather(*tasks, waker, return_exceptions=True)
            if outcomes:
                await self.store.record(outcomes[:])
        return worked

    async def _claim_next(self, channel: str, in_flight: int,
                          taken: set[int]) -> tuple[list[tuple[Content, Claimed]] | None, int]:
        """(rows to send next, from the due campaigns in turn, and that campaign's window);
        rows are [] if the window is full, None if nothing is due now."""
        await self.sender.sync_pause(channel)
        campaign_ids = await self.store.sending_campaign_ids(utcnow())
        last = self._rr.get(channel, 0)
        ordered = [c for c in campaign_ids if c > last] + [c for c in campaign_ids if c <= last]
        full = False
        for campaign_id in ordered:
            content = await self._campaign_content(campaign_id)
            window = self.window if self.window is not None else self.sender.window(channel, content.parts)
            if in_flight > window // 2:
                full = True
                continue
            rows = await self.claim(channel, campaign_id, window - in_flight, taken)
            if rows:
                self._rr[channel] = campaign_id
                return [(content, row) for row in rows], window
        return ([] if full else None), 0

    async def _campaign_content(self, campaign_id: int) -> Content:
        content = self._content.get(campaign_id)
        if content is None:
            reply = campaign_reply(await self.store.get(campaign_id))
            content = self._content[campaign_id] = Content(reply, message_parts(reply))
        return content

    async def claim(self, channel: str, campaign_id: int, limit: int, taken: set[int]) -> list[Claimed]:
        """Due pending rows of one campaign on `channel`, not already `taken` by this sender.

        Nothing is written here: a row is marked in flight only when its send begins
        (`CampaignStore.mark_in_flight`). Only the channel's lease holder reads rows to send; the
        mark is conditional, so a row is sent by one sender even if a lease changes hands meanwhile."""
        now = utcnow()
        rule = self.rules.get(channel)
        if rule is not None:  # rules with state (quotas) re-read it per window
            await rule.prepare(self.store)
        return [self._claimed(campaign_id, row, rule)
                for row in await self.store.due_deliveries(channel, campaign_id, limit, taken, now)]

    @staticmethod
    def _claimed(campaign_id: int, row: DueDelivery, rule: ChannelRule | None) -> Claimed:
        claimed = Claimed(row.id, campaign_id, row.platform_id if row.found else None, row.attempts,
                          row.parts_done)
        if not row.found:
            claimed.skip = "recipient deleted their data"
        elif not row.active:
            claimed.skip = "recipient is no longer reachable"
        elif not row.subscribed:
            claimed.skip = "unsubscribed"
        elif rule is not None:
            claimed.skip = rule(row.last_inbound_at)
        return claimed


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
