"""Creating a knowledge-base draft: the one write every source of drafts goes through (the
team group's "Tạo FAQ nháp", the dashboard's hand-off, cluster and manual drafts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import AuditLog, FaqDraft

DRAFT_FIELDS = ("kind", "state", "entry_id", "category", "title", "question", "answer", "questions", "keywords",
                "links", "related", "wards", "entry_source", "ward")


async def add_draft(sessions: async_sessionmaker, actor: str, source: str, **fields: Any) -> int:
    """Store a draft and its audit record in one transaction; the new draft's id.

    `question` defaults to the first of `questions` (older screens list that column)."""
    unknown = set(fields) - set(DRAFT_FIELDS) - {"handoff_id"}
    if unknown:
        raise ValueError(f"unknown draft fields {unknown}")
    fields.setdefault("question", (fields.get("questions") or [""])[0])
    fields.setdefault("answer", "")
    async with sessions.begin() as s:
        row = FaqDraft(source=source, created_by=actor, updated_by=actor, **fields)
        s.add(row)
        await s.flush()
        detail = {"source": source, "kind": row.kind, "entry_id": row.entry_id}
        if row.handoff_id is not None:
            detail["handoff_id"] = row.handoff_id
        s.add(AuditLog(actor=actor, action="kb.draft.create", target=str(row.id), detail=detail))
        return row.id


class Drafts:
    """The repository face of `add_draft`, for `Store.drafts`."""

    def __init__(self, sessions: async_sessionmaker):
        self.sessions = sessions

    async def add(self, actor: str, source: str, **fields: Any) -> int:
        return await add_draft(self.sessions, actor, source, **fields)
