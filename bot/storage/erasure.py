"""A citizen's /xoadulieu: everything stored about them, and their wordings in staff work."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.privacy import redact
from bot.storage.models import (
    AuditLog,
    FaqDraft,
    Feedback,
    Handoff,
    HandoffMessage,
    QuestionLog,
    Subscription,
    TeamPost,
    User,
)


async def delete_user_data(sessions: async_sessionmaker, user_id: int) -> None:
    """Questions, feedback, hand-offs, subscription and the user row, and their wordings where
    staff work copied them (knowledge drafts, audit details), in one transaction."""
    async with sessions.begin() as s:
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
