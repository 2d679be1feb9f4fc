"""Hand-off threads: a citizen's question handed to a community team, its messages (both
ways), the bot's posts in the team group, reminders and closing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.contracts.states import Relaying
from bot.privacy import redact
from bot.storage.models import Handoff, HandoffMessage, QuestionLog, TeamPost, User, utcnow
from bot.storage.users import UserInfo


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


def handoff_info(row: Handoff) -> HandoffInfo:
    return HandoffInfo(row.id, row.user_id, row.state, row.team_chat_id, row.thread_id, row.ward,
                       row.question_id, row.created_at)


class Handoffs:
    def __init__(self, sessions: async_sessionmaker):
        self.sessions = sessions

    async def open(self, user: UserInfo, team_chat_id: str, question_id: int | None) -> HandoffInfo:
        async with self.sessions.begin() as s:
            row = Handoff(user_id=user.id, ward=user.ward, team_chat_id=team_chat_id, question_id=question_id,
                          state="open")
            s.add(row)
            await s.flush()
            if question_id is not None:
                await s.execute(update(QuestionLog).where(QuestionLog.id == question_id).values(
                    outcome="handoff", outcome_at=utcnow()))
            return handoff_info(row)

    async def latest_open_of(self, user: UserInfo) -> HandoffInfo | None:
        """The citizen's latest thread that is not closed, if any (one thread at a time)."""
        async with self.sessions() as s:
            row = await s.scalar(select(Handoff).where(Handoff.user_id == user.id, Handoff.state != "closed")
                                 .order_by(Handoff.id.desc()).limit(1))
            return handoff_info(row) if row else None

    async def detach_from_team(self, handoff_id: int) -> None:
        """The team group cannot be reached: keep the thread for the dashboard only."""
        async with self.sessions.begin() as s:
            await s.execute(update(Handoff).where(Handoff.id == handoff_id).values(team_chat_id="", thread_id=None))

    async def get(self, handoff_id: int) -> HandoffInfo | None:
        async with self.sessions() as s:
            row = await s.get(Handoff, handoff_id)
            return handoff_info(row) if row else None

    async def set_thread(self, handoff_id: int, thread_id: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(Handoff).where(Handoff.id == handoff_id).values(thread_id=thread_id))

    async def add_message(self, handoff_id: int, direction: str, text: str, *, author: str | None = None,
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

    async def find_by_group_message(self, team_chat_id: str, message_id: int) -> HandoffInfo | None:
        """The thread a bot post in the team group belongs to (question, follow-up or reminder)."""
        async with self.sessions() as s:
            row = await s.scalar(
                select(Handoff).join(HandoffMessage, HandoffMessage.handoff_id == Handoff.id).where(
                    HandoffMessage.team_chat_id == team_chat_id, HandoffMessage.group_message_id == message_id)
            )
            if row is None:
                row = await s.scalar(select(Handoff).join(TeamPost, TeamPost.handoff_id == Handoff.id).where(
                    TeamPost.team_chat_id == team_chat_id, TeamPost.message_id == message_id))
            return handoff_info(row) if row else None

    async def add_team_post(self, handoff_id: int, team_chat_id: str, message_id: int) -> None:
        async with self.sessions.begin() as s:
            s.add(TeamPost(handoff_id=handoff_id, team_chat_id=team_chat_id, message_id=message_id))

    async def first_group_message_id(self, handoff_id: int) -> int | None:
        """The bot's first post of the thread in the team group (what reminders quote)."""
        async with self.sessions() as s:
            return await s.scalar(select(HandoffMessage.group_message_id).where(
                HandoffMessage.handoff_id == handoff_id, HandoffMessage.group_message_id.is_not(None))
                .order_by(HandoffMessage.id).limit(1))

    async def find_by_thread(self, team_chat_id: str, thread_id: int) -> HandoffInfo | None:
        async with self.sessions() as s:
            row = await s.scalar(select(Handoff).where(
                Handoff.team_chat_id == team_chat_id, Handoff.thread_id == thread_id).order_by(Handoff.id.desc()))
            return handoff_info(row) if row else None

    async def mark_answered(self, handoff: HandoffInfo, by: str) -> None:
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

    async def close(self, handoff_id: int) -> HandoffInfo | None:
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
            return handoff_info(row)

    async def to_remind(self, older_than: dt.timedelta) -> list[HandoffInfo]:
        cutoff = utcnow() - older_than
        async with self.sessions.begin() as s:
            rows = (await s.scalars(select(Handoff).where(
                Handoff.state == "open", Handoff.answered_at.is_(None), Handoff.created_at < cutoff,
                (Handoff.reminded_at.is_(None)) | (Handoff.reminded_at < cutoff)))).all()
            for row in rows:
                row.reminded_at = utcnow()
            return [handoff_info(r) for r in rows]

    async def idle_ids(self, idle_for: dt.timedelta) -> list[int]:
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
