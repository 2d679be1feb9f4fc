"""What citizens see of an entry's freshness: where its facts come from and when they were
last checked, and, for an entry staff suspended, a notice with the hand-off instead."""

from __future__ import annotations

from bot.contracts import texts
from bot.contracts.messages import Button, Reply
from bot.contracts.payloads import Menu
from handlers.handoff import human_action
from knowledge.freshness import names_a_document, site_of, source_urls
from knowledge.schema import Entry

MAX_NAMED_SOURCE = 60


def source_line(entry: Entry) -> str:
    """'Nguồn: vneid.gov.vn · cập nhật 22/11/2026' and a blank line, to go under the answer.

    The date is `reviewed`, which a review recorded by staff moves forward (overlay.apply_status);
    a dashboard entry without a URL names its document instead, when that is short enough."""
    day = entry.reviewed.strftime("%d/%m/%Y")
    urls = source_urls(entry.source)
    site = site_of(urls[0]) if urls else ""
    if not site and names_a_document(entry.source) and len(entry.source) <= MAX_NAMED_SOURCE:
        site = entry.source.strip()
    line = texts.SOURCE_LINE.format(site=site, day=day) if site else texts.UPDATED_LINE.format(day=day)
    return line + "\n\n"


def suspended_reply(entry: Entry, question_ref: str = "0") -> Reply:
    rows = [[Button(texts.SEND_TO_TEAM, human_action(question_ref))], [Button(texts.MENU, Menu().pack())]]
    return Reply(texts.ENTRY_SUSPENDED.format(title=entry.title), rows, kind="notice")
