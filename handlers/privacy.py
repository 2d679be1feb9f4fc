"""/quyenriengtu (what is stored) and /xoadulieu (delete my data, after confirmation)."""

from __future__ import annotations

from bot.contracts import texts
from bot.contracts.messages import Button, Reply
from bot.contracts.payloads import DeleteData
from handlers.router import FeatureContext, Routes, Turn


class PrivacyFeature:
    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx

    def routes(self) -> Routes:
        return Routes(
            commands={"quyenriengtu": self.explain, "xoadulieu": self.confirm_delete},
            actions={DeleteData: self.on_answer},
            malformed={"del": self.cancelled},
        )

    async def explain(self, turn: Turn) -> list[Reply]:
        return [Reply(texts.PRIVACY.format(days=self.ctx.config.retention_days), kind="notice")]

    async def confirm_delete(self, turn: Turn) -> list[Reply]:
        rows = [[Button(texts.DELETE_YES, DeleteData("yes").pack()), Button(texts.DELETE_NO, DeleteData("no").pack())]]
        return [Reply(texts.DELETE_CONFIRM, rows, kind="notice")]

    async def cancelled(self, turn: Turn) -> list[Reply]:
        return [Reply(texts.DELETE_CANCELLED, kind="notice")]

    async def on_answer(self, turn: Turn, pressed: DeleteData) -> list[Reply]:
        store = self.ctx.store
        if pressed.answer != "yes":
            return await self.cancelled(turn)
        if turn.user is None:  # the database is unreachable
            return [Reply(texts.NO_STORAGE, kind="notice")]
        await store.users.delete_data(turn.user.id)
        await store.audit_trail.record(f"user:{turn.user.key}", "user.delete_data")
        return [Reply(texts.DELETED, kind="notice")]
