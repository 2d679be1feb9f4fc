"""Shared pieces of the dashboard pages: app state, templates, time in Vietnam, filters."""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from bot.localtime import VN_TZ, vn_day_start_utc, vn_today
from bot.runtime import ServiceRuntime
from bot.storage.dashboard_queries import DashboardQueries, Scope, StaffAccount
from knowledge.schema import CATEGORIES

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_PREFIX = "/static"

CHANNEL_NAMES = {"telegram": "Telegram", "web": "Web", "zalo": "Zalo OA", "zalobot": "Zalo Bot", "api": "API"}
DECISION_NAMES = {"answer": "Trả lời", "suggest": "Gợi ý", "fallback": "Chưa trả lời được", "handoff": "Gửi cán bộ",
                  "smalltalk": "Chào hỏi, cảm ơn"}
OUTCOME_NAMES = {"helpful": "👍 Hữu ích", "unhelpful": "👎 Chưa hữu ích", "picked": "Chọn gợi ý",
                 "not_these": "Không phải gợi ý", "handoff": "Gửi cán bộ", "answered_by_person": "Cán bộ đã trả lời"}
ROLE_NAMES = {"admin": "Quản trị", "staff": "Cán bộ", "viewer": "Chỉ xem"}


@dataclass
class Dashboard:
    """What every page handler needs, stored once on the aiohttp app."""

    runtime: ServiceRuntime
    queries: DashboardQueries
    env: Environment
    overlay: Any = None  # OverlaySync, set by setup_dashboard

    @property
    def settings(self):
        return self.runtime.settings

    @property
    def wards(self) -> dict[str, str]:
        return self.runtime.settings.ward_names

    def ward_name(self, slug: str | None) -> str:
        if not slug:
            return "Chưa rõ"
        return self.wards.get(slug, slug)


DASHBOARD_KEY: web.AppKey[Dashboard] = web.AppKey("dashboard", Dashboard)
VIEWER_KEY: web.RequestKey[StaffAccount | None] = web.RequestKey("viewer", object)  # type: ignore[arg-type]
CSRF_KEY: web.RequestKey[str] = web.RequestKey("csrf_token", str)


def dash(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD_KEY]


def viewer(request: web.Request) -> StaffAccount:
    account = request[VIEWER_KEY]
    assert account is not None
    return account


MAX_ID = 2**31 - 1  # database integer ids: larger numbers in a URL cannot exist (PostgreSQL would refuse them)


def path_id(request: web.Request, not_found: str = "Không tìm thấy trang này.") -> int:
    """The numeric {id} of the URL; 404 for anything no row can have."""
    raw = request.match_info.get("id", "")
    if not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        raise web.HTTPNotFound(text=not_found)
    return int(raw)


