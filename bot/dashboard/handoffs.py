"""Hỏi cán bộ: questions handed to the community team; answer them here (also for web-chat
users, and wards without a Telegram team group), close them, or turn a reply into a draft entry."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.dashboard.auth import requires
from bot.dashboard.common import dash, filters_from, path_id, redirect, render, viewer
from bot.privacy import redact
from bot.storage.store import HandoffInfo
from handlers import texts
from handlers.menus import menu_buttons
from handlers.messages import Reply

log = logging.getLogger(__name__)

STATE_NAMES = {"open": "Chờ trả lời", "answered": "Đã trả lời", "closed": "Đã đóng"}
MAX_REPLY = 3000


async def _handoff(request: web.Request) -> HandoffInfo:
    """The hand-off in the URL, if this account may see it (ward staff: their ward only)."""
    store = dash(request).runtime.store
    assert store is not None
    missing = "Không tìm thấy câu hỏi này."
    found = await store.get_handoff(path_id(request, missing))
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
    d = dash(request)
    account = viewer(request)
    handoff = await _handoff(request)
    form = await request.post()
    text = str(form.get("text", "")).strip()[:MAX_REPLY]
    here = f"/dashboard/handoffs/{handoff.id}"
    if not text:
        raise redirect(here, err="Hãy nhập nội dung trả lời.")
    store = d.runtime.store
    assert store is not None
    message_id = await store.add_handoff_message(handoff.id, "team", text, author=account.actor)
    await store.mark_handoff_answered(handoff, account.actor)
    delivered = await d.runtime.conversation.handoff.deliver(message_id, handoff, text)
    await store.audit(account.actor, "handoff.reply", str(handoff.id), delivered=delivered)
    messenger, config = d.runtime.conversation.messenger, d.runtime.conversation.config
    if handoff.team_chat_id and messenger is not None:  # keep the team group in the picture
        note = f"✅ {account.username} đã trả lời câu hỏi #{handoff.id} trên bảng điều khiển:\n\n{text}"
        try:
            await messenger.send(config.team_channel, handoff.team_chat_id, Reply(note, kind="team"),
                                 thread_id=handoff.thread_id)
        except Exception:
            log.warning("could not copy the dashboard reply to team chat %s", handoff.team_chat_id, exc_info=True)
    if delivered:
        raise redirect(here, ok="Đã gửi câu trả lời cho người dân.")
    raise redirect(here, ok="Đã lưu câu trả lời; hệ thống sẽ gửi khi kênh của người dân sẵn sàng.")


@requires("staff")
async def close(request: web.Request) -> web.Response:
    d = dash(request)
    account = viewer(request)
    handoff = await _handoff(request)
    store = d.runtime.store
    assert store is not None
    await store.close_handoff(handoff.id)
    await store.audit(account.actor, "handoff.close", str(handoff.id))
    user = await store.get_user(handoff.user_id)
    messenger = d.runtime.conversation.messenger
    if user is not None and messenger is not None and handoff.state != "closed":
        try:
            await messenger.send(user.channel, user.platform_id, Reply(
                texts.TEAM_CLOSED_TO_CITIZEN.format(id=handoff.id), menu_buttons(), kind="notice"))
        except Exception:
            log.warning("could not tell the citizen hand-off %s closed", handoff.id, exc_info=True)
    raise redirect(f"/dashboard/handoffs/{handoff.id}", ok="Đã đóng câu hỏi.")


@requires("staff")
async def draft(request: web.Request) -> web.Response:
    d = dash(request)
    account = viewer(request)
    handoff = await _handoff(request)
    store = d.runtime.store
    assert store is not None
    answer = await store.last_team_text(handoff.id)
    question = await store.first_citizen_text(handoff.id)
    if not answer:
        raise redirect(f"/dashboard/handoffs/{handoff.id}", err="Câu hỏi chưa có câu trả lời của cán bộ.")
    question = redact(question)
    draft_id = await d.queries.create_draft(account.actor, "handoff", kind="entry", state="draft",
                                            questions=[question] if question else [], answer=answer,
                                            handoff_id=handoff.id, ward=handoff.ward)
    raise redirect(f"/dashboard/kb/drafts/{draft_id}", ok="Đã tạo bản nháp từ câu trả lời của cán bộ.")
