"""Web-chat adapter: replies produced outside a request go to the outbox the chat page polls.

Replies to a message the citizen just sent are returned in the HTTP response instead
(bot/dashboard/webchat.py); this adapter only carries what arrives later: the team's
answer to a hand-off, a hand-off closing notice, campaign announcements (`deliver`).
"""

from __future__ import annotations

from bot.channels.errors import RecipientGone
from bot.storage.store import Store
from bot.storage.web_outbox import CHANNEL, WebOutboxQueries
from handlers.messages import Reply

NAME = CHANNEL


class WebChannel:
    name = NAME

    def __init__(self, store: Store):
        self.outbox = WebOutboxQueries(store)

    async def start(self) -> None:
        """Nothing to connect: the chat page comes to us."""

    async def stop(self) -> None:
        """Nothing to disconnect."""

    async def send(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None:
        """Queue the reply for the web user `chat_id` (the id in their cookie)."""
        return await self.outbox.put(chat_id, reply.as_dict())

    async def deliver(self, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                      reply_to: int | None = None, broadcast: bool = False) -> int | None:
        """What the campaign engine calls: a campaign waits in the outbox like a team reply."""
        message_id = await self.outbox.put(chat_id, reply.as_dict())
        if message_id is None:
            raise RecipientGone("web user deleted their data")
        return message_id

    async def create_topic(self, chat_id: str, name: str) -> int | None:
        return None  # web users never host team threads
