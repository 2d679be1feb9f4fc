"""The question log (`question_log`) and citizens' feedback on answers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.privacy import redact
from bot.storage.group_commit import GroupCommit, LogRow
from bot.storage.models import Feedback, Handoff, QuestionLog, utcnow
from bot.storage.users import UserInfo


class Questions:
    def __init__(self, sessions: async_sessionmaker, group: GroupCommit):
        self.sessions = sessions
        self.group = group

    async def log(self, user: UserInfo, text: str, normalized: str, decision: str,
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

    async def for_handoff(self, user: UserInfo, within: dt.timedelta,
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

    async def counts_since(self, since: dt.datetime) -> dict[str, int]:
        """Questions per decision since `since`, their total, and the open hand-offs (/thongke)."""
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
