"""The delivery engine: claims due campaigns and sends them, crash-safe and paced.

Every (campaign, recipient) pair is a row. A window of rows is marked `sending`, sent
concurrently through the channel's pacer, then marked with the result. A crash can only
leave that window in `sending`; on the next claim those rows become `uncertain` and are
reported, never re-sent, so nobody gets a campaign twice and nobody is skipped silently.
Recipients are streamed in batches, so memory stays flat however many there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy import func, insert, literal, select, update

from bot.campaigns.service import campaign_reply, recipients_query
from bot.channels.errors import OutsideWindow, RateLimited, RecipientGone, Rejected, SendError, Transient
from bot.storage import locks
from bot.storage.models import Campaign, Delivery, User, utcnow
from handlers.messages import Reply

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=60)
SENDER_LOCK = "campaign-sender"
MAX_ATTEMPTS = 5
PROGRESS_EVERY = 5.0  # seconds between edits of the staff's progress message

# Per-channel rule: given the recipient's last inbound time, a reason to skip them, or None.
# A rule may also have `async prepare(sessions)`, awaited before each window (e.g. a quota).
ChannelRule = Callable[[dt.datetime | None], str | None]


class CampaignRunner:
    def __init__(self, sessions, channels, *, window: int = 8, rules: dict[str, ChannelRule] | None = None,
                 on_unreachable=None, owner: str | None = None, poll_seconds: float = 2.0,
                 lease: dt.timedelta = LEASE):
        self.sessions = sessions
        self.channels = channels
        self.window = window
        self.rules = rules or {}
        self.on_unreachable = on_unreachable
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_seconds = poll_seconds
        self.lease = lease  # a crashed sender's campaign is taken over after this

    # --- main loop -----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.run_once(stop)
            except Exception:
                log.exception("campaign runner failed; retrying")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)

    async def run_once(self, stop: asyncio.Event | None = None) -> bool:
        """Send the next due campaign if this process holds the sender lock; True if it did work."""
        if not await locks.acquire(self.sessions, SENDER_LOCK, self.owner, self.lease):
            return False
        try:
            await self._expire_overdue()
            campaign_id = await self._claim_next()
            if campaign_id is None:
                return False
            await self.send_campaign(campaign_id, stop)
            return True
        finally:
            await locks.release(self.sessions, SENDER_LOCK, self.owner)

    async def _expire_overdue(self) -> None:
        now = utcnow()
        async with self.sessions.begin() as s:
            due = (await s.scalars(select(Campaign.id).where(
                Campaign.state.in_(("scheduled", "pending_approval", "paused")), Campaign.expires_at < now))).all()
            for campaign_id in due:
                await self._finish_expired(s, campaign_id)

    async def _claim_next(self) -> int | None:
        now = utcnow()
        async with self.sessions.begin() as s:
            candidates = (await s.scalars(select(Campaign.id).where(
                Campaign.state.in_(("scheduled", "sending")), Campaign.scheduled_at <= now)
                .order_by(Campaign.scheduled_at, Campaign.id).limit(5))).all()
            for campaign_id in candidates:
                claimed = await s.execute(update(Campaign).where(
                    Campaign.id == campaign_id, Campaign.state.in_(("scheduled", "sending")),
                    (Campaign.claimed_until.is_(None)) | (Campaign.claimed_until < now)
                    | (Campaign.claimed_by == self.owner))
                    .values(claimed_by=self.owner, claimed_until=now + self.lease))
                if claimed.rowcount:
                    return campaign_id
        return None

    # --- one campaign ------------------------------------------------------------------
    async def send_campaign(self, campaign_id: int, stop: asyncio.Event | None = None) -> None:
        await self._start(campaign_id)
        async with self.sessions() as s:
            campaign = await s.get(Campaign, campaign_id)
        assert campaign is not None
        reply = campaign_reply(campaign)
        progress = _Progress(self, campaign)
        await progress.open()
        while stop is None or not stop.is_set():
            state = await self._renew(campaign_id)
            if state != "sending":
                break
            if campaign.expires_at and utcnow() >= campaign.expires_at:
                async with self.sessions.begin() as s:
                    await self._finish_expired(s, campaign_id)
                break
            batch = await self._next_window(campaign_id)
            if not batch:
                await self._finish(campaign_id)
                break
            for rule in self.rules.values():  # rules with state (quotas) re-read it per window
                prepare = getattr(rule, "prepare", None)
                if prepare is not None:
                    await prepare(self.sessions)
            results = await asyncio.gather(*(self._deliver_one(row, reply) for row in batch))
            await self._record(campaign_id, results)
            await progress.maybe_update()
        await progress.close()

    async def _start(self, campaign_id: int) -> None:
        """First claim creates the delivery rows; a later claim resolves rows a crash left mid-send."""
        now = utcnow()
        async with self.sessions.begin() as s:
            campaign = await s.get(Campaign, campaign_id)
            assert campaign is not None
            if campaign.state == "scheduled" and campaign.started_at is None:
                rows = recipients_query(campaign.segment or {}, campaign.channel).subquery()
                await s.execute(insert(Delivery).from_select(
                    ["campaign_id", "user_id", "channel", "state", "attempts", "updated_at"],
                    select(literal(campaign_id), rows.c.id, rows.c.channel, literal("pending"), literal(0),
                           literal(now, type_=Delivery.__table__.c.updated_at.type))))
                campaign.recipients = await s.scalar(
                    select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)) or 0
                campaign.started_at = now
            else:
                stuck = await s.execute(update(Delivery).where(
                    Delivery.campaign_id == campaign_id, Delivery.state == "sending")
                    .values(state="uncertain", error="process stopped while sending", updated_at=now))
                if stuck.rowcount:
                    campaign.uncertain = (campaign.uncertain or 0) + stuck.rowcount
                    log.warning("campaign %s: %d deliveries were in flight at a crash; marked uncertain",
                                campaign_id, stuck.rowcount)
            campaign.state = "sending"

    async def _renew(self, campaign_id: int) -> str | None:
        """Extend both leases; returns the campaign's state (staff may have paused it)."""
        await locks.acquire(self.sessions, SENDER_LOCK, self.owner, self.lease)
        async with self.sessions.begin() as s:
            await s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.claimed_by == self.owner)
                            .values(claimed_until=utcnow() + self.lease))
            return await s.scalar(select(Campaign.state).where(Campaign.id == campaign_id))

    async def _next_window(self, campaign_id: int) -> list[tuple[int, str, str | None, dt.datetime | None, int]]:
        """Mark the next few pending rows as `sending` and return (id, channel, platform id, last inbound, attempts)."""
        async with self.sessions.begin() as s:
            rows = (await s.execute(
                select(Delivery.id, Delivery.channel, User.platform_id, User.last_inbound_at, Delivery.attempts,
                       User.active)
                .join(User, User.id == Delivery.user_id, isouter=True)
                .where(Delivery.campaign_id == campaign_id, Delivery.state == "pending")
                .order_by(Delivery.id).limit(self.window))).all()
            if not rows:
                return []
            await s.execute(update(Delivery).where(Delivery.id.in_([r[0] for r in rows]))
                            .values(state="sending", updated_at=utcnow()))
            return [(r[0], r[1], r[2] if r[5] else None, r[3], r[4]) for r in rows]

    async def _deliver_one(self, row, reply: Reply) -> tuple[int, str, str | None, int]:
        """-> (delivery id, new state, error, attempts)."""
        delivery_id, channel, platform_id, last_inbound, attempts = row
        if platform_id is None:
            return delivery_id, "skipped", "recipient left or deleted their data", attempts
        rule = self.rules.get(channel)
        reason = rule(last_inbound) if rule else None
        if reason:
            return delivery_id, "skipped", reason, attempts
        adapter = self.channels.adapters.get(channel)
        if adapter is None:
            return delivery_id, "skipped", f"channel {channel} is not running", attempts
        try:
            await adapter.deliver(platform_id, reply, broadcast=True)
            return delivery_id, "sent", None, attempts + 1
        except RateLimited as exc:
            return delivery_id, "pending", f"rate limited ({exc.retry_after:.0f}s)", attempts  # not an attempt
        except RecipientGone as exc:
            if self.on_unreachable is not None:
                await self.on_unreachable(channel, platform_id)
            return delivery_id, "blocked", exc.reason[:300], attempts + 1
        except OutsideWindow as exc:
            return delivery_id, "skipped", exc.reason[:300] or "outside messaging window", attempts + 1
        except Rejected as exc:
            return delivery_id, "failed", exc.reason[:300], attempts + 1
        except (Transient, SendError) as exc:
            attempts += 1
            if attempts >= MAX_ATTEMPTS:
                return delivery_id, "failed", f"gave up: {exc.reason}"[:300], attempts
            await asyncio.sleep(min(30.0, 0.5 * 2**attempts))
            return delivery_id, "pending", exc.reason[:300], attempts

    async def _record(self, campaign_id: int, results) -> None:
        now = utcnow()
        async with self.sessions.begin() as s:
            for delivery_id, state, error, attempts in results:
                await s.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                    state=state, error=error, attempts=attempts, updated_at=now))

    async def _finish(self, campaign_id: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.state == "sending")
                            .values(state="done", finished_at=utcnow(), claimed_until=None))

    async def _finish_expired(self, s, campaign_id: int) -> None:
        now = utcnow()
        await s.execute(update(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.state == "pending")
                        .values(state="skipped", error="expired", updated_at=now))
        await s.execute(update(Campaign).where(Campaign.id == campaign_id)
                        .values(state="expired", finished_at=now, claimed_until=None))


