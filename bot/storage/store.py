"""All database reads and writes the rest of the code needs, in one place.

Handlers and channels call these methods; nobody else builds queries. Each method is
one short transaction, so a failure never leaves half a change behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.privacy import redact, user_key
from bot.storage import drafts, inbound
from bot.storage.db import session_factory
from bot.storage.group_commit import Claim, GroupCommit, LogRow, Touch
from bot.storage.inbound import MAX_KEY, RecentKeys
from bot.storage.models import (
    AuditLog,
    FaqDraft,
    Feedback,
    Handoff,
    HandoffMessage,
    QuestionLog,
    Staff,
    Subscription,
    TeamPost,
    User,
    utcnow,
)
from bot.storage.pending import DATABASE_ERRORS, Outage
from handlers.states import Relaying

ROLES = ("admin", "staff", "viewer")


@dataclass(frozen=True)
class UserInfo:
    id: int
    channel: str
    platform_id: str
    key: str
    ward: str | None
    active: bool
    fallback_streak: int
    state: str


@dataclass(frozen=True)
class HandoffInfo:
    id: int
    user_id: int
    state: str
    team_chat_id: str
    thread_id: int | None
    ward: str | None
    question_id: int | None
    created_at: dt.datetime


def _user_info(row) -> UserInfo:
    """From a User or a row of its columns."""
    return UserInfo(row.id, row.channel, row.platform_id, row.user_key, row.ward, row.active,
                    row.fallback_streak, row.state)


def _handoff_info(row: Handoff) -> HandoffInfo:
    return HandoffInfo(row.id, row.user_id, row.state, row.team_chat_id, row.thread_id, row.ward,
                       row.question_id, row.created_at)


class Store:
    def __init__(self, engine: AsyncEngine, secret: str):
        self.engine = engine
        self.sessions: async_sessionmaker = session_factory(engine)
        self._secret = secret
        self.outage = Outage()  # set while the database is unreachable (bot/storage/pending.py)
        self.recent_events = RecentKeys()
        self.group = GroupCommit(engine)  # the per-message writes, committed in groups

    def key_for(self, channel: str, platform_id: str | int) -> str:
        return user_key(self._secret, channel, platform_id)

    # --- users -----------------------------------------------------------------
    async def touch_user(self, channel: str, platform_id: str, ward: str | None = None) -> UserInfo:
        """Find or create the user and record that they just wrote to us; `ward`, when the
        channel tells it, replaces the stored one."""
        [row] = await self.group.submit(self._touch(channel, platform_id, ward))
        return _user_info(row)

    def _touch(self, channel: str, platform_id: str, ward: str | None) -> Touch:
        return Touch(channel, platform_id, self.key_for(channel, platform_id), ward)

    async def arrive(self, key: str, channel: str, platform_id: str,
                     ward: str | None = None) -> tuple[bool, UserInfo | None]:
        """`claim_inbound_event(key)` and `touch_user` in one transaction (a citizen's message):
        (fresh, the user). While the database is unreachable: (as claim_inbound_event, None).
        A duplicate still counts as the citizen having written."""
        if key in self.recent_events:
            return False, None
        fresh, user = True, None
        if not self.outage.skip:
            try:
                fresh, row = await self.group.submit(Claim(key[:MAX_KEY]), self._touch(channel, platform_id, ward))
                user = _user_info(row)
                self.outage.recovered()
            except DATABASE_ERRORS as exc:
                self.outage.failed(exc)
        if fresh:
            self.recent_events.add(key)
        return fresh, user

    async def writes_work(self, wait: float = 3.0) -> bool:
        """False while writes are known to fail (an outage the hot path met: locked, disk full,
        unreachable). Once the retry pause is over, one real write through the same path as the
        citizens' messages decides, so /healthz heals as soon as the database does."""
        outage = self.outage
        if not outage.down:
            return True
        if outage.skip:
            return False
        try:
            async with asyncio.timeout(wait):
                await self.group.submit(Claim("probe:writes"))
        except (TimeoutError, *DATABASE_ERRORS) as exc:
            outage.failed(exc)
            return False
        outage.recovered()
        return True

    async def get_user(self, user_id: int) -> UserInfo | None:
        async with self.sessions() as s:
            row = await s.get(User, user_id)
            return _user_info(row) if row else None

    async def update_user(self, user_id: int, **fields: Any) -> None:
        allowed = {"ward", "fallback_streak", "state", "active"}
        if not set(fields) <= allowed:
            raise ValueError(f"cannot update {set(fields) - allowed}")
        async with self.sessions.begin() as s:
            await s.execute(update(User).where(User.id == user_id).values(**fields))

    async def mark_unreachable(self, channel: str, platform_id: str) -> None:
        """The user blocked the bot or was deactivated: stop sending to them."""
        async with self.sessions.begin() as s:
            row = await s.scalar(select(User).where(User.channel == channel, User.platform_id == platform_id))
            if row is None:
                return
            row.active = False
            await s.execute(update(Subscription).where(Subscription.user_id == row.id).values(active=False))

    async def delete_user_data(self, user_id: int) -> None:
        """A citizen's /xoadulieu: questions, feedback, hand-offs, subscription and the user row,
        and their wordings where staff work copied them (knowledge drafts, audit details)."""
        async with self.sessions.begin() as s:
            row = await s.get(User, user_id)
            if row is None:
                return
            await _forget_wordings(s, row)
            await s.execute(delete(Feedback).where(Feedback.user_key == row.user_key))
            await s.execute(delete(QuestionLog).where(QuestionLog.user_key == row.user_key))
            await s.execute(delete(Subscription).where(Subscription.user_id == row.id))
            handoff_ids = select(Handoff.id).where(Handoff.user_id == row.id)
            await s.execute(delete(HandoffMessage).where(HandoffMessage.handoff_id.in_(handoff_ids)))
            await s.execute(delete(TeamPost).where(TeamPost.handoff_id.in_(handoff_ids)))
            await s.execute(delete(Handoff).where(Handoff.user_id == row.id))
            await s.delete(row)

    async def claim_inbound_event(self, key: str) -> bool:
        """True the first time `key` is seen by any process; False for a duplicate (platform retry).

        While the database is unreachable only this process's memory of recent keys decides,
        so citizens keep getting answers (once each) during an outage."""
        if key in self.recent_events:
            return False
        fresh = True
        if not self.outage.skip:
            try:
                [fresh] = await self.group.submit(Claim(key[:MAX_KEY]))
                self.outage.recovered()
            except DATABASE_ERRORS as exc:
                self.outage.failed(exc)
        if fresh:
            self.recent_events.add(key)
        return fresh

    async def release_inbound_event(self, key: str) -> None:
        """Undo `claim_inbound_event`: the event was not handled, so a redelivery must be."""
        self.recent_events.discard(key)
        if not self.outage.skip:
            try:
                await inbound.forget(self.sessions, key)
            except DATABASE_ERRORS as exc:
                self.outage.failed(exc)

    # --- question log ----------------------------------------------------------
    async def log_question(self, user: UserInfo, text: str, normalized: str, decision: str,
                           faq_id: str | None, score: float, alternatives: list[str],
                           streak: int | None = None) -> int:
        """Store a question; pass `text` and `normalized` from `bot.privacy.loggable` (redacted
        before normalising). Both are redacted once more here, as a safety net. `streak`, when
        given, is the user's new fallback streak, saved in the same transaction."""
        values = dict(channel=user.channel, user_key=user.key, ward=user.ward, text=redact(text)[:2000],
                      normalized=redact(normalized)[:2000], decision=decision, faq_id=faq_id,
                      score=float(score), alternatives=list(alternatives))
        [question_id] = await self.group.submit(LogRow(values, user.id, streak))
        return question_id

    async def set_outcome(self, question_id: int, user: UserInfo, outcome: str,
                          faq_id: str | None = None) -> bool:
        """Record what happened after the bot's reply; only the asker's own questions."""
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(QuestionLog)
                .where(QuestionLog.id == question_id, QuestionLog.user_key == user.key)
                .values(outcome=outcome, outcome_faq_id=faq_id, outcome_at=utcnow())
            )
            return result.rowcount > 0

    async def question_for_handoff(self, user: UserInfo, within: dt.timedelta,
                                   question_id: int | None = None) -> tuple[int, str] | None:
        """(id, text) of the question a citizen wants to send to the team: `question_id` when
        it is theirs and recent; otherwise their latest question if it is recent and the bot
        did not help (fallback, 👎, "Không phải"). None: ask them to type it."""
        conds = [QuestionLog.user_key == user.key, QuestionLog.created_at >= utcnow() - within]
        if question_id is not None:
            conds.append(QuestionLog.id == question_id)
        async with self.sessions() as s:
            row = (await s.execute(
                select(QuestionLog.id, QuestionLog.text, QuestionLog.decision, QuestionLog.outcome)
                .where(*conds).order_by(QuestionLog.id.desc()).limit(1)
            )).first()
        if row is None:
            return None
        unresolved = row.decision == "fallback" or row.outcome in ("unhelpful", "not_these")
        return (row.id, row.text) if question_id is not None or unresolved else None

    async def add_feedback(self, user: UserInfo, question_id: int | None, faq_id: str | None,
                           helpful: bool) -> None:
        async with self.sessions.begin() as s:
            if question_id is not None:
                owned = await s.scalar(select(QuestionLog.id).where(
                    QuestionLog.id == question_id, QuestionLog.user_key == user.key))
                question_id = owned
            s.add(Feedback(question_id=question_id, user_key=user.key, faq_id=faq_id, helpful=helpful))
            if question_id is not None:
                await s.execute(update(QuestionLog).where(QuestionLog.id == question_id).values(
                    outcome="helpful" if helpful else "unhelpful", outcome_at=utcnow()))

    async def purge(self, older_than: dt.timedelta) -> dict[str, int]:
        """Delete logs older than the retention period (questions, feedback, closed hand-offs)."""
        cutoff = utcnow() - older_than
        async with self.sessions.begin() as s:
            counts = {}
            counts["feedback"] = (await s.execute(delete(Feedback).where(Feedback.created_at < cutoff))).rowcount
            old_handoffs = select(Handoff.id).where(Handoff.state == "closed", Handoff.last_activity_at < cutoff)
            await s.execute(delete(HandoffMessage).where(HandoffMessage.handoff_id.in_(old_handoffs)))
            await s.execute(delete(TeamPost).where(TeamPost.handoff_id.in_(old_handoffs)))
            counts["handoffs"] = (await s.execute(
                delete(Handoff).where(Handoff.state == "closed", Handoff.last_activity_at < cutoff))).rowcount
            counts["questions"] = (await s.execute(
                delete(QuestionLog).where(QuestionLog.created_at < cutoff))).rowcount
            counts["audit"] = (await s.execute(delete(AuditLog).where(AuditLog.created_at < cutoff))).rowcount
            from bot.storage.models import InboundEvent

            # Duplicate-detection keys are only needed while a platform may still retry.
            await s.execute(delete(InboundEvent).where(InboundEvent.created_at < utcnow() - dt.timedelta(days=2)))
            return counts

    # --- subscriptions -----------------------------------------------------------
    async def get_subscription(self, user_id: int) -> Subscription | None:
        async with self.sessions() as s:
            return await s.scalar(select(Subscription).where(Subscription.user_id == user_id))

    async def save_subscription(self, user_id: int, *, ward: str | None = None, topics: list[str] | None = None,
                                active: bool | None = None) -> Subscription:
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Subscription).where(Subscription.user_id == user_id))
            if row is None:
                row = Subscription(user_id=user_id, topics=[], active=False)
                s.add(row)
            if ward is not None:
                row.ward = ward
            if topics is not None:
                row.topics = sorted(set(topics))
            if active is not None:
                row.active = active
            await s.flush()
            return row

    # --- hand-offs ---------------------------------------------------------------
    async def open_handoff(self, user: UserInfo, team_chat_id: str, question_id: int | None) -> HandoffInfo:
        async with self.sessions.begin() as s:
            row = Handoff(user_id=user.id, ward=user.ward, team_chat_id=team_chat_id, question_id=question_id,
                          state="open")
            s.add(row)
            await s.flush()
            if question_id is not None:
                await s.execute(update(QuestionLog).where(QuestionLog.id == question_id).values(
                    outcome="handoff", outcome_at=utcnow()))
            return _handoff_info(row)

    async def open_handoff_of(self, user: UserInfo) -> HandoffInfo | None:
        """The citizen's latest thread that is not closed, if any (one thread at a time)."""
        async with self.sessions() as s:
            row = await s.scalar(select(Handoff).where(Handoff.user_id == user.id, Handoff.state != "closed")
                                 .order_by(Handoff.id.desc()).limit(1))
            return _handoff_info(row) if row else None

    async def detach_handoff_from_team(self, handoff_id: int) -> None:
        """The team group cannot be reached: keep the thread for the dashboard only."""
        async with self.sessions.begin() as s:
            await s.execute(update(Handoff).where(Handoff.id == handoff_id).values(team_chat_id="", thread_id=None))

    async def get_handoff(self, handoff_id: int) -> HandoffInfo | None:
        async with self.sessions() as s:
            row = await s.get(Handoff, handoff_id)
            return _handoff_info(row) if row else None

    async def set_handoff_thread(self, handoff_id: int, thread_id: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(Handoff).where(Handoff.id == handoff_id).values(thread_id=thread_id))

    async def add_handoff_message(self, handoff_id: int, direction: str, text: str, *, author: str | None = None,
                                  team_chat_id: str | None = None, group_message_id: int | None = None,
                                  delivered: bool = False, lease: dt.timedelta | None = None) -> int:
        """Store a thread message; `lease` marks a team reply this process is about to deliver.
        A citizen's text is redacted once more here, as a safety net."""
        if direction == "citizen":
            text = redact(text)
        async with self.sessions.begin() as s:
            row = HandoffMessage(handoff_id=handoff_id, direction=direction, text=text[:4000], author=author,
                                 team_chat_id=team_chat_id, group_message_id=group_message_id,
                                 delivered=delivered, delivery_lease_until=utcnow() + lease if lease else None)
            s.add(row)
            await s.execute(update(Handoff).where(Handoff.id == handoff_id).values(last_activity_at=utcnow()))
            await s.flush()
            return row.id

    async def mark_delivered(self, message_id: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(HandoffMessage).where(HandoffMessage.id == message_id).values(delivered=True))

    async def mark_undeliverable(self, message_id: int, reason: str) -> None:
        """A team reply that can never reach the citizen: redelivery stops trying it."""
        async with self.sessions.begin() as s:
            await s.execute(update(HandoffMessage).where(HandoffMessage.id == message_id).values(
                delivery_error=reason[:300] or "undeliverable"))

    async def claim_undelivered_team_replies(self, lease: dt.timedelta) -> list[tuple[int, int, str]]:
        """(message id, handoff id, text) of team replies nobody is delivering now; claims them."""
        now = utcnow()
        claimed = []
        async with self.sessions.begin() as s:
            rows = (await s.execute(select(HandoffMessage.id, HandoffMessage.handoff_id, HandoffMessage.text).where(
                HandoffMessage.direction == "team", HandoffMessage.delivered.is_(False),
                HandoffMessage.delivery_error.is_(None),
                (HandoffMessage.delivery_lease_until.is_(None)) | (HandoffMessage.delivery_lease_until < now))
                .order_by(HandoffMessage.id).limit(200))).all()
            for message_id, handoff_id, text in rows:
                result = await s.execute(update(HandoffMessage).where(
                    HandoffMessage.id == message_id,
                    (HandoffMessage.delivery_lease_until.is_(None)) | (HandoffMessage.delivery_lease_until < now))
                    .values(delivery_lease_until=now + lease))
                if result.rowcount:
                    claimed.append((message_id, handoff_id, text))
        return claimed

    async def find_handoff_by_group_message(self, team_chat_id: str, message_id: int) -> HandoffInfo | None:
        """The thread a bot post in the team group belongs to (question, follow-up or reminder)."""
        async with self.sessions() as s:
            row = await s.scalar(
                select(Handoff).join(HandoffMessage, HandoffMessage.handoff_id == Handoff.id).where(
                    HandoffMessage.team_chat_id == team_chat_id, HandoffMessage.group_message_id == message_id)
            )
            if row is None:
                row = await s.scalar(select(Handoff).join(TeamPost, TeamPost.handoff_id == Handoff.id).where(
                    TeamPost.team_chat_id == team_chat_id, TeamPost.message_id == message_id))
            return _handoff_info(row) if row else None

    async def add_team_post(self, handoff_id: int, team_chat_id: str, message_id: int) -> None:
        async with self.sessions.begin() as s:
            s.add(TeamPost(handoff_id=handoff_id, team_chat_id=team_chat_id, message_id=message_id))

    async def first_group_message_id(self, handoff_id: int) -> int | None:
        """The bot's first post of the thread in the team group (what reminders quote)."""
        async with self.sessions() as s:
            return await s.scalar(select(HandoffMessage.group_message_id).where(
                HandoffMessage.handoff_id == handoff_id, HandoffMessage.group_message_id.is_not(None))
                .order_by(HandoffMessage.id).limit(1))

    async def find_handoff_by_thread(self, team_chat_id: str, thread_id: int) -> HandoffInfo | None:
        async with self.sessions() as s:
            row = await s.scalar(select(Handoff).where(
                Handoff.team_chat_id == team_chat_id, Handoff.thread_id == thread_id).order_by(Handoff.id.desc()))
            return _handoff_info(row) if row else None

    async def mark_handoff_answered(self, handoff: HandoffInfo, by: str) -> None:
        async with self.sessions.begin() as s:
            now = utcnow()
            row = await s.get(Handoff, handoff.id)
            if row is None:
                return
            if row.answered_at is None:
                row.answered_at = now
                row.answered_by = by
            if row.state == "open":
                row.state = "answered"
            row.last_activity_at = now
            if row.question_id is not None:
                await s.execute(update(QuestionLog).where(QuestionLog.id == row.question_id).values(
                    outcome="answered_by_person", outcome_at=now))

    async def close_handoff(self, handoff_id: int) -> HandoffInfo | None:
        """Close a thread; None when it does not exist or was already closed (so a second
        press of "Đã xử lý", or two processes, notify the citizen only once)."""
        async with self.sessions.begin() as s:
            result = await s.execute(update(Handoff).where(Handoff.id == handoff_id, Handoff.state != "closed")
                                     .values(state="closed", closed_at=utcnow()))
            if not result.rowcount:
                return None
            row = await s.get(Handoff, handoff_id)
            if row is None:
                return None
            await s.execute(update(User).where(User.id == row.user_id, User.state == Relaying(row.id).pack())
                            .values(state=""))
            return _handoff_info(row)

    async def handoffs_to_remind(self, older_than: dt.timedelta) -> list[HandoffInfo]:
        cutoff = utcnow() - older_than
        async with self.sessions.begin() as s:
            rows = (await s.scalars(select(Handoff).where(
                Handoff.state == "open", Handoff.answered_at.is_(None), Handoff.created_at < cutoff,
                (Handoff.reminded_at.is_(None)) | (Handoff.reminded_at < cutoff)))).all()
            for row in rows:
                row.reminded_at = utcnow()
            return [_handoff_info(r) for r in rows]

    async def idle_handoffs(self, idle_for: dt.timedelta) -> list[int]:
        cutoff = utcnow() - idle_for
        async with self.sessions() as s:
            return list((await s.scalars(select(Handoff.id).where(
                Handoff.state != "closed", Handoff.last_activity_at < cutoff))).all())

    async def first_citizen_text(self, handoff_id: int) -> str:
        async with self.sessions() as s:
            text = await s.scalar(select(HandoffMessage.text).where(
                HandoffMessage.handoff_id == handoff_id, HandoffMessage.direction == "citizen")
                .order_by(HandoffMessage.id).limit(1))
            return text or ""

    async def last_team_text(self, handoff_id: int) -> str:
        async with self.sessions() as s:
            text = await s.scalar(select(HandoffMessage.text).where(
                HandoffMessage.handoff_id == handoff_id, HandoffMessage.direction == "team")
                .order_by(HandoffMessage.id.desc()).limit(1))
            return text or ""

    async def add_draft(self, actor: str, source: str, **fields: Any) -> int:
        """A knowledge-base draft, audited (bot/storage/drafts.py); its id."""
        return await drafts.add_draft(self.sessions, actor, source, **fields)

    # --- staff and audit ---------------------------------------------------------
    async def staff_role(self, channel: str, platform_id: str) -> str | None:
        async with self.sessions() as s:
            return await s.scalar(select(Staff.role).where(
                Staff.channel == channel, Staff.platform_id == platform_id, Staff.active.is_(True)))

    async def set_staff(self, channel: str, platform_id: str, role: str, actor: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Staff).where(Staff.channel == channel, Staff.platform_id == platform_id))
            if row is None:
                s.add(Staff(channel=channel, platform_id=platform_id, role=role, active=True))
            else:
                row.role, row.active = role, True
            s.add(AuditLog(actor=actor, action="staff.set", target=f"{channel}:{platform_id}", detail={"role": role}))

    async def remove_staff(self, channel: str, platform_id: str, actor: str) -> bool:
        async with self.sessions.begin() as s:
            result = await s.execute(update(Staff).where(
                Staff.channel == channel, Staff.platform_id == platform_id).values(active=False))
            s.add(AuditLog(actor=actor, action="staff.remove", target=f"{channel}:{platform_id}", detail={}))
            return result.rowcount > 0

    async def ensure_admins(self, admins: list[tuple[str, str]]) -> None:
        for channel, platform_id in admins:
            if await self.staff_role(channel, platform_id) != "admin":
                await self.set_staff(channel, platform_id, "admin", actor="BOT_ADMINS")

    async def audit(self, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
        async with self.sessions.begin() as s:
            s.add(AuditLog(actor=actor, action=action, target=target, detail=detail))

    # --- figures -------------------------------------------------------------------
    async def counts_since(self, since: dt.datetime) -> dict[str, int]:
        async with self.sessions() as s:
            rows = await s.execute(select(QuestionLog.decision, func.count()).where(
                QuestionLog.created_at >= since).group_by(QuestionLog.decision))
            counts = {"answer": 0, "suggest": 0, "fallback": 0}
            counts.update({decision: n for decision, n in rows})
            counts["questions"] = sum(counts[k] for k in ("answer", "suggest", "fallback"))
            counts["handoffs_open"] = await s.scalar(
                select(func.count()).select_from(Handoff).where(Handoff.state == "open")) or 0
            return counts

    async def recent_unanswered(self, limit: int = 200) -> list[str]:
        async with self.sessions() as s:
            rows = await s.scalars(select(QuestionLog.normalized).where(
                (QuestionLog.decision == "fallback") | (QuestionLog.outcome == "unhelpful"))
                .order_by(QuestionLog.id.desc()).limit(limit))
            return list(rows)


def _wording(text: str) -> str:
    return " ".join(text.lower().split())


async def _forget_wordings(s, user: User) -> None:
    """Remove a citizen's own wordings from knowledge drafts and audit details.

    Their questions reach drafts (a hand-off turned into a draft, a group of unanswered
    questions linked to an entry or drafted) and the audit log (the wordings linked, a sample
    of a triaged group). A wording another citizen also asked, in the same words, is not
    theirs alone and stays: it is how people ask, not who asked."""
    own = list(await s.scalars(select(QuestionLog.text).where(QuestionLog.user_key == user.user_key)))
    normalized = list(await s.scalars(select(QuestionLog.normalized).where(QuestionLog.user_key == user.user_key)))
    handoffs = list(await s.scalars(select(Handoff.id).where(Handoff.user_id == user.id)))
    if handoffs:
        said = await s.scalars(select(HandoffMessage.text).where(HandoffMessage.handoff_id.in_(handoffs),
                                                                 HandoffMessage.direction == "citizen"))
        own += [variant for text in said for variant in (text, redact(text))]
    candidates = [t for t in dict.fromkeys(own + normalized) if t and t.strip()]
    if not candidates and not handoffs:
        return
    shared: set[str] = set()
    for chunk in range(0, len(candidates), 500):
        batch = candidates[chunk:chunk + 500]
        shared |= {_wording(t) for t in await s.scalars(select(QuestionLog.text).where(
            QuestionLog.user_key != user.user_key, QuestionLog.text.in_(batch)))}
        shared |= {_wording(t) for t in await s.scalars(select(QuestionLog.normalized).where(
            QuestionLog.user_key != user.user_key, QuestionLog.normalized.in_(batch)))}
    theirs = {_wording(t) for t in candidates} - shared
    if not theirs:
        return
    for draft in await s.scalars(select(FaqDraft)):
        kept = [q for q in draft.questions or [] if _wording(q) not in theirs]
        question = draft.question if _wording(draft.question or "") not in theirs else (kept[0] if kept else "")
        if kept != list(draft.questions or []) or question != draft.question:
            draft.questions, draft.question = kept, question
    cut = {w[:100] for w in theirs}  # a triaged group's sample is its first form, cut to 100 characters
    for entry in await s.scalars(select(AuditLog).where(AuditLog.action.like("unanswered.%"))):
        detail = dict(entry.detail or {})
        if isinstance(detail.get("variants"), list):
            detail["variants"] = [v for v in detail["variants"] if not isinstance(v, str) or _wording(v) not in theirs]
        if isinstance(detail.get("sample"), str) and _wording(detail["sample"]) in theirs | cut:
            detail["sample"] = "[đã xóa theo yêu cầu của người dân]"
        if detail != entry.detail:
            entry.detail = detail