# --- time -----------------------------------------------------------------------------------
def local(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(VN_TZ) if value is not None else None


def local_today() -> dt.date:
    return vn_today()


def day_start_utc(day: dt.date) -> dt.datetime:
    return vn_day_start_utc(day)


def parse_day(value: str | None) -> dt.date | None:
    """'2026-06-14' (the value of <input type=date>) or None when empty/invalid."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def fmt_dt(value: dt.datetime | None) -> str:
    return local(value).strftime("%d/%m/%Y %H:%M") if value else "—"  # type: ignore[union-attr]


def fmt_day(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = local(value).date()  # type: ignore[union-attr]
    return value.strftime("%d/%m/%Y")


def fmt_num(value: float | int | None, digits: int = 0) -> str:
    """Vietnamese number style: 1.234,5."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{fmt_num(value * 100, 1)}%"


def fmt_hours(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{round(value * 60)} phút"
    return f"{fmt_num(value, 1)} giờ"


# --- filters from the query string ------------------------------------------------------------
@dataclass
class Filters:
    """The period/ward/channel chosen on a page, as shown in its filter form."""

    start: dt.date
    end: dt.date  # inclusive
    ward: str | None
    channel: str | None
    ward_locked: bool
    dates_given: bool = True  # False: the default period ending today

    def scope(self) -> Scope:
        return Scope(day_start_utc(self.start), day_start_utc(self.end + dt.timedelta(days=1)),
                     self.ward, self.channel)

    def query(self, **extra: Any) -> str:
        params = {"from": self.start.isoformat(), "to": self.end.isoformat(), "ward": self.ward or "",
                  "channel": self.channel or "", **extra}
        return urlencode({k: v for k, v in params.items() if v not in ("", None)})

    def live_query(self, **extra: Any) -> str:
        """Like query(), but a default period is left out so it keeps ending "today" (auto-refresh
        of a page left open overnight must show the new day's questions)."""
        params = {"ward": self.ward or "", "channel": self.channel or "", **extra}
        if self.dates_given:
            params = {"from": self.start.isoformat(), "to": self.end.isoformat(), **params}
        return urlencode({k: v for k, v in params.items() if v not in ("", None)})


def filters_from(request: web.Request, default_days: int = 30) -> Filters:
    """Read from/to/ward/channel; a ward-limited account is always confined to its ward."""
    d = dash(request)
    account = viewer(request)
    q = request.query
    end = parse_day(q.get("to")) or local_today()
    start = parse_day(q.get("from")) or end - dt.timedelta(days=default_days - 1)
    if start > end:
        start, end = end, start
    if (end - start).days > 3660:
        start = end - dt.timedelta(days=3660)
    ward = q.get("ward") or None
    if ward is not None and ward not in d.wards:
        ward = None
    locked = bool(account.ward)
    if locked:
        ward = account.ward
    channel = q.get("channel") or None
    if channel is not None and channel not in CHANNEL_NAMES:
        channel = None
    return Filters(start, end, ward, channel, locked, dates_given=bool(q.get("from") or q.get("to")))


def account_scope(request: web.Request) -> Scope:
    """No period: everything the account may see."""
    return Scope(ward=viewer(request).ward)


def is_https_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith("https://") and len(value) > 8 and \
        not any(ch.isspace() or ch in "\"'<>" for ch in value)


# --- templates -----------------------------------------------------------------------------------
@functools.cache
def make_env() -> Environment:
    """One environment per process: its settings are constants, and it keeps each template
    compiled (compiling is most of a page's cost the first time; every dashboard app shares it)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "svg"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(dt=fmt_dt, day=fmt_day, num=fmt_num, pct=fmt_pct, hours=fmt_hours)
    env.tests["https"] = is_https_url  # only such links become <a href>: never javascript: or data:
    env.globals.update(static=STATIC_PREFIX, CATEGORIES=CATEGORIES, CHANNEL_NAMES=CHANNEL_NAMES,
                       DECISION_NAMES=DECISION_NAMES, OUTCOME_NAMES=OUTCOME_NAMES, ROLE_NAMES=ROLE_NAMES)
    return env


NAV = [
    ("home", "/dashboard", "Tổng quan"),
    ("unanswered", "/dashboard/unanswered", "Chưa trả lời"),
    ("handoffs", "/dashboard/handoffs", "Hỏi cán bộ"),
    ("kb", "/dashboard/kb", "Kho kiến thức"),
    ("stats", "/dashboard/stats", "Thống kê"),
    ("report", "/dashboard/report", "Báo cáo"),
    ("campaigns", "/dashboard/campaigns", "Chiến dịch"),
]


FLASH_COOKIE = "dvc_flash"


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    d = dash(request)
    account = request.get(VIEWER_KEY)
    routes = {r.name for r in request.app.router.routes() if r.name}
    nav = [(key, href, label, f"dashboard.{key}" in routes) for key, href, label in NAV]
    flash = _read_flash(request)
    base = {
        "request": request, "viewer": account, "csrf_token": request.get(CSRF_KEY, ""), "nav": nav,
        "wards": d.wards, "ward_name": d.ward_name, "settings": d.settings,
        "flash": flash.get("ok", ""), "error": flash.get("err", ""),
    }
    html = d.env.get_template(template).render(**base, **context)
    response = web.Response(text=html, content_type="text/html", charset="utf-8", status=status)
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path="/dashboard")
    return response


def _read_flash(request: web.Request) -> dict[str, str]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return {}
    try:
        data = json.loads(unquote(raw))
    except ValueError:
        return {}
    return {k: str(v)[:600] for k, v in data.items() if k in ("ok", "err")} if isinstance(data, dict) else {}


def redirect(location: str, *, ok: str = "", err: str = "", **params: str) -> web.HTTPSeeOther:
    """303 to `location`; the message shows once on the next page (a cookie, so URLs cannot forge it)."""
    if params:
        location += ("&" if "?" in location else "?") + urlencode(params)
    response = web.HTTPSeeOther(location)
    if ok or err:
        message = {k: v for k, v in (("ok", ok), ("err", err)) if v}
        response.set_cookie(FLASH_COOKIE, quote(json.dumps(message, ensure_ascii=False)), path="/dashboard",
                            httponly=True, samesite="Lax", max_age=60)
    return response


def markup(svg: str) -> Markup:
    return Markup(svg)  # noqa: S704 - built by bot/dashboard/charts.py with every text escaped
