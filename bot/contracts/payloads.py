"""Typed button payloads: every action a button carries is one of the classes below.

Each payload is a small frozen dataclass that packs to "<prefix>:<field>:<field>" and unpacks
back, refusing anything that does not fit Telegram's 64 bytes or does not have its shape (as
aiogram's `CallbackData`), so no handler parses free strings. A prefix may have several parts
("camp:seg"); its first part is the payload's namespace, which names the feature that owns it
(the router sends a malformed payload of a namespace to that feature's fallback). A trailing
field whose default is None is left out while None ("human" or "human:12").

This is the one module that splits action strings; `Packed` is shared with the stored
dialogue states (handlers/states.py), which have the same shape.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import ClassVar, Self

from bot.contracts.messages import MAX_ACTION_BYTES, MAX_ACTION_NUMBER

SEPARATOR = ":"


class PayloadError(ValueError):
    pass


def numbers_fit(action: str) -> bool:
    """Whether every number in a button payload ("fb:up:123:x") fits a database id: a forged
    payload with a 20-digit id gets "unknown action", not a database error."""
    return all(not part.isdigit() or (len(part) <= 10 and int(part) <= MAX_ACTION_NUMBER)
               for part in action.split(SEPARATOR))


def namespace(packed: str) -> str:
    """The first part of a packed payload or state: the feature that owns it."""
    return packed.partition(SEPARATOR)[0]


def _is_int(annotation: object) -> bool:
    return annotation is int or (isinstance(annotation, str) and annotation.split("|")[0].strip() == "int")


@dataclass(frozen=True)
class Packed:
    """A prefix and typed fields joined by ':'; subclasses say how long the result may be."""

    PREFIX: ClassVar[str] = ""
    MAX_BYTES: ClassVar[int] = MAX_ACTION_BYTES

    def pack(self) -> str:
        values = [getattr(self, f.name) for f in fields(self)]
        while values and values[-1] is None and fields(self)[len(values) - 1].default is None:
            values.pop()
        if any(v is None for v in values):
            raise PayloadError(f"{self!r}: only trailing fields may be left out")
        parts = [str(v) for v in values]
        if any(SEPARATOR in v or not v for v in parts):
            raise PayloadError(f"{self!r}: fields must be non-empty and free of ':'")
        packed = SEPARATOR.join([self.PREFIX, *parts])
        if len(packed.encode("utf-8")) > self.MAX_BYTES:
            raise PayloadError(f"{self!r} packs to more than {self.MAX_BYTES} bytes")
        return packed

    @classmethod
    def unpack(cls, packed: str) -> Self | None:
        """The value a packed string stands for, or None when it is not one of this class."""
        if len(packed.encode("utf-8")) > cls.MAX_BYTES:
            return None
        if packed == cls.PREFIX:
            values: list[str] = []
        elif packed.startswith(cls.PREFIX + SEPARATOR):
            values = packed[len(cls.PREFIX) + 1:].split(SEPARATOR)
        else:
            return None
        declared = fields(cls)
        required = sum(1 for f in declared if f.default is MISSING)
        if not required <= len(values) <= len(declared) or not all(values):
            return None
        kwargs: dict[str, object] = {}
        for f, v in zip(declared, values):
            if _is_int(f.type):
                if not (v.isascii() and v.isdigit()) or len(v) > 10 or int(v) > MAX_ACTION_NUMBER:
                    return None
                kwargs[f.name] = int(v)
            else:
                kwargs[f.name] = v
        return cls(**kwargs)


@dataclass(frozen=True)
class Payload(Packed):
    """A button's action (IncomingMessage.action), at most Telegram's 64 bytes."""


# --- menus and answers (handlers/conversation.py) -------------------------------------
@dataclass(frozen=True)
class Menu(Payload):
    PREFIX: ClassVar[str] = "menu"


@dataclass(frozen=True)
class Category(Payload):
    PREFIX: ClassVar[str] = "cat"
    category: str


@dataclass(frozen=True)
class ShowEntry(Payload):
    PREFIX: ClassVar[str] = "faq"
    entry: str  # entry token (bot.contracts.menus.entry_token)


@dataclass(frozen=True)
class Pick(Payload):
    """One of the suggested entries, for the logged question it was suggested for."""

    PREFIX: ClassVar[str] = "pick"
    question: int  # 0 when not logged
    entry: str


@dataclass(frozen=True)
class NotThese(Payload):
    PREFIX: ClassVar[str] = "no"
    question: int


@dataclass(frozen=True)
class Feedback(Payload):
    PREFIX: ClassVar[str] = "fb"
    vote: str  # "up" or "down"
    question: int
    entry: str


# --- conversation skills (handlers/dialogue.py) ---------------------------------------
@dataclass(frozen=True)
class AlsoAsked(Payload):
    """The second question of a two-question message, offered as a button."""

    PREFIX: ClassVar[str] = "also"
    question: int  # the logged question (0 when not logged)
    entry: str  # entry token (bot.contracts.menus.entry_token)


@dataclass(frozen=True)
class FacetChoice(Payload):
    """One part of the previous answer ("Lệ phí", "Nơi làm"), offered after an unclear follow-up."""

    PREFIX: ClassVar[str] = "facet"
    facet: str
    entry: str  # entry token


@dataclass(frozen=True)
class QuizAnswer(Payload):
    """An option of a campaign quiz where it is rendered as numbered text (bot/channels/choices.py,
    the terminal chat): answered there, never routed to the conversation."""

    PREFIX: ClassVar[str] = "quiz"
    option: int  # 0-based


# --- hand-off (handlers/handoff.py, bot/handoff/service.py) ---------------------------
@dataclass(frozen=True)
class AskTeam(Payload):
    """"Send to the team"; carries the question it is about, if any."""

    PREFIX: ClassVar[str] = "human"
    question: int | None = None

    @classmethod
    def about(cls, question_ref: str = "0") -> AskTeam:
        return cls(int(question_ref)) if question_ref.isdigit() and int(question_ref) else cls()


@dataclass(frozen=True)
class LeaveHandoff(Payload):
    """The citizen goes back to the bot while a thread stays open."""

    PREFIX: ClassVar[str] = "ho:leave"


@dataclass(frozen=True)
class CloseThread(Payload):
    """"Đã xử lý" under a thread's post in the team group."""

    PREFIX: ClassVar[str] = "ho:close"
    handoff: int


