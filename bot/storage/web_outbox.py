"""Outbox of the web chat: replies that reach a web user outside a request (team replies).

A web user has no connection we can push to, so messages wait here until the chat page
polls for them. Rows belong to the user row (deleted with it by /xoadulieu) and are
removed once handed to the page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from bot.storage.models import User, WebOutbox
from bot.storage.store import Store

CHANNEL = "web"
MAX_BATCH = 50


class WebOutboxQueries:
    def __init__(self, store: Store):
        self.sessions = store.sessions

    async def put(self, platform_id: str, payload: dict[str, Any]) -> int | None:
        """Queue one reply for the web user; None when the user no longer exists."""
        async with self.sessions.begin() as s:
            user_id = await s.scalar(select(User.id).where(User.channel == CHANNEL, User.platform_id == platform_id))
            if user_id is None:
                return None
            row = WebOutbox(user_id=user_id, payload=payload)
            s.add(row)
            await s.flush()
            return row.id

    async def take(self, platform_id: str) -> list[dict[str, Any]]:
        """Return and remove the queued replies of the web user, oldest first."""
        async with self.sessions.begin() as s:
            user_id = await s.scalar(select(User.id).where(User.channel == CHANNEL, User.platform_id == platform_id))
            if user_id is None:
                return []
            rows = (await s.execute(select(WebOutbox.id, WebOutbox.payload).where(WebOutbox.user_id == user_id)
                                    .order_by(WebOutbox.id).limit(MAX_BATCH))).all()
            if rows:
                await s.execute(delete(WebOutbox).where(WebOutbox.id.in_([r[0] for r in rows])))
            return [dict(r[1]) for r in rows]
