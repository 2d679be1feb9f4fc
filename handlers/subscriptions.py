"""/dangky (choose ward, then topics), /huydangky and the word "dừng"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers import texts
from handlers.menus import TOPICS
from handlers.messages import Button, Reply

if TYPE_CHECKING:
    from handlers.conversation import Conversation, Turn


class SubscriptionFeature:
    def __init__(self, conversation: Conversation):
        self.conv = conversation

    async def start(self, turn: Turn) -> list[Reply]:
        store = self.conv.store
        if store is None or turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        wards = self.conv.config.wards
        if wards:
            rows = [[Button(name, f"sub:w:{slug}")] for slug, name in wards.items()]
            return [Reply(texts.SUB_CHOOSE_WARD, rows, kind="menu")]
        await store.save_subscription(turn.user.id, topics=[])
        return [await self._topics_reply(turn)]

    async def _topics_reply(self, turn: Turn) -> Reply:
        assert self.conv.store is not None and turn.user is not None
        sub = await self.conv.store.get_subscription(turn.user.id)
        chosen = set(sub.topics if sub else [])
        rows = [[Button(("✅ " if topic in chosen else "") + label, f"sub:t:{topic}")]
                for topic, label in TOPICS.items()]
        rows.append([Button(texts.SUB_DONE_BUTTON, "sub:done")])
        names = ", ".join(TOPICS[t] for t in TOPICS if t in chosen) or texts.SUB_ALL_TOPICS
        return Reply(texts.SUB_CHOOSE_TOPICS.format(chosen=names), rows, kind="menu")

    async def on_action(self, turn: Turn, name: str, arg: str) -> list[Reply]:
        store = self.conv.store
        if store is None or turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        if name == "unsub":
            return await self.unsubscribe(turn)
        kind, _, value = arg.partition(":")
        if kind == "w" and value in self.conv.config.wards:
            await store.update_user(turn.user.id, ward=value)
            await store.save_subscription(turn.user.id, ward=value, topics=[])
            return [await self._topics_reply(turn)]
        if kind == "t" and value in TOPICS:
            sub = await store.get_subscription(turn.user.id)
            topics = set(sub.topics if sub else [])
            topics ^= {value}
            await store.save_subscription(turn.user.id, topics=sorted(topics))
            return [await self._topics_reply(turn)]
        if kind == "done":
            sub = await store.save_subscription(turn.user.id, active=True)
            ward = self.conv.config.wards.get(sub.ward or "")
            topics = ", ".join(TOPICS[t] for t in sub.topics if t in TOPICS) or texts.SUB_ALL_TOPICS
            return [Reply(texts.SUB_CONFIRMED.format(ward=f" của {ward}" if ward else "", topics=topics),
                          kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, kind="notice")]

    async def unsubscribe(self, turn: Turn) -> list[Reply]:
        store = self.conv.store
        if store is None or turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        sub = await store.get_subscription(turn.user.id)
        if sub is None or not sub.active:
            return [Reply(texts.NOT_SUBSCRIBED, kind="notice")]
        await store.save_subscription(turn.user.id, active=False)
        return [Reply(texts.UNSUBSCRIBED, kind="notice")]
