"""Hỏi cán bộ: questions handed to the community team; answer them here (also for web-chat
users, and wards without a Telegram team group), close them, or turn a reply into a draft entry."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard.auth import requires
from bot.dashboard.common import dash, filters_from, path_id, redirect, render, viewer
from bot.handoff.service import HandoffService
from bot.privacy import redact
from bot.storage.store import HandoffInfo

STATE_NAMES = {"open": "Chờ trả lời", "answered": "Đã trả lời", "closed": "Đã đóng"}
MAX_REPLY = 3000


def _service(request: web.Request) -> HandoffService:
    handoffs = dash(request).runtime.handoffs
    assert handoffs is not None  # the dashboard runs only with a database
    return handoffs


async def _handoff(request: web.Request) -> HandoffInfo:
    """The hand-off in the URL, if this account may see it (ward staff: their ward only)."""
    missing = "Không tìm thấy câu hỏi này."
    found = await _service(request).get(path_id(request, missing))
    ward = viewer(request).ward
    if found is None or (ward and found.ward != ward):
        raise web.HTTPNotFound(text=missing)
    return found


@requires("viewer")
async def page(request: web.Request) -> web.Response:
    d = dash(request)
    filters = filters_from(request, default_days=90)
    state = request.query.get("state") or None
    state = state if state in STATE_NAMES else None
    rows = await d.queries.handoff_list(filters.scope(), state)
    return render(request, "handoffs.html", page="handoffs", filters=filters, rows=rows, state=state,
                  STATE_NAMES=STATE_NAMES, redact=redact)


@requires("viewer")
async def detail(request: web.Request) -> web.Response:
    d = dash(request)
    handoff = await _handoff(request)
    messages = await d.queries.handoff_messages(handoff.id)
    return render(request, "handoff.html", page="handoffs", handoff=handoff, messages=messages,
                  STATE_NAMES=STATE_NAMES, redact=redact)


@requires("staff")
async def reply(request: web.Request) -> web.Response:
    account = viewer(request)
    handoff = await _handoff(request)
    form = await request.post()
    text = str(form.get("text", "")).strip()[:MAX_REPLY]
    here = f"/dashboard/handoffs/{handoff.id}"
    if not text:
        raise redirect(here, err="Hãy nhập nội dung trả lời.")
    handoffs = _service(request)
    relay = await handoffs.record_team_reply(handoff, text, account.actor)
    await handoffs.store.audit_trail.record(account.actor, "handoff.reply", str(handoff.id), delivered=relay.sent)
    # Keep the team group in the picture.
    await handoffs.tell_team(handoff, f"✅ {account.username} đã trả lời câu hỏi #{handoff.id} trên bảng điều khiển:"
                                      f"\n\n{text}")
    if relay.sent:
        raise redirect(here, ok="Đã gửi câu trả lời cho người dân.")
    raise redirect(here, ok="Đã lưu câu trả lời; hệ thống sẽ gửi khi kênh của người dân sẵn sàng.")


@requires("staff")
async def close(request: web.Request) -> web.Response:
    handoff = await _handoff(request)
    closed = await _service(request).close(handoff.id, viewer(request).actor)
    here = f"/dashboard/handoffs/{handoff.id}"
    if closed is None:  # closed already (by the team group, the idle timer or a second click)
        raise redirect(here, ok="Câu hỏi này đã được đóng trước đó.")
    raise redirect(here, ok="Đã đóng câu hỏi.")


@requires("staff")
async def draft(request: web.Request) -> web.Response:
    handoff = await _handoff(request)
    draft_id = await _service(request).make_draft(handoff, viewer(request).actor)
    if draft_id is None:
        raise redirect(f"/dashboard/handoffs/{handoff.id}", err="Câu hỏi chưa có câu trả lời của cán bộ.")
    raise redirect(f"/dashboard/kb/drafts/{draft_id}", ok="Đã tạo bản nháp từ câu trả lời của cán bộ.")
