"""Menus and labels shared by several features."""

from __future__ import annotations

from handlers import texts
from handlers.messages import Button
from knowledge.schema import CATEGORIES, TOPICS

MENU_CATEGORIES = list(TOPICS)  # subscription topics are the menu categories


def menu_buttons(with_staff: bool = True) -> list[list[Button]]:
    cats = [Button(CATEGORIES[c], f"cat:{c}") for c in MENU_CATEGORIES]
    rows = [cats[i : i + 2] for i in range(0, len(cats), 2)]
    if with_staff:
        rows.append([Button(texts.TALK_TO_STAFF, "human")])
    return rows


def back_to_bot_row() -> list[Button]:
    return [Button(texts.BACK_TO_BOT, "ho:leave")]
