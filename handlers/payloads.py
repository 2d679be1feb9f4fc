"""Typed button payloads for the conversation skills (small talk, two questions, follow-ups).

Each payload is a small frozen dataclass that packs to "<prefix>:<field>:<field>" and unpacks
back, refusing anything that does not fit Telegram's 64 bytes or does not have its shape, so
no handler parses free strings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Self

from handlers.messages import MAX_ACTION_BYTES


class PayloadError(ValueError):
    pass


@dataclass(frozen=True)
class Payload:
    PREFIX: ClassVar[str] = ""

    def pack(self) -> str:
        values = [str(getattr(self, f.name)) for f in fields(self)]
        if any(":" in v or not v for v in values):
            raise PayloadError(f"{self!r}: fields must be non-empty and free of ':'")
        packed = ":".join([self.PREFIX, *values])
        if len(packed.encode("utf-8")) > MAX_ACTION_BYTES:
            raise PayloadError(f"{self!r} packs to more than {MAX_ACTION_BYTES} bytes")
        return packed

    @classmethod
    def unpack(cls, action: str) -> Self | None:
        """The payload an action string stands for, or None when it is not one of ours."""
        if len(action.encode("utf-8")) > MAX_ACTION_BYTES:
            return None
        prefix, *values = action.split(":")
        names = [f for f in fields(cls)]
        if prefix != cls.PREFIX or len(values) != len(names) or not all(values):
            return None
        try:
            return cls(**{f.name: (int(v) if f.type in (int, "int") else v) for f, v in zip(names, values)})
        except ValueError:
            return None


@dataclass(frozen=True)
class AlsoAsked(Payload):
    """The second question of a two-question message, offered as a button."""

    PREFIX: ClassVar[str] = "also"
    question: int  # the logged question (0 when not logged)
    entry: str  # entry token (handlers.menus.entry_token)


@dataclass(frozen=True)
class FacetChoice(Payload):
    """One part of the previous answer ("Lệ phí", "Nơi làm"), offered after an unclear follow-up."""

    PREFIX: ClassVar[str] = "facet"
    facet: str
    entry: str  # entry token
