"""Every campaign query: campaigns, their delivery rows, segments, sender leases, progress.

The campaign code (bot/campaigns/) decides; this module reads and writes. Each method is one
short transaction, and the conditions that keep two processes from sending one message twice
live in the statements themselves, so they are worth reading before changing:

- a sender reads due rows without writing anything (`due_deliveries`); only the holder of the
  channel's lease (`acquire_lease`, bot/storage/locks.py) reads rows to send;
- a row goes in flight with one conditional UPDATE (`mark_in_flight`: still `pending`, its
  campaign still `sending`), committed before the send, so of several racing senders exactly one
  wins it;
- a result is written only onto a row still in the state its sender left it (`record`);
- rows left `sending` by a sender that stopped become `uncertain` (`resolve_stuck`), never re-sent.

SQLite paths: reads that precede writes run in their own transaction (a SQLite transaction
that reads, then writes after another write committed, fails with "database is locked"), and
stopped campaigns' pending rows are skipped in short batches (`skip_pending`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Text, bindparam, cast, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.storage import locks
from bot.storage.models import AuditLog, Campaign, ChannelPause, Delivery, Staff, Subscription, User, utcnow
from bot.storage.send_budget import SharedBudget

# Channels whose adapter can deliver a broadcast. Web chat too: its citizens can subscribe
# there (/dangky is told "Đã đăng ký nhận tin"), and a campaign waits in their outbox until
# the chat page polls, like a team reply. Only "all" reaches them: no --channel names web.
BROADCAST_CHANNELS = ("telegram", "zalo", "zalobot", "web")
# "zalo" reaches citizens on both Zalo products: the Official Account and the Zalo Bot.
CHANNEL_GROUPS = {"zalo": ("zalo", "zalobot")}
RUNNING_STATES = ("scheduled", "pending_approval", "paused", "sending")
FINAL_STATES = ("done", "expired", "cancelled")
SKIP_BATCH = 1000  # pending rows skipped per transaction when a campaign stops


def recipients_query(segment: dict, channel: str):
    """Active subscribers in the segment: wards OR-ed, topics OR-ed, the two AND-ed."""
    query = (select(User.id, User.channel).join(Subscription, Subscription.user_id == User.id)
             .where(User.active.is_(True), Subscription.active.is_(True),
                    User.channel.in_(BROADCAST_CHANNELS)))
    if segment.get("wards"):
        query = query.where(Subscription.ward.in_(segment["wards"]))
    if segment.get("topics"):
        topics_text = cast(Subscription.topics, Text)
        # An empty topic list means "everything".
        query = query.where(or_(topics_text == "[]", *[topics_text.like(f'%"{t}"%') for t in segment["topics"]]))
    if channel != "all":
        query = query.where(User.channel.in_(CHANNEL_GROUPS.get(channel, (channel,))))
    return query


@dataclass
class Outcome:
    """The result of one delivery attempt, as written onto its row."""

    id: int
    campaign_id: int
    state: str
    error: str | None
    attempts: int
    parts_done: int
    next_attempt_at: dt.datetime | None = None
    from_state: str = "sending"  # the row's state the result replaces: "pending" if never marked in flight


@dataclass(frozen=True)
class DueDelivery:
    """A due pending row with what the sender needs to know of its recipient (None: user deleted)."""

    id: int
    user_id: int | None
    attempts: int
    parts_done: int
    platform_id: str | None = None
    found: bool = False
    active: bool = False
    subscribed: bool | None = None
    last_inbound_at: dt.datetime | None = None


@dataclass(frozen=True)
class StartResult:
    """What `start` did: "" (nothing: not scheduled, or another process was first), "resumed",
    "needs_approval" (the segment grew past the threshold) or "started" (rows created)."""

    outcome: str
    recipients: int = 0


class CampaignStore:
    """The campaign repository over an async session factory."""

    def __init__(self, sessions):
        self.sessions = sessions

    @property
    def dialect(self) -> str | None:
        bind = getattr(self.sessions, "kw", {}).get("bind")
        return bind.dialect.name if bind is not None else None

    def shared_budget(self, channel: str, rate: float) -> SharedBudget:
        """The channel's send schedule shared by every process (PostgreSQL only)."""
        return SharedBudget(self.sessions, channel, rate)

    # --- campaigns: creating and steering --------------------------------------------
    async def count_recipients(self, segment: dict, channel: str) -> int:
        async with self.sessions() as s:
            return await s.scalar(select(func.count()).select_from(recipients_query(segment, channel).subquery())) or 0

    async def create(self, row: Campaign, actor: str, detail: dict) -> Campaign:
        """Store a new campaign and its audit line in one transaction."""
        async with self.sessions.begin() as s:
            s.add(row)
            await s.flush()
            s.add(AuditLog(actor=actor, action="campaign.create", target=str(row.id), detail=detail))
            return row

    async def get(self, campaign_id: int) -> Campaign | None:
        async with self.sessions() as s:
            return await s.get(Campaign, campaign_id)

    async def recent(self, limit: int = 20) -> list[Campaign]:
        async with self.sessions() as s:
            return list(await s.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit)))

    async def update_draft(self, campaign_id: int, values: dict) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.state == "draft")
                            .values(**values))

    async def active_staff(self, *, username: str | None = None, channel: str | None = None,
                           platform_id: str | None = None) -> Staff | None:
        """The active staff account with this dashboard username, or this channel identity."""
        async with self.sessions() as s:
            if username is None:
                query = select(Staff).where(Staff.channel == channel, Staff.platform_id == platform_id)
            else:
                query = select(Staff).where(Staff.username == username)
            return await s.scalar(query.where(Staff.active.is_(True)))

    async def approve(self, campaign_id: int, by: str, detail: dict) -> bool:
        """The check and the change in one statement: two approvals at once cannot both win."""
        async with self.sessions.begin() as s:
            result = await s.execute(update(Campaign).where(
                Campaign.id == campaign_id, Campaign.state == "pending_approval", Campaign.created_by != by)
                .values(state="scheduled", approved_by=by))
            if not result.rowcount:
                return False
            s.add(AuditLog(actor=by, action="campaign.approve", target=str(campaign_id), detail=detail))
            return True

    async def transition(self, campaign_id: int, from_states: tuple[str, ...], values: dict, by: str,
                         action: str, detail: dict) -> tuple[bool, str | None]:
        """Change the campaign from one of `from_states`, audited. (True, None) when done,
        else (False, its current state), or (False, None) if there is no such campaign."""
        async with self.sessions.begin() as s:
            result = await s.execute(update(Campaign).where(
                Campaign.id == campaign_id, Campaign.state.in_(from_states)).values(**values))
            if not result.rowcount:
                row = await s.get(Campaign, campaign_id)
                return False, (row.state if row is not None else None)
            s.add(AuditLog(actor=by, action=action, target=str(campaign_id), detail=detail))
            return True, None

    async def skip_pending(self, campaign_id: int, reason: str, batch: int = SKIP_BATCH) -> int:
        """Mark a stopped campaign's pending rows skipped, `batch` rows per short transaction.

        On SQLite one UPDATE of 100,000 rows (three indexes each) held the database's write lock
        for seconds, longer than the busy timeout of the citizens' writes waiting behind it:
        they failed with "database is locked". Each batch is one statement, committed at once,
        so other writers get the lock between batches. Returns the number of rows skipped."""
        total = 0
        while True:
            chosen = (select(Delivery.id).where(Delivery.campaign_id == campaign_id, Delivery.state == "pending")
                      .limit(batch).scalar_subquery())
            async with self.sessions.begin() as s:
                result = await s.execute(update(Delivery).where(Delivery.id.in_(chosen), Delivery.state == "pending")
                                         .values(state="skipped", error=reason, updated_at=utcnow())
                                         .execution_options(synchronize_session=False))
            total += result.rowcount or 0
            if (result.rowcount or 0) < batch:
                return total

    # --- counts ----------------------------------------------------------------------
    async def delivery_counts(self, campaign_id: int) -> dict[str, int]:
        """Delivery rows by state (states without rows are absent)."""
        async with self.sessions() as s:
            rows = await s.execute(select(Delivery.state, func.count()).where(Delivery.campaign_id == campaign_id)
                                   .group_by(Delivery.state))
            return {state: n for state, n in rows}

    async def counts_by_channel(self, campaign_id: int) -> dict[str, Counter]:
        """Delivery counts by channel and state."""
        async with self.sessions() as s:
            rows = await s.execute(select(Delivery.channel, Delivery.state, func.count()).where(
                Delivery.campaign_id == campaign_id).group_by(Delivery.channel, Delivery.state))
            by_channel: dict[str, Counter] = {}
            for channel, state, n in rows:
                by_channel.setdefault(channel, Counter())[state] = n
            return by_channel

    async def skipped_reasons(self, campaign_id: int) -> dict[str, int]:
        async with self.sessions() as s:
            rows = await s.execute(select(Delivery.error, func.count()).where(
                Delivery.campaign_id == campaign_id, Delivery.state == "skipped").group_by(Delivery.error))
            return {error or "unknown": n for error, n in rows}

    async def campaign_messages_since(self, channel: str, since: dt.datetime) -> int:
        """Campaign messages on `channel` sent (or maybe sent) since `since` (for quotas)."""
        async with self.sessions() as s:
            return await s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.channel == channel, Delivery.state.in_(("sent", "uncertain")),
                Delivery.updated_at >= since)) or 0

    # --- scheduling: what is due -----------------------------------------------------
    async def expire_overdue(self, now: dt.datetime) -> list[int]:
        """Running campaigns past their expiry become `expired`; their ids."""
        async with self.sessions.begin() as s:
            due = (await s.scalars(select(Campaign.id).where(
                Campaign.state.in_(RUNNING_STATES), Campaign.expires_at < now))).all()
            for campaign_id in due:
                await s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.state.in_(RUNNING_STATES))
                                .values(state="expired", finished_at=now))
        return list(due)

    async def stopped_with_pending(self) -> list[tuple[int, str]]:
        """(id, state) of cancelled or expired campaigns that still have pending rows. Read
        only (no write lock held while looking)."""
        async with self.sessions() as s:
            return [tuple(row) for row in (await s.execute(select(Campaign.id, Campaign.state).where(
                Campaign.state.in_(("cancelled", "expired")),
                exists().where(Delivery.campaign_id == Campaign.id, Delivery.state == "pending")))).all()]

    async def due_to_start(self, now: dt.datetime) -> list[int]:
        async with self.sessions() as s:
            return list((await s.scalars(select(Campaign.id).where(
                Campaign.state == "scheduled", Campaign.scheduled_at <= now,
                or_(Campaign.expires_at.is_(None), Campaign.expires_at > now))
                .order_by(Campaign.scheduled_at, Campaign.id))).all())

    async def start(self, campaign_id: int, approval_threshold: int | None) -> StartResult:
        """First start creates the delivery rows (one INSERT ... SELECT, re-checking the approval
        threshold on the real count); a resume only flips the state back."""
        now = utcnow()
        async with self.sessions.begin() as s:
            campaign = await s.get(Campaign, campaign_id)
            if campaign is None or campaign.state != "scheduled":
                return StartResult("")
            if campaign.started_at is not None:
                result = await s.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                                Campaign.state == "scheduled")
                                         .values(state="sending"))
                return StartResult("resumed" if result.rowcount else "")
            rows = recipients_query(campaign.segment or {}, campaign.channel)
            count = await s.scalar(select(func.count()).select_from(rows.subquery())) or 0
            if (approval_threshold is not None and count > approval_threshold
                    and campaign.approved_by is None):
                # The segment grew past the threshold since creation: a second person decides.
                result = await s.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                                Campaign.state == "scheduled")
                                         .values(state="pending_approval", requires_approval=True, recipients=count))
                if result.rowcount:
                    s.add(AuditLog(actor="campaign-engine", action="campaign.needs_approval",
                                   target=str(campaign_id), detail={"recipients": count}))
                return StartResult("needs_approval" if result.rowcount else "", count)
            result = await s.execute(update(Campaign).where(
                Campaign.id == campaign_id, Campaign.state == "scheduled", Campaign.started_at.is_(None))
                .values(state="sending", started_at=now))
            if not result.rowcount:  # another process started it first
                return StartResult("")
            sub = rows.subquery()
            await s.execute(insert(Delivery).from_select(
                ["campaign_id", "user_id", "channel", "state", "attempts", "parts_done", "updated_at"],
                select(literal(campaign_id), sub.c.id, sub.c.channel, literal("pending"), literal(0), literal(0),
                       literal(now, type_=Delivery.__table__.c.updated_at.type))))
            recipients = await s.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)) or 0
            await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(recipients=recipients))
        return StartResult("started", recipients)

    async def finish_done(self) -> bool:
        """Sending campaigns with no pending or in-flight row left become `done`."""
        open_rows = exists().where(Delivery.campaign_id == Campaign.id, Delivery.state.in_(("pending", "sending")))
        async with self.sessions.begin() as s:
            result = await s.execute(update(Campaign).where(Campaign.state == "sending", ~open_rows)
                                     .values(state="done", finished_at=utcnow())
                                     .execution_options(synchronize_session=False))
            return bool(result.rowcount)

    async def channels_with_work(self, names: list[str], now: dt.datetime) -> list[str]:
        """Channels with a due pending row of a sending campaign, or a row left `sending`."""
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

    async def sending_campaign_ids(self, now: dt.datetime) -> list[int]:
        async with self.sessions() as s:
            return list((await s.scalars(select(Campaign.id).where(
                Campaign.state == "sending", or_(Campaign.expires_at.is_(None), Campaign.expires_at > now))
                .order_by(Campaign.id))).all())

    # --- sending: leases, claims, results ----------------------------------------------
    async def acquire_lease(self, name: str, owner: str, ttl: dt.timedelta) -> bool:
        return await locks.acquire(self.sessions, name, owner, ttl)

    async def release_lease(self, name: str, owner: str) -> None:
        await locks.release(self.sessions, name, owner)

    async def resolve_stuck(self, channel: str) -> list[tuple[int, int]]:
        """Rows another holder left `sending` (it crashed or lost the lease) become uncertain;
        (campaign id, rows) for each campaign concerned."""
        now = utcnow()
        async with self.sessions.begin() as s:
            stuck = (await s.execute(select(Delivery.campaign_id, func.count()).where(
                Delivery.channel == channel, Delivery.state == "sending").group_by(Delivery.campaign_id))).all()
            if not stuck:
                return []
            await s.execute(update(Delivery).where(Delivery.channel == channel, Delivery.state == "sending")
                            .values(state="uncertain", error="process stopped while sending", updated_at=now)
                            .execution_options(synchronize_session=False))
            for campaign_id, n in stuck:
                await s.execute(update(Campaign).where(Campaign.id == campaign_id)
                                .values(uncertain=Campaign.uncertain + n))
        return [(campaign_id, n) for campaign_id, n in stuck]

    async def skip_channel(self, channel: str, reason: str) -> bool:
        """Pending rows of sending campaigns on `channel` are skipped with `reason`."""
        async with self.sessions.begin() as s:
            result = await s.execute(update(Delivery).where(
                Delivery.channel == channel, Delivery.state == "pending",
                Delivery.campaign_id.in_(select(Campaign.id).where(Campaign.state == "sending")))
                .values(state="skipped", error=reason, updated_at=utcnow())
                .execution_options(synchronize_session=False))
            return bool(result.rowcount)

    async def due_deliveries(self, channel: str, campaign_id: int, limit: int, taken: set[int],
                             now: dt.datetime) -> list[DueDelivery]:
        """Due pending rows of one campaign on `channel`, not in `taken`, by id, with their
        recipients. Nothing is written: a row goes in flight only in `mark_in_flight`."""
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
            if person is None:
                rows.append(DueDelivery(delivery_id, user_id, attempts, parts_done))
            else:
                rows.append(DueDelivery(delivery_id, user_id, attempts, parts_done, person.platform_id, True,
                                        person.active, person.subscribed, person.last_inbound_at))
        return rows

    async def mark_in_flight(self, delivery_id: int) -> bool:
        """`pending -> sending`, committed: False if the row was resolved or its campaign paused,
        cancelled or expired since it was read (or another sender marked it first)."""
        async with self.sessions.begin() as s:
            result = await s.execute(update(Delivery).where(
                Delivery.id == delivery_id, Delivery.state == "pending",
                Delivery.campaign_id.in_(select(Campaign.id).where(Campaign.state == "sending")))
                .values(state="sending", updated_at=utcnow()).execution_options(synchronize_session=False))
        return bool(result.rowcount)

    async def record(self, outcomes: list[Outcome]) -> None:
        """Write results, only onto rows still in the state the sender left them (`sending`, or
        `pending` for a row skipped before its send): a later holder may have resolved them. A
        retry of a campaign stopped meanwhile is dropped, with the reason."""
        now = utcnow()
        retrying = {o.campaign_id for o in outcomes if o.state == "pending"}
        if retrying:
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

    # --- channel pauses (a 429's retry_after, for every process) ------------------------
    async def save_pause(self, channel: str, seconds: float) -> None:
        """Store a pause of `seconds` from now, unless a longer one is stored."""
        until = utcnow() + dt.timedelta(seconds=seconds)
        try:
            async with self.sessions.begin() as s:
                result = await s.execute(update(ChannelPause).where(
                    ChannelPause.channel == channel, ChannelPause.paused_until < until).values(paused_until=until))
                if result.rowcount or await s.get(ChannelPause, channel) is not None:
                    return  # extended, or a longer pause is already stored
                s.add(ChannelPause(channel=channel, paused_until=until))
        except IntegrityError:  # another process stored one at the same moment
            await self.save_pause(channel, seconds)

    async def pause_until(self, channel: str) -> dt.datetime | None:
        async with self.sessions() as s:
            return await s.scalar(select(ChannelPause.paused_until).where(ChannelPause.channel == channel))

    # --- progress messages and final reports ---------------------------------------------
    async def set_report_message(self, campaign_id: int, message_id) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(Campaign).where(Campaign.id == campaign_id)
                            .values(report_message_id=message_id, progress_at=utcnow()))

    async def progress_due(self, cutoff: dt.datetime) -> list[Campaign]:
        """Running campaigns with a report chat whose progress was last shown before `cutoff`."""
        async with self.sessions() as s:
            return list(await s.scalars(select(Campaign).where(
                Campaign.state.in_(("sending", "paused")), Campaign.report_chat.is_not(None),
                or_(Campaign.progress_at.is_(None), Campaign.progress_at < cutoff))))

    async def claim_progress(self, campaign_id: int, cutoff: dt.datetime, now: dt.datetime) -> bool:
        """Take this progress update (one process per update): True if it is ours."""
        async with self.sessions.begin() as s:
            claimed = await s.execute(update(Campaign).where(
                Campaign.id == campaign_id,
                or_(Campaign.progress_at.is_(None), Campaign.progress_at < cutoff))
                .values(progress_at=now))
        return bool(claimed.rowcount)

    async def finished_unreported(self) -> list[Campaign]:
        """Finished campaigns (cancelled ones once started) with a report chat, not yet reported,
        with no row still in flight."""
        in_flight = exists().where(Delivery.campaign_id == Campaign.id, Delivery.state == "sending")
        async with self.sessions() as s:
            return list(await s.scalars(select(Campaign).where(
                Campaign.state.in_(FINAL_STATES), Campaign.reported_at.is_(None), Campaign.report_chat.is_not(None),
                or_(Campaign.state != "cancelled", Campaign.started_at.is_not(None)), ~in_flight)))

    async def claim_report(self, campaign_id: int) -> bool:
        """Take the final report (one process posts it): True if it is ours."""
        async with self.sessions.begin() as s:
            claimed = await s.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                             Campaign.reported_at.is_(None))
                                      .values(reported_at=utcnow()))
        return bool(claimed.rowcount)
