"""Web-chat channel: replies produced outside a request go to the outbox the chat page polls.

Replies to a message the citizen just sent are returned in the HTTP response instead
(bot/dashboard/webchat.py); this channel only carries what arrives later: the team's
answer to a hand-off, a hand-off closing notice, campaign announcements (`deliver`).
"""

from __future__ import annotations

from bot.channels.base import Channel, ChannelContext, Outgoing, Pace, as_is
from bot.channels.choices import Rendered
from bot.contracts.delivery import RecipientGone
from bot.contracts.messages import Reply
from bot.settings import Settings
from bot.storage.store import Store
from bot.storage.web_outbox import CHANNEL, WebOutboxQueries

NAME = CHANNEL


class WebChannel(Channel):
    """No platform to connect, no rate to keep: the chat page comes to us."""

    name = NAME
    always_on = True

    def __init__(self, store: Store):
        self.outbox = WebOutboxQueries(store)

    @classmethod
    def create(cls, settings: Settings, context: ChannelContext) -> WebChannel:
        return cls(context.store)

    def render(self, reply: Reply, start: int = 1) -> Rendered:
        return as_is(reply)  # the chat page shows buttons itself

    async def send(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None:
        """Queue the reply for the web user `chat_id` (the id in their cookie); None when they
        deleted their data. Nothing to retry: the outbox is our own database."""
        return await self.outbox.put(chat_id, reply.as_dict())

    async def transmit(self, out: Outgoing, pace: Pace) -> int | None:
        """What the campaign engine delivers: a campaign waits in the outbox like a team reply."""
        await pace()  # no rate: only the campaign engine's before_send hook
        message_id = await self.outbox.put(out.chat_id, out.reply.as_dict())
        if message_id is None:
            raise RecipientGone("web user deleted their data")
        return message_id
