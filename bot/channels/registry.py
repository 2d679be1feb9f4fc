"""Routes outgoing messages to the adapter of their channel (implements handlers' Messenger)."""

from __future__ import annotations

from typing import Protocol

from handlers.messages import Reply


class ChannelAdapter(Protocol):
    name: str

    async def send(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None: ...

    async def create_topic(self, chat_id: str, name: str) -> int | None: ...


class ChannelUnavailable(Exception):
    """No adapter is running for the channel a message must go to."""


class Channels:
    def __init__(self) -> None:
        self.adapters: dict[str, ChannelAdapter] = {}

    def register(self, adapter: ChannelAdapter) -> None:
        from bot.ops.metrics import instrument_deliver

        if hasattr(adapter, "deliver"):  # every channel reports sends and errors the same way
            adapter.deliver = instrument_deliver(adapter.name, adapter.deliver)  # type: ignore[attr-defined]
        self.adapters[adapter.name] = adapter

    async def send(self, channel: str, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None:
        adapter = self.adapters.get(channel)
        if adapter is None:
            raise ChannelUnavailable(channel)
        return await adapter.send(chat_id, reply, thread_id=thread_id, reply_to=reply_to)

    async def create_topic(self, channel: str, chat_id: str, name: str) -> int | None:
        adapter = self.adapters.get(channel)
        return await adapter.create_topic(chat_id, name) if adapter else None

    async def edit_buttons(self, channel: str, chat_id: str, message_id: int, buttons) -> None:
        """Replace a sent message's buttons where the channel can (Telegram); others ignore it."""
        edit = getattr(self.adapters.get(channel), "edit_buttons", None)
        if edit is not None:
            await edit(chat_id, message_id, buttons)