@dataclass(frozen=True)
class DraftFromThread(Payload):
    """"Tạo FAQ nháp" under a thread's post in the team group."""

    PREFIX: ClassVar[str] = "ho:draft"
    handoff: int


# --- subscriptions (handlers/subscriptions.py) ----------------------------------------
@dataclass(frozen=True)
class SubscribeWard(Payload):
    PREFIX: ClassVar[str] = "sub:w"
    ward: str


@dataclass(frozen=True)
class SubscribeTopic(Payload):
    PREFIX: ClassVar[str] = "sub:t"
    topic: str


@dataclass(frozen=True)
class SubscribeDone(Payload):
    PREFIX: ClassVar[str] = "sub:done"


@dataclass(frozen=True)
class Unsubscribe(Payload):
    PREFIX: ClassVar[str] = "unsub"


# --- privacy (handlers/privacy.py) ----------------------------------------------------
@dataclass(frozen=True)
class DeleteData(Payload):
    PREFIX: ClassVar[str] = "del"
    answer: str  # "yes"; anything else cancels


# --- campaigns (handlers/campaigns.py) ------------------------------------------------
@dataclass(frozen=True)
class CampaignAbort(Payload):
    PREFIX: ClassVar[str] = "camp:abort"


@dataclass(frozen=True)
class CampaignSegment(Payload):
    """Who receives the draft: "all", a ward ("w", slug) or a topic ("t", topic)."""

    PREFIX: ClassVar[str] = "camp:seg"
    campaign: int
    kind: str
    value: str | None = None


@dataclass(frozen=True)
class CampaignTime(Payload):
    PREFIX: ClassVar[str] = "camp:time"
    campaign: int
    when: str  # "now", "1h", "tomorrow"


@dataclass(frozen=True)
class CampaignOption(Payload):
    """An optional extra to ask for: "link", "img", "exp" or "ch"."""

    PREFIX: ClassVar[str] = "camp:opt"
    campaign: int
    extra: str


@dataclass(frozen=True)
class CampaignChannel(Payload):
    PREFIX: ClassVar[str] = "camp:ch"
    campaign: int
    channel: str


@dataclass(frozen=True)
class CampaignBack(Payload):
    PREFIX: ClassVar[str] = "camp:back"
    campaign: int


@dataclass(frozen=True)
class CampaignConfirm(Payload):
    PREFIX: ClassVar[str] = "camp:ok"
    campaign: int


@dataclass(frozen=True)
class CampaignCancel(Payload):
    PREFIX: ClassVar[str] = "camp:no"
    campaign: int
