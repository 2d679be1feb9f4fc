"""/dangky (choose ward, then topics), /huydangky and the word "dừng"."""

from __future__ import annotations

from bot.contracts import texts
from bot.contracts.menus import TOPICS
from bot.contracts.messages import Button, Reply
from bot.contracts.payloads import SubscribeDone, SubscribeTopic, SubscribeWard, Unsubscribe
from bot.storage.store import UserInfo
from handlers.router import FeatureContext, Routes, Turn


class SubscriptionFeature:
    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx

    def routes(self) -> Routes:
        return Routes(
            commands={"dangky": self.start, "huydangky": self.unsubscribe},
            actions={SubscribeWard: self.on_ward, SubscribeTopic: self.on_topic, SubscribeDone: self.on_done,
                     Unsubscribe: lambda turn, _: self.unsubscribe(turn)},
            malformed={"sub": self.on_malformed, "unsub": self.unsubscribe},
        )

    async def start(self, turn: Turn) -> list[Reply]:
        if turn.user is None:  # the database is unreachable
            return [Reply(texts.NO_STORAGE, kind="notice")]
        wards = self.ctx.config.wards
        if wards:
            rows = [[Button(name, SubscribeWard(slug).pack())] for slug, name in wards.items()]
            return [Reply(texts.SUB_CHOOSE_WARD, rows, kind="menu")]
        await self.ctx.store.subscriptions.save(turn.user.id, topics=[])
        return [await self._topics_reply(turn.user)]

    async def _topics_reply(self, user: UserInfo) -> Reply:
        sub = await self.ctx.store.subscriptions.get(user.id)
        chosen = set(sub.topics if sub else [])
        rows = [[Button(("✅ " if topic in chosen else "") + label, SubscribeTopic(topic).pack())]
                for topic, label in TOPICS.items()]
        rows.append([Button(texts.SUB_DONE_BUTTON, SubscribeDone().pack())])
        names = ", ".join(TOPICS[t] for t in TOPICS if t in chosen) or texts.SUB_ALL_TOPICS
        return Reply(texts.SUB_CHOOSE_TOPICS.format(chosen=names), rows, kind="menu")

    async def on_malformed(self, turn: Turn) -> list[Reply]:
        if turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, kind="notice")]

    async def on_ward(self, turn: Turn, pressed: SubscribeWard) -> list[Reply]:
        store = self.ctx.store
        if turn.user is None or pressed.ward not in self.ctx.config.wards:
            return await self.on_malformed(turn)
        await store.users.update(turn.user.id, ward=pressed.ward)
        await store.subscriptions.save(turn.user.id, ward=pressed.ward, topics=[])
        return [await self._topics_reply(turn.user)]

    async def on_topic(self, turn: Turn, pressed: SubscribeTopic) -> list[Reply]:
        store = self.ctx.store
        if turn.user is None or pressed.topic not in TOPICS:
            return await self.on_malformed(turn)
        sub = await store.subscriptions.get(turn.user.id)
        topics = set(sub.topics if sub else [])
        topics ^= {pressed.topic}
        await store.subscriptions.save(turn.user.id, topics=sorted(topics))
        return [await self._topics_reply(turn.user)]

    async def on_done(self, turn: Turn, _pressed: SubscribeDone) -> list[Reply]:
        if turn.user is None:
            return await self.on_malformed(turn)
        sub = await self.ctx.store.subscriptions.save(turn.user.id, active=True)
        ward = self.ctx.config.wards.get(sub.ward or "")
        topics = ", ".join(TOPICS[t] for t in sub.topics if t in TOPICS) or texts.SUB_ALL_TOPICS
        return [Reply(texts.SUB_CONFIRMED.format(ward=f" của {ward}" if ward else "", topics=topics), kind="notice")]

    async def unsubscribe(self, turn: Turn) -> list[Reply]:
        store = self.ctx.store
        if turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        sub = await store.subscriptions.get(turn.user.id)
        if sub is None or not sub.active:
            return [Reply(texts.NOT_SUBSCRIBED, kind="notice")]
        await store.subscriptions.save(turn.user.id, active=False)
        return [Reply(texts.UNSUBSCRIBED, kind="notice")]
