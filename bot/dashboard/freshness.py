"""Kho kiến thức → Cần rà soát: entries overdue or soon due for review, most disliked, or
with uncertain facts; "Đã rà soát" and suspension; and the dashboard home with the weekly
digest. The rules are in knowledge/freshness.py; records in bot/storage/kb_status.py.

Reviews and suspensions apply to every ward, so a ward-limited account may see them but
not change them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aiohttp import web

from bot.dashboard.auth import requires
from bot.dashboard.common import dash, local_today, redirect, render, viewer
from bot.freshness import DIGEST_JOB, build_digest, digest_period, recorded_days
from bot.storage.dashboard_queries import Scope
from bot.storage.kb_status import EntryStatus, KbStatusQueries
from knowledge.freshness import SOON_DAYS, Freshness, freshness, source_urls
from knowledge.schema import Entry

DISLIKED_DAYS = 30
SORTS = {"due": "Hạn rà soát gần nhất", "down": "Nhiều 👎 nhất", "uncertain": "Chưa chắc chắn trước",
         "reviewed": "Rà soát lâu nhất", "id": "Theo mã"}
NO_ENTRY = "Không tìm thấy mục này."
WARD_REFUSED = ("Rà soát và tạm ngưng áp dụng cho mọi xã/phường, nên chỉ tài khoản không giới hạn "
                "xã/phường được thực hiện.")


@dataclass(frozen=True)
class ReviewRow:
    entry: Entry
    fresh: Freshness
    down: int
    suspended: bool
    status: EntryStatus | None

    @property
    def listed(self) -> bool:
        return self.fresh.overdue or self.fresh.soon or self.down > 0 or self.fresh.uncertain or self.suspended


def _queries(request: web.Request) -> KbStatusQueries:
    return KbStatusQueries(dash(request).queries.sessions)


def _sorted(rows: list[ReviewRow], sort: str) -> list[ReviewRow]:
    keys = {
        "due": lambda r: (r.fresh.days_left, r.entry.id),
        "down": lambda r: (-r.down, r.fresh.days_left, r.entry.id),
        "uncertain": lambda r: (not r.fresh.uncertain, r.fresh.days_left, r.entry.id),
        "reviewed": lambda r: (r.fresh.reviewed, r.entry.id),
        "id": lambda r: r.entry.id,
    }
    return sorted(rows, key=keys[sort])


@requires("viewer")
async def review_page(request: web.Request) -> web.Response:
    d = dash(request)
    kb = d.runtime.knowledge.kb
    sort = request.query.get("sort", "due")
    sort = sort if sort in SORTS else "due"
    show_all = request.query.get("show") == "all"
    statuses = await _queries(request).statuses()
    recorded = recorded_days(statuses)
    today = local_today()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=DISLIKED_DAYS)
    usage = await d.queries.entry_usage(Scope(start=since, ward=viewer(request).ward))
    rows = [ReviewRow(e, freshness(e, today, recorded.get(e.id)), usage.get(e.id, {}).get("down", 0),
                      e.id in kb.suspended, statuses.get(e.id)) for e in kb.entries]
    listed = [r for r in rows if show_all or r.listed]
    counts = {"overdue": sum(r.fresh.overdue for r in rows), "soon": sum(r.fresh.soon for r in rows),
              "uncertain": sum(r.fresh.uncertain for r in rows), "suspended": sum(r.suspended for r in rows)}
    return render(request, "kb_review.html", page="kb", rows=_sorted(listed, sort), sort=sort, SORTS=SORTS,
                  show_all=show_all, counts=counts, soon_days=SOON_DAYS, disliked_days=DISLIKED_DAYS,
                  today=today, back=request.path_qs)


def _back(value: object, fallback: str) -> str:
    text = str(value or "")
    return text if text.startswith("/dashboard/kb") and not text.startswith("//") and "\\" not in text else fallback


async def _target(request: web.Request) -> tuple[Entry, str]:
    """The entry of the URL and where to return; refuses ward-limited accounts."""
    found = dash(request).runtime.knowledge.kb.get(request.match_info["id"])
    if found is None:
        raise web.HTTPNotFound(text=NO_ENTRY)
    back = _back((await request.post()).get("back"), f"/dashboard/kb/entry/{found.id}")
    if viewer(request).ward:
        raise redirect(back, err=WARD_REFUSED)
    return found, back


@requires("staff")
async def mark_reviewed(request: web.Request) -> web.Response:
    found, back = await _target(request)
    source = " ".join(str((await request.post()).get("source", "")).split())
    if source and source_urls(source) != [source]:
        raise redirect(back, err="Nguồn mới phải là một địa chỉ http(s)://, ví dụ https://dichvucong.gov.vn/...")
    d = dash(request)
    await _queries(request).record_review(found.id, viewer(request).actor, source or None)
    if d.overlay is not None:
        await d.overlay.refresh()
    raise redirect(back, ok=f"Đã ghi nhận rà soát mục “{found.title}” hôm nay.")


@requires("staff")
async def suspend(request: web.Request) -> web.Response:
    found, back = await _target(request)
    on = request.match_info["op"] == "suspend"
    d = dash(request)
    await _queries(request).set_suspended(found.id, viewer(request).actor, on)
    if d.overlay is not None:
        await d.overlay.refresh()
    if on:
        raise redirect(back, ok=f"Đã tạm ngưng mục “{found.title}”: trợ lý báo thông tin đang được cập nhật "
                                "và mời người dân gửi câu hỏi cho cán bộ.")
    raise redirect(back, ok=f"Mục “{found.title}” đã được dùng lại.")


@requires("viewer")
async def home(request: web.Request) -> web.Response:
    """Tổng quan: this week's review digest (what admins also get in Telegram)."""
    d = dash(request)
    queries = _queries(request)
    now = dt.datetime.now(dt.UTC)
    digest = await build_digest(d.runtime.knowledge.kb, queries, now)
    period = digest_period(now, d.settings.kb_digest_at)
    last = await queries.last_period(DIGEST_JOB)
    return render(request, "home.html", page="home", digest=digest, today=local_today(),
                  schedule=d.settings.kb_digest_at, sent=period is not None and last == period)