class _Progress:
    """The status message of the staff member who launched a campaign, edited as it goes."""

    def __init__(self, runner: CampaignRunner, campaign: Campaign):
        self.runner = runner
        self.campaign = campaign
        self.message_id: int | None = campaign.report_message_id
        self.last = 0.0
        self.started = time.monotonic()
        self.sent_at_start: int | None = None

    @property
    def adapter(self):
        c = self.campaign
        return self.runner.channels.adapters.get(c.report_channel) if c.report_channel and c.report_chat else None

    async def counts(self) -> Counter:
        async with self.runner.sessions() as s:
            rows = await s.execute(select(Delivery.state, func.count()).where(
                Delivery.campaign_id == self.campaign.id).group_by(Delivery.state))
            return Counter({state: n for state, n in rows})

    def render(self, counts: Counter, final: bool = False) -> Reply:
        c = self.campaign
        total = sum(counts.values())
        remaining = counts["pending"] + counts["sending"]
        done = total - remaining
        line = (f"📣 Chiến dịch #{c.id} \"{c.title}\"\n"
                f"Đã gửi {counts['sent']}/{total} · lỗi {counts['failed']} · chặn bot {counts['blocked']} · "
                f"bỏ qua {counts['skipped']} · không chắc chắn {counts['uncertain']} · còn lại {remaining}")
        if final:
            return Reply("✅ Kết thúc. " + line, kind="notice")
        elapsed = time.monotonic() - self.started
        sent_now = done - (self.sent_at_start or 0)
        if sent_now > 0 and remaining:
            eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=elapsed / sent_now * remaining)
            line += f"\nDự kiến xong lúc {eta.astimezone(dt.timezone(dt.timedelta(hours=7))):%H:%M}"
        return Reply(line, kind="notice")

    async def open(self) -> None:
        counts = await self.counts()
        self.sent_at_start = sum(counts.values()) - counts["pending"] - counts["sending"]
        adapter = self.adapter
        if adapter is None or self.message_id is not None:
            return
        try:
            self.message_id = await adapter.send(self.campaign.report_chat, self.render(counts))
        except Exception:
            log.warning("could not post campaign progress", exc_info=True)
            return
        async with self.runner.sessions.begin() as s:
            await s.execute(update(Campaign).where(Campaign.id == self.campaign.id)
                            .values(report_message_id=self.message_id))

    async def maybe_update(self) -> None:
        adapter = self.adapter
        if adapter is None or self.message_id is None or time.monotonic() - self.last < PROGRESS_EVERY:
            return
        self.last = time.monotonic()
        await adapter.edit(self.campaign.report_chat, self.message_id, self.render(await self.counts()))

    async def close(self) -> None:
        adapter = self.adapter
        if adapter is None:
            return
        async with self.runner.sessions() as s:
            state = await s.scalar(select(Campaign.state).where(Campaign.id == self.campaign.id))
        if state not in ("done", "expired"):
            return
        counts = await self.counts()
        if self.message_id is not None:
            await adapter.edit(self.campaign.report_chat, self.message_id, self.render(counts))
        try:
            await adapter.send(self.campaign.report_chat, self.render(counts, final=True))
        except Exception:
            log.warning("could not post the campaign report", exc_info=True)
