"""Dialogue states: what a citizen's or staff member's next typed message means.

The state is stored as a short string on the user row (`users.state`, 32 characters; ""
while talking to the bot), so the column and its migrations stay as they are; in code it is
one of the typed classes below, declared per feature, packed and unpacked like button
payloads (bot/contracts/payloads.py). The feature that owns a state registers a handler for it
in its route table (handlers/router.py); nothing else reads the string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bot.contracts.payloads import Packed

NONE = ""  # talking to the bot
MAX_STATE_CHARS = 32  # users.state


@dataclass(frozen=True)
class State(Packed):
    MAX_BYTES: ClassVar[int] = MAX_STATE_CHARS


# --- hand-off (handlers/handoff.py, bot/handoff/service.py) ---------------------------
@dataclass(frozen=True)
class AwaitingTeamQuestion(State):
    """The citizen asked for a person; their next message is the question for the team."""

    PREFIX: ClassVar[str] = "await_handoff_question"


@dataclass(frozen=True)
class Relaying(State):
    """A thread is open: the citizen's messages go to the team, not to the matcher."""

    PREFIX: ClassVar[str] = "relay"
    handoff: int


# --- campaigns (handlers/campaigns.py) ------------------------------------------------
@dataclass(frozen=True)
class CampaignAwaitingText(State):
    PREFIX: ClassVar[str] = "camp:text"


@dataclass(frozen=True)
class CampaignAwaitingSegment(State):
    PREFIX: ClassVar[str] = "camp:seg"
    campaign: int


@dataclass(frozen=True)
class CampaignAwaitingTime(State):
    PREFIX: ClassVar[str] = "camp:time"
    campaign: int


@dataclass(frozen=True)
class CampaignAwaitingExtra(State):
    """An optional extra typed after the preview: a link, an image address or an expiry."""

    PREFIX: ClassVar[str] = "camp"
    extra: str  # "link", "img" or "exp"
    campaign: int
