"""The boundary types every channel adapter translates to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.privacy import storable

MAX_ACTION_BYTES = 64  # Telegram's callback_data limit; the tightest of our channels
MAX_ACTION_NUMBER = 2**31 - 1  # ids in our buttons are database keys; anything larger is forged


@dataclass(frozen=True)
class Button:
    label: str
    action: str  # opaque payload handed back as IncomingMessage.action

    def __post_init__(self) -> None:
        if len(self.action.encode("utf-8")) > MAX_ACTION_BYTES:
            raise ValueError(f"button action longer than {MAX_ACTION_BYTES} bytes: {self.action!r}")


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Quiz:
    """A one-question quiz (Telegram quiz poll; numbered text where a channel has no polls)."""

    question: str
    options: list[str]
    correct: int
    explanation: str = ""


@dataclass
class Reply:
    """One message to send back. Text is plain: adapters escape it for their markup."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    kind: str = "text"  # answer, suggest, fallback, menu, notice ... (for adapters and logs)
    image_url: str | None = None  # sent before the text where the channel supports images
    quiz: Quiz | None = None  # sent after the text

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "text": self.text,
            "buttons": [[{"label": b.label, "action": b.action} for b in row] for row in self.buttons],
            "links": [{"label": link.label, "url": link.url} for link in self.links],
        }


@dataclass(frozen=True)
class IncomingMessage:
    """What someone sent: text, a pressed button (action), or something else (sticker...).

    Citizens write in private chats. Community-team members write in their team group
    (`chat_type == "group"`), replying to the bot's hand-off posts.
    """

    channel: str
    user_id: str
    text: str | None = None
    action: str | None = None
    ward: str | None = None
    other: str | None = None  # kind of non-text content, e.g. "sticker", "photo"
    chat_id: str | None = None  # defaults to user_id (private chat)
    chat_type: str = "private"
    reply_to_message_id: int | None = None
    reply_to_bot: bool = False  # the message replies to one of the bot's own messages
    thread_id: int | None = None
    author: str | None = None  # how to name a team member in records, e.g. "Lan (telegram:42)"
    message_id: int | None = None  # for a pressed button: the message carrying it
    # The platform's id of this event when the conversation is to claim it (idempotency)
    # in the same transaction as recording the sender (bot/storage/store.py `arrive`).
    event_key: str | None = None

    def __post_init__(self) -> None:
        # Whatever a channel received (JSON may carry "\ud800" or "\u0000"), the text that goes
        # on is storable, so one odd message can never fail a database write shared with others.
        for name in ("user_id", "text", "action", "ward", "chat_id", "author"):
            value = getattr(self, name)
            if isinstance(value, str) and not (value.isascii() and value.isprintable()):
                object.__setattr__(self, name, storable(value))

    @property
    def chat(self) -> str:
        return self.chat_id or self.user_id

    @property
    def is_group(self) -> bool:
        return self.chat_type != "private"

    @property
    def command(self) -> str | None:
        """'/start@MyBot arg' -> 'start'."""
        if not self.text or not self.text.startswith("/"):
            return None
        head = self.text[1:].split(maxsplit=1)[0] if len(self.text) > 1 else ""
        return head.split("@", 1)[0].lower() or None


class Messenger(Protocol):
    """Sends to any chat on any channel; implemented by the channel adapters (bot/channels)."""

    async def send(self, channel: str, chat_id: str, reply: Reply, *, thread_id: int | None = None,
                   reply_to: int | None = None) -> int | None:
        """Send and return the platform's message id (None if the channel has none).

        Failures raise bot.contracts.delivery types once retries are spent: RecipientGone (the
        citizen blocked the bot, or the bot left the group; the adapter has already marked a
        citizen unreachable), OutsideWindow, Rejected, Transient.
        """
        ...

    async def edit_buttons(self, channel: str, chat_id: str, message_id: int,
                           buttons: list[list[Button]]) -> None:
        """Replace the buttons under a sent message (empty: remove them); best effort."""
        ...

    async def create_topic(self, channel: str, chat_id: str, name: str) -> int | None:
        """Open a forum topic in a team group; None where the chat has no topics."""
        ...
