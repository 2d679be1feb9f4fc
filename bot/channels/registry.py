"""Routes outgoing messages to the channel they belong to (implements handlers' Messenger),
and holds each channel's live health (bot/channels/health.py)."""

from __future__ import annotations

from bot.channels.base import Channel
from bot.channels.health import ChannelHealth, short_reason
from bot.contracts.delivery import ChannelUnavailable
from bot.contracts.messages import Button, Reply

__all__ = ["ChannelHealth", "Channels", "short_reason"]


class Channels:
    def __init__(self) -> None:
        self.adapters: dict[str, Channel] = {}
        self.health = ChannelHealth()

    def register(self, channel: Channel) -> None:
        """Route messages of `channel.name` to it; its sends report to this registry's health."""
        channel.report_to(self.health)
        self.adapters[channel.name] = channel

    async def send(self, channel: str, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None:
        adapter = self.adapters.get(channel)
        if adapter is None:
            raise ChannelUnavailable(channel)
        return await adapter.send(chat_id, reply, thread_id=thread_id, reply_to=reply_to)

    async def create_topic(self, channel: str, chat_id: str, name: str) -> int | None:
        adapter = self.adapters.get(channel)
        return await adapter.create_topic(chat_id, name) if adapter else None

    async def edit_buttons(self, channel: str, chat_id: str, message_id: int, buttons: list[list[Button]]) -> None:
        """Replace a sent message's buttons where the channel can (Telegram); others ignore it."""
        adapter = self.adapters.get(channel)
        if adapter is not None:
            await adapter.edit_buttons(chat_id, message_id, buttons)
