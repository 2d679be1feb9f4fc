"""When an entry is due for review, whether its facts are hedged, and where they come from.

The rules (documented in knowledge/FORMAT.md):
- Review interval: an explicit `review_days` wins; else 90 days when the answer states a fee
  or money amount, a deadline, or a legal reference (those change often and hurt most when
  stale); else 180 days.
- Uncertain: `uncertain: true`, or the answer hedges ("kiểm tra lại tại", "theo thông tin tại
  thời điểm", "chưa được xác nhận"): staff should re-check those facts first.
- The effective review date is the later of the file's `reviewed` and a review recorded in
  the database (`python -m bot kb review`, the dashboard's "Đã rà soát").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from knowledge.schema import Entry

DEFAULT_REVIEW_DAYS = 180
SENSITIVE_REVIEW_DAYS = 90
SOON_DAYS = 30  # "soon due" in the dashboard's review list

URL = re.compile(r"https?://[^\s;,)\]\"'<>]+[^\s;,.)\]\"'<>]")
_MONEY = re.compile(r"\d[\d.,]*\s*(?:đồng|đ\b|vnđ|vnd|nghìn|ngàn|triệu|tỷ)", re.IGNORECASE)
_FEE = re.compile(r"\b(?:lệ phí|phí)\b", re.IGNORECASE)
_LEGAL = re.compile(r"\b(?:Thông tư|Nghị định|Luật|Quyết định|Nghị quyết|Công văn|Chỉ thị)\b")
_DEADLINE = re.compile(r"đến hết ngày|hạn chót|chậm nhất|trước ngày \d", re.IGNORECASE)
_HEDGES = ("kiểm tra lại tại", "theo thông tin tại thời điểm", "chưa được xác nhận", "chưa xác nhận được")
# A source staff may name instead of a URL (dashboard entries): a document of some kind.
_DOCUMENT = re.compile(r"\b(?:Thông tư|Nghị định|Luật|Quyết định|Nghị quyết|Công văn|Chỉ thị|Hướng dẫn|"
                       r"Thông báo|Kế hoạch|Văn bản)\b", re.IGNORECASE)


def source_urls(source: str) -> list[str]:
    return URL.findall(source)


def names_a_document(source: str) -> bool:
    """A URL or a named document ("Quyết định 12/QĐ-UBND ..."), not just "Cán bộ phường"."""
    return bool(source_urls(source) or _DOCUMENT.search(source))


def site_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def is_sensitive(entry: Entry) -> bool:
    """States a fee/amount, a deadline or a legal reference."""
    text = entry.answer
    return bool(_MONEY.search(text) or _FEE.search(text) or _LEGAL.search(text) or _DEADLINE.search(text))


def review_days(entry: Entry) -> int:
    if entry.review_days is not None:
        return entry.review_days
    return SENSITIVE_REVIEW_DAYS if is_sensitive(entry) else DEFAULT_REVIEW_DAYS


def is_uncertain(entry: Entry) -> bool:
    lowered = entry.answer.lower()
    return entry.uncertain or any(hedge in lowered for hedge in _HEDGES)


def effective_reviewed(entry: Entry, recorded: dt.date | None = None) -> dt.date:
    return max(entry.reviewed, recorded) if recorded else entry.reviewed


@dataclass(frozen=True)
class Freshness:
    entry_id: str
    reviewed: dt.date  # effective: file date or a later recorded review
    interval: int
    due: dt.date
    days_left: int  # negative: overdue by that many days
    uncertain: bool

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    @property
    def soon(self) -> bool:
        return 0 <= self.days_left <= SOON_DAYS


def freshness(entry: Entry, today: dt.date, recorded: dt.date | None = None) -> Freshness:
    reviewed = effective_reviewed(entry, recorded)
    interval = review_days(entry)
    due = reviewed + dt.timedelta(days=interval)
    return Freshness(entry.id, reviewed, interval, due, (due - today).days, is_uncertain(entry))


def overdue(entries: list[Entry], today: dt.date, recorded: dict[str, dt.date] | None = None) -> list[Freshness]:
    """Entries past their review date, most overdue first."""
    recorded = recorded or {}
    found = [f for f in (freshness(e, today, recorded.get(e.id)) for e in entries) if f.overdue]
    return sorted(found, key=lambda f: (f.days_left, f.entry_id))
