"""/quyenriengtu (what is stored) and /xoadulieu (delete my data, after confirmation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers import texts
from handlers.messages import Button, Reply

if TYPE_CHECKING:
    from handlers.conversation import Conversation, Turn


class PrivacyFeature:
    def __init__(self, conversation: Conversation):
        self.conv = conversation

    async def explain(self, turn: Turn) -> list[Reply]:
        return [Reply(texts.PRIVACY.format(days=self.conv.config.retention_days), kind="notice")]

    async def confirm_delete(self, turn: Turn) -> list[Reply]:
        rows = [[Button(texts.DELETE_YES, "del:yes"), Button(texts.DELETE_NO, "del:no")]]
        return [Reply(texts.DELETE_CONFIRM, rows, kind="notice")]

    async def on_action(self, turn: Turn, arg: str) -> list[Reply]:
        store = self.conv.store
        if arg != "yes":
            return [Reply(texts.DELETE_CANCELLED, kind="notice")]
        if store is None or turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        await store.delete_user_data(turn.user.id)
        await store.audit(f"user:{turn.user.key}", "user.delete_data")
        return [Reply(texts.DELETED, kind="notice")]
