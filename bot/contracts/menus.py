"""Menus and labels shared by several features, and how entries are named inside buttons."""

from __future__ import annotations

import hashlib

from bot.contracts import texts
from bot.contracts.messages import Button
from bot.contracts.payloads import AskTeam, Category, Feedback, LeaveHandoff
from knowledge.schema import CATEGORIES, TOPICS

MENU_CATEGORIES = [*TOPICS, "social"]  # the subscription topics, and insurance/tax/health/school
# Longest entry id put into a button action as is: "fb:down:<question id>:<id>" must stay
# within Telegram's 64 bytes. Longer ids (the dashboard allows them) travel as a hash.
MAX_ID_IN_ACTION = 40
_HASHED = "~"


def menu_buttons(with_staff: bool = True) -> list[list[Button]]:
    cats = [Button(CATEGORIES[c], Category(c).pack()) for c in MENU_CATEGORIES]
    rows = [cats[i : i + 2] for i in range(0, len(cats), 2)]
    if with_staff:
        rows.append([Button(texts.TALK_TO_STAFF, AskTeam().pack())])
    return rows


def back_to_bot_row() -> list[Button]:
    return [Button(texts.BACK_TO_BOT, LeaveHandoff().pack())]


def feedback_row(question_ref: str, entry_id: str) -> list[Button]:
    """👍 / 👎 under an answer, for the logged question it answered ("0": none)."""
    token = entry_token(entry_id)
    return [Button("👍", Feedback("up", int(question_ref), token).pack()),
            Button("👎", Feedback("down", int(question_ref), token).pack())]


def _hashed(entry_id: str) -> str:
    return _HASHED + hashlib.sha256(entry_id.encode()).hexdigest()[:16]


def entry_token(entry_id: str) -> str:
    """How a button names an entry: its id, or a short hash of a long id."""
    return entry_id if len(entry_id.encode()) <= MAX_ID_IN_ACTION else _hashed(entry_id)


def resolve_entry(kb, token: str) -> str | None:
    """The id of the entry a button token names in the current knowledge base, if any."""
    if not token.startswith(_HASHED):
        return token if kb.get(token) is not None else None
    return next((e.id for e in kb.entries if _hashed(e.id) == token), None)
