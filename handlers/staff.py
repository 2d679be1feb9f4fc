"""Staff commands in chat: /thongke, /chuatraloi, /staff add|remove (admins)."""

from __future__ import annotations

import datetime as dt

from rapidfuzz import fuzz

from bot.contracts import texts
from bot.contracts.messages import Reply
from bot.localtime import VN_TZ  # "today" for staff is the Vietnamese day
from handlers.router import FeatureContext, Routes, Turn

CLUSTER_SIMILARITY = 80


def cluster(questions: list[str], threshold: float = CLUSTER_SIMILARITY) -> list[tuple[str, int]]:
    """Group similar normalised questions; (representative, count), biggest first."""
    groups: list[list[str]] = []
    for q in questions:
        for group in groups:
            if fuzz.token_set_ratio(q, group[0]) >= threshold:
                group.append(q)
                break
        else:
            groups.append([q])
    return sorted(((g[0], len(g)) for g in groups), key=lambda p: -p[1])


class StaffFeature:
    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx

    def routes(self) -> Routes:
        return Routes(commands={"thongke": self.stats, "chuatraloi": self.unanswered, "staff": self.manage})

    async def _role(self, turn: Turn) -> str | None:
        return await self.ctx.store.staff.role(turn.msg.channel, turn.msg.user_id)

    async def stats(self, turn: Turn) -> list[Reply]:
        if await self._role(turn) is None:
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        store = self.ctx.store
        now = dt.datetime.now(VN_TZ)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)  # midnight in Vietnam
        day = await store.questions.counts_since(today.astimezone(dt.UTC))
        week = await store.questions.counts_since(now - dt.timedelta(days=7))
        for counts in (day, week):
            counts.setdefault("smalltalk", 0)  # greetings, thanks...: not questions, counted apart
        return [Reply(texts.STATS.format(d=day, w=week), kind="notice")]

    async def unanswered(self, turn: Turn) -> list[Reply]:
        if await self._role(turn) is None:
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        groups = cluster(await self.ctx.store.questions.recent_unanswered())
        if not groups:
            return [Reply(texts.UNANSWERED_NONE, kind="notice")]
        lines = [texts.UNANSWERED_HEADER] + [f"{i}. ({n}×) {q[:120]}" for i, (q, n) in enumerate(groups[:15], 1)]
        return [Reply("\n".join(lines), kind="notice")]

    async def manage(self, turn: Turn) -> list[Reply]:
        if await self._role(turn) != "admin":
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        store = self.ctx.store
        parts = (turn.msg.text or "").split()[1:]
        if len(parts) < 2 or parts[0] not in ("add", "remove") or ":" not in parts[1]:
            return [Reply(texts.STAFF_USAGE, kind="notice")]
        channel, _, ident = parts[1].partition(":")
        actor = f"{turn.msg.channel}:{turn.msg.user_id}"
        if parts[0] == "add":
            role = parts[2] if len(parts) > 2 else "staff"
            try:
                await store.staff.set(channel, ident, role, actor)
            except ValueError:
                return [Reply(texts.STAFF_USAGE, kind="notice")]
        else:
            await store.staff.remove(channel, ident, actor)
        return [Reply(texts.STAFF_DONE.format(who=parts[1]), kind="notice")]
