"""Web chat for ward portals: GET /chat (embeddable page) and its small JSON API.

The page talks to the same Conversation as Telegram: a message or button press becomes
IncomingMessage(channel="web", user_id=<random id from a cookie>), so logging, feedback
and hand-off behave identically. Replies that arrive later (the team's answer) wait in
the web channel's outbox until the page polls for them.
"""

from __future__ import annotations

import json
import re
import secrets

from aiohttp import web

from bot import json_body
from bot.contracts import texts
from bot.contracts.menus import menu_buttons
from bot.contracts.messages import MAX_ACTION_BYTES, IncomingMessage, Reply
from bot.dashboard.auth import client_ip, cookie_secure, is_https
from bot.dashboard.common import dash, render
from bot.storage.web_outbox import WebOutboxQueries
from handlers.conversation import FloodGuard

CHAT_COOKIE = "dvc_chat"
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
MAX_TEXT = 2000
COOKIE_DAYS = 180
IP_GUARD_KEY: web.AppKey[FloodGuard] = web.AppKey("webchat_ip_guard", FloodGuard)


def _chat_id(request: web.Request) -> str | None:
    value = request.cookies.get(CHAT_COOKIE, "")
    return value if ID_PATTERN.match(value) else None


def _set_cookie(request: web.Request, response: web.StreamResponse, ident: str) -> None:
    """Kept across visits so the team's reply finds the citizen; third-party-safe over https."""
    if cookie_secure(request):  # inside a ward portal's iframe the cookie is third-party: SameSite=None + Partitioned
        # Written by hand: http.cookies knows "Partitioned" only from Python 3.14 (set_cookie raises before).
        response.headers.add("Set-Cookie", f"{CHAT_COOKIE}={ident}; HttpOnly; Max-Age={COOKIE_DAYS * 86400}; "
                                           "Path=/chat; SameSite=None; Secure; Partitioned")
    else:
        response.set_cookie(CHAT_COOKIE, ident, path="/chat", httponly=True, samesite="Lax",
                            max_age=COOKIE_DAYS * 86400)


def _ward(request: web.Request, value: object) -> str | None:
    return value if isinstance(value, str) and value in dash(request).wards else None


async def page(request: web.Request) -> web.Response:
    ward = _ward(request, request.query.get("ward"))
    greeting = Reply(texts.GREETING, menu_buttons(), kind="menu")
    response = render(request, "chat.html", greeting=greeting, ward=ward or "",
                      ward_label=dash(request).wards.get(ward or "", ""))
    if _chat_id(request) is None:
        _set_cookie(request, response, secrets.token_hex(16))
    return response


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _refuse_cross_site(request: web.Request) -> web.Response | None:
    """JSON only, from our own page: a cross-site form cannot send application/json without CORS."""
    if request.content_type != "application/json":
        return _json({"error": "Nội dung phải là JSON."}, 415)
    origin = request.headers.get("Origin")
    if origin and origin != f"{request.scheme}://{request.host}" and not (
            is_https(request) and origin == f"https://{request.host}"):
        return _json({"error": "Yêu cầu không hợp lệ."}, 403)
    return None


async def _body(request: web.Request) -> dict:
    try:
        return json_body.parse_object(await request.read())
    except json_body.BadJson:
        raise web.HTTPBadRequest(text="bad json") from None


def ip_guard(per_minute: int) -> FloodGuard:
    """Per-address limit on top of the per-user one: new cookies must not bypass flood control."""
    return FloodGuard(per_minute * 3)


def _guard(request: web.Request) -> bool:
    return request.app[IP_GUARD_KEY].check(client_ip(request)) == "ok"


async def message(request: web.Request) -> web.Response:
    """POST {"text": ...} or {"action": ...} -> {"replies": [...]} (the bot's answer)."""
    refused = _refuse_cross_site(request)
    if refused is not None:
        return refused
    if not _guard(request):
        return _json({"error": texts.FLOOD}, 429)
    data = await _body(request)
    text, action = data.get("text"), data.get("action")
    if isinstance(text, str) and text.strip():
        text, action = text[:MAX_TEXT], None
    elif isinstance(action, str) and action and len(action.encode()) <= MAX_ACTION_BYTES:
        text = None
    else:
        return _json({"error": texts.EMPTY}, 400)
    ident = _chat_id(request) or secrets.token_hex(16)
    incoming = IncomingMessage(channel="web", user_id=ident, text=text, action=action,
                               ward=_ward(request, data.get("ward")))
    outcome = await dash(request).runtime.conversation.respond(incoming)
    response = _json({"replies": [reply.as_dict() for reply in outcome.replies]})
    if _chat_id(request) is None:
        _set_cookie(request, response, ident)
    return response


async def updates(request: web.Request) -> web.Response:
    """POST {} -> {"replies": [...]}: messages that arrived since (e.g. the team's answer)."""
    refused = _refuse_cross_site(request)
    if refused is not None:
        return refused
    ident = _chat_id(request)
    if ident is None:
        return _json({"replies": []})
    outbox = WebOutboxQueries(dash(request).runtime.store)
    return _json({"replies": await outbox.take(ident)})
