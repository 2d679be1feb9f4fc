"""A protocol-faithful fake of the Zalo Bot Platform API (bot-api.zaloplatforms.com), for tests.

A real HTTP server on 127.0.0.1 (random port). The app calls ``f"{fake.base_url}/bot{token}/{method}"``
exactly as it calls ``https://bot-api.zaloplatforms.com/bot<TOKEN>/<method>``::

    async with FakeZaloBot() as fake:
        fake.user_sends_text("e4ea2cd5189df1c3a88c", "xin chào")        # queued for getUpdates
        ...                                                             # run the app's poller
        [sent] = await fake.wait_for_sent(chat_id="e4ea2cd5189df1c3a88c")

Facts and sources (/work/shared/notes/platforms.md section 4; the docs copy is
XuanNguyenNB/QuanLyThuChi_Bot_Telegram_Zalom docs/ZALO_BOT_API.md, a copy of bot.zaloplatforms.com/docs):

* Token ``<bot_id>:<secret>``; every method is ``POST`` with a JSON body (the fake also accepts
  GET, query strings and form bodies). Envelope ``{"ok": true, "result": ...}`` /
  ``{"ok": false, "error_code": <int>, "description": <str>}`` (OpenClaw ``api.ts``).
* ``getMe`` -> ``{id, account_name, account_type, can_join_groups}`` (docs copy).
* ``getUpdates`` ``{timeout: "30"}`` (seconds, a string; default 30) long-polls and returns ONE
  update object as ``result`` - not an array - and documents no ``offset`` (docs copy, OpenClaw).
  The fake therefore hands each update out exactly once (consumed when returned) and ignores
  ``offset``/``limit``/``allowed_updates`` (python-zalo-bot sends them). No update within
  ``min(timeout, max_long_poll)`` -> ``error_code`` 408 "Request timeout" (OpenClaw
  ``isPollingTimeout``; 3p script matching "Request timeout"). Webhook set -> getUpdates fails.
* ``setWebhook {url (https), secret_token (8-256 chars, required)}`` -> ``{url, updated_at}``;
  ``getWebhookInfo`` -> ``{url, updated_at}``; ``deleteWebhook`` -> ``{url: "", updated_at}``.
  Zalo echoes the secret in header ``X-Bot-Api-Secret-Token`` (docs copy, OpenClaw).
* ``sendMessage {chat_id, text (1-2000 chars)}`` -> ``{message_id, date}`` (date in ms);
  ``sendPhoto {chat_id, photo (URL), caption <= 2000}``; ``sendSticker {chat_id, sticker}``;
  ``sendChatAction {chat_id, action: typing|upload_photo}`` answers just ``{"ok": true}``.
* Update: ``{event_name, message: {message_id, from {id, display_name, is_bot}, chat {id,
  chat_type: PRIVATE|GROUP}, date (ms), text | photo_url+caption | sticker}}``; event names
  ``message.text.received``, ``message.image.received``, ``message.sticker.received``,
  ``message.unsupported.received`` (OpenClaw ``api.ts``). The webhook envelope is disputed:
  shape "A" = that flat object (OpenClaw), shape "B" = ``{"ok": true, "result": <it>}``
  (python-zalo-bot README). ``make_update``/``deliver_webhook`` produce either.

UNCONFIRMED / invented (do not rely on them): HTTP status codes of errors (default: HTTP status =
``error_code`` like Telegram; ``errors_as_http_status=False`` answers HTTP 200 for everything),
all ``description`` wordings except "Request timeout", the wrong-token code (401), the
getUpdates-with-webhook code (409), rate limits (none documented; ``enforce_rate_limit`` answers
429), whether ``chat_id`` must have messaged the bot first (the fake requires it: 400).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "ApiRequest",
    "FakeZaloBot",
    "SentMessage",
    "ZaloBotApiError",
]

JSON = dict[str, Any]

MAX_TEXT_LENGTH = 2000
SECRET_MIN, SECRET_MAX = 8, 256
SECRET_HEADER = "X-Bot-Api-Secret-Token"
CHAT_ACTIONS = frozenset({"typing", "upload_photo"})
EVENT_TEXT = "message.text.received"
EVENT_IMAGE = "message.image.received"
EVENT_STICKER = "message.sticker.received"
EVENT_UNSUPPORTED = "message.unsupported.received"

DESC_TIMEOUT = "Request timeout"
DESC_UNAUTHORIZED = "Unauthorized"
DESC_NOT_FOUND = "Not Found"
DESC_CHAT_NOT_FOUND = "Bad Request: chat not found"
DESC_TEXT_EMPTY = "Bad Request: text is empty"
DESC_TEXT_TOO_LONG = f"Bad Request: text must be 1-{MAX_TEXT_LENGTH} characters"
DESC_WEBHOOK_ACTIVE = "Conflict: can't use getUpdates while webhook is active; use deleteWebhook first"

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: DESC_UNAUTHORIZED,
    403: "Forbidden",
    404: DESC_NOT_FOUND,
    408: DESC_TIMEOUT,
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass
class SentMessage:
    """One accepted send* call (sendMessage, sendPhoto, sendSticker)."""

    method: str
    chat_id: str
    text: str | None  # text for sendMessage, caption for sendPhoto
    message_id: str
    date: int  # ms
    params: JSON
    time: float
    photo: str | None = None
    sticker: str | None = None


@dataclass
class ApiRequest:
    """Every HTTP call the fake received, including rejected ones."""

    method: str
    params: JSON
    status: int
    response: Any
    time: float
    http_method: str = "POST"
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return isinstance(self.response, dict) and self.response.get("ok") is True

    @property
    def error_code(self) -> int | None:
        return self.response.get("error_code") if isinstance(self.response, dict) else None


class ZaloBotApiError(Exception):
    """Raise inside a method handler to answer ``{"ok": false, "error_code", "description"}``."""

    def __init__(self, error_code: int, description: str | None = None) -> None:
        self.error_code = error_code
        self.description = description or _DEFAULT_DESCRIPTIONS.get(error_code, "Error")
        super().__init__(f"{error_code}: {self.description}")

    def payload(self) -> JSON:
        return {"ok": False, "error_code": self.error_code, "description": self.description}


class _RawReply(Exception):  # noqa: N818 - control flow
    def __init__(self, status: int, body: str, content_type: str = "text/html") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


class _DropConnection(Exception):  # noqa: N818 - control flow
    pass


class _NoResult:
    """Marker: answer ``{"ok": true}`` without a ``result`` key (sendChatAction, per the docs)."""


@dataclass
class _Fault:
    method: str  # lower-cased or "*"
    error_code: int
    description: str | None
    remaining: int
    chat_id: str | None = None


@dataclass
class _RateLimit:
    per_second: int | None
    per_chat_per_second: int | None
    methods: frozenset[str]
    window: deque[float] = field(default_factory=deque)
    chat_windows: dict[str, deque[float]] = field(default_factory=dict)


def _nginx_page(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def _window_wait(window: deque[float], now: float, length: float, capacity: int) -> float:
    while window and window[0] <= now - length:
        window.popleft()
    if len(window) < capacity:
        return 0.0
    return window[len(window) - capacity] + length - now


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _unwrap(update: JSON) -> JSON:
    """Shape B ``{"ok": true, "result": {...}}`` -> the inner update; shape A unchanged."""
    if "event_name" not in update and isinstance(update.get("result"), dict):
        return update["result"]
    return update


class FakeZaloBot:
    """In-process fake of the Zalo Bot Platform API. See the module docstring."""

    def __init__(
        self,
        token: str = "1459232241454765289:fake-zalo-bot-secret",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_name: str = "bot.TestBot",
        account_type: str = "BASIC",
        can_join_groups: bool = False,
        max_long_poll: float = 1.0,
        max_text_length: int = MAX_TEXT_LENGTH,
        local_mode: bool = False,
        errors_as_http_status: bool = True,
    ) -> None:
        if not re.fullmatch(r"\d+:\S+", token):
            raise ValueError(f"not a Zalo bot token (<bot_id>:<secret>): {token!r}")
        self.token = token
        self.host = host
        self.bot_id = token.split(":", 1)[0]
        self.max_long_poll = max_long_poll
        self.max_text_length = max_text_length
        self.local_mode = local_mode  # allow http:// webhook URLs (e.g. the app on 127.0.0.1)
        self.errors_as_http_status = errors_as_http_status
        self.bot_info: JSON = {
            "id": self.bot_id,
            "account_name": account_name,
            "account_type": account_type,
            "can_join_groups": can_join_groups,
        }

        # Records (public).
        self.sent: list[SentMessage] = []
        self.requests: list[ApiRequest] = []
        self.stats: Counter[str] = Counter()
        self.chat_actions: list[JSON] = []
        self.webhook: JSON = {"url": "", "secret_token": None, "updated_at": 0}
        self.delivered: list[JSON] = []  # updates handed out by getUpdates, in order

        self._port = port
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._sent_event = asyncio.Event()
        self._updates_event = asyncio.Event()
        self._queue: deque[JSON] = deque()
        self._users: dict[str, JSON] = {}
        self._chats: dict[str, str] = {}  # chat_id -> chat_type
        self._msg_serial = itertools.count(1)
        self._faults: list[_Fault] = []
        self._outage_until: float | None = None
        self._outage_mode = "5xx"
        self._outage_status = 502
        self._outage_methods: frozenset[str] | None = None  # None = send* methods
        self._outage_hang: float | None = None
        self._rate_limit: _RateLimit | None = None

        self._handlers: dict[str, tuple[str, Callable[[JSON], Any]]] = {}
        for name, handler in {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "sendMessage": self._m_send_message,
            "sendPhoto": self._m_send_photo,
            "sendSticker": self._m_send_sticker,
            "sendChatAction": self._m_send_chat_action,
        }.items():
            self._handlers[name.lower()] = (name, handler)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeZaloBot:
        if self._runner is not None:
            return self
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeZaloBot:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("FakeZaloBot is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Stands for ``https://bot-api.zaloplatforms.com``: the app calls ``{base_url}/bot{token}/{method}``."""
        return self.url

    def method_url(self, method: str, token: str | None = None) -> str:
        return f"{self.base_url}/bot{token or self.token}/{method}"

    # ---------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str = "sendMessage",
        error_code: int = 500,
        description: str | None = None,
        count: int = 1,
        *,
        chat_id: str | int | None = None,
    ) -> None:
        """The next ``count`` calls of ``method`` ("*" = any) fail with ``error_code``.

        502/503/504 without a description answer an nginx HTML page (as a front-end would).
        """
        self._faults.append(
            _Fault(method.lower(), error_code, description, count, None if chat_id is None else str(chat_id))
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_outage(
        self,
        seconds: float | None,
        mode: str = "5xx",
        *,
        status: int = 502,
        methods: Iterable[str] | str | None = None,
        hang: float | None = None,
    ) -> None:
        """Outage for ``seconds`` (``math.inf`` = until cleared; None/0 clears it).

        mode "5xx" (nginx page), "timeout" (hold ``hang`` s, default until the outage ends, max 30,
        then 504) or "disconnect". ``methods``: None = send* methods, "all", or names.
        """
        if mode not in ("5xx", "timeout", "disconnect"):
            raise ValueError(f"unknown outage mode {mode!r}")
        if not seconds:
            self._outage_until = None
            return
        self._outage_until = time.monotonic() + seconds
        self._outage_mode = mode
        self._outage_status = status
        self._outage_hang = hang
        if methods is None:
            self._outage_methods = None
        elif methods == "all":
            self._outage_methods = frozenset({"*"})
        else:
            names = [methods] if isinstance(methods, str) else list(methods)
            self._outage_methods = frozenset(m.lower() for m in names)

    def clear_outage(self) -> None:
        self._outage_until = None

    @property
    def outage_active(self) -> bool:
        return self._outage_until is not None and time.monotonic() < self._outage_until

    def enforce_rate_limit(
        self,
        per_second: int | None = 30,
        per_chat_per_second: int | None = None,
        *,
        methods: Iterable[str] = ("sendMessage", "sendPhoto", "sendSticker"),
    ) -> None:
        """Answer 429 over the given rates (INVENTED - Zalo documents no limits)."""
        self._rate_limit = _RateLimit(per_second, per_chat_per_second, frozenset(m.lower() for m in methods))

    def disable_rate_limit(self) -> None:
        self._rate_limit = None

    # ---------------------------------------------------------------- updates (the users' side)

    def add_user(self, user_id: str | int, display_name: str = "Lan", *, chat_type: str = "PRIVATE") -> JSON:
        """Make a user (and their chat) known, so the bot may message them."""
        uid = str(user_id)
        user = {"id": uid, "display_name": display_name, "is_bot": False}
        self._users[uid] = user
        self._chats.setdefault(uid, chat_type)
        return dict(user)

    def make_update(
        self,
        event_name: str,
        user_id: str | int,
        *,
        text: str | None = None,
        display_name: str = "Lan",
        chat_id: str | int | None = None,
        chat_type: str = "PRIVATE",
        message_id: str | None = None,
        date: int | None = None,
        shape: str = "A",
        **message_fields: Any,
    ) -> JSON:
        """Build an update WITHOUT queueing it (for webhook tests); the user/chat become known.

        ``shape="A"``: flat ``{"event_name", "message"}`` (OpenClaw); ``shape="B"``:
        ``{"ok": true, "result": {"event_name", "message"}}`` (python-zalo-bot README).
        ``message_fields`` (photo_url, caption, sticker, ...) are added to ``message``.
        """
        if shape not in ("A", "B"):
            raise ValueError("shape must be 'A' or 'B'")
        uid = str(user_id)
        if uid not in self._users:
            self.add_user(uid, display_name)
        cid = uid if chat_id is None else str(chat_id)
        self._chats.setdefault(cid, chat_type)
        message: JSON = {
            "message_id": message_id or secrets.token_hex(10),
            "from": {"id": uid, "display_name": self._users[uid]["display_name"], "is_bot": False},
            "chat": {"id": cid, "chat_type": chat_type},
            "date": date if date is not None else _now_ms(),
        }
        if text is not None:
            message["text"] = text
        message.update(message_fields)
        update: JSON = {"event_name": event_name, "message": message}
        return {"ok": True, "result": update} if shape == "B" else update

    def enqueue(self, update: JSON) -> JSON:
        """Queue a prebuilt update (either shape; stored flat) for getUpdates."""
        flat = copy.deepcopy(_unwrap(update))
        self._queue.append(flat)
        self._wake_pollers()
        return flat

    def _emit(self, update: JSON, queue: bool) -> JSON:
        return self.enqueue(update) if queue else update

    def user_sends_text(
        self,
        user_id: str | int,
        text: str,
        *,
        display_name: str = "Lan",
        queue: bool = True,
        shape: str = "A",
    ) -> JSON:
        """A ``message.text.received`` update, queued for getUpdates (shape A) unless ``queue=False``."""
        update = self.make_update(EVENT_TEXT, user_id, text=text, display_name=display_name, shape=shape)
        return self._emit(update, queue)

    def user_sends_image(
        self,
        user_id: str | int,
        photo_url: str = "https://fake-zalo-cdn.example/photo.jpg",
        caption: str | None = None,
        *,
        queue: bool = True,
        shape: str = "A",
    ) -> JSON:
        fields: JSON = {"photo_url": photo_url}
        if caption is not None:
            fields["caption"] = caption
        return self._emit(self.make_update(EVENT_IMAGE, user_id, shape=shape, **fields), queue)

    def user_sends_sticker(
        self,
        user_id: str | int,
        sticker: str = "bfe458bf64fa8da4d4eb",
        *,
        queue: bool = True,
        shape: str = "A",
    ) -> JSON:
        return self._emit(self.make_update(EVENT_STICKER, user_id, shape=shape, sticker=sticker), queue)

    def user_sends_unsupported(self, user_id: str | int, *, queue: bool = True, shape: str = "A") -> JSON:
        return self._emit(self.make_update(EVENT_UNSUPPORTED, user_id, shape=shape), queue)

    @property
    def pending_updates(self) -> list[JSON]:
        return [copy.deepcopy(u) for u in self._queue]

    async def deliver_webhook(
        self,
        updates: Iterable[JSON] | None = None,
        *,
        url: str | None = None,
        shape: str = "A",
        secret_token: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - HTTP client timeout per delivery run
    ) -> list[int]:
        """POST updates to the webhook (JSON body in ``shape``, header ``X-Bot-Api-Secret-Token``).

        ``updates`` None = the pending queue (delivered ones are removed; stops at the first
        failure, status 0 = connection error). ``url`` overrides the stored URL; ``secret_token``
        overrides the stored secret (to test rejection). Returns the HTTP statuses.
        """
        target = url or self.webhook.get("url")
        if not target:
            raise RuntimeError("no webhook set and no url given")
        from_queue = updates is None
        batch = list(self._queue) if updates is None else [_unwrap(u) for u in updates]
        secret = secret_token if secret_token is not None else self.webhook.get("secret_token")
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SECRET_HEADER] = secret
        statuses: list[int] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            for update in batch:
                body = {"ok": True, "result": update} if shape == "B" else update
                try:
                    async with session.post(target, data=_dumps(body).encode(), headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                statuses.append(status)
                if not 200 <= status < 300:
                    break
                if from_queue and update in self._queue:
                    self._queue.remove(update)
        return statuses

    # ---------------------------------------------------------------- inspection helpers

    def sent_to(self, chat_id: str | int) -> list[SentMessage]:
        return [s for s in self.sent if s.chat_id == str(chat_id)]

    def texts_to(self, chat_id: str | int, *, methods: Iterable[str] = ("sendMessage",)) -> list[str]:
        wanted = set(methods)
        return [s.text or "" for s in self.sent if s.chat_id == str(chat_id) and s.method in wanted]

    def last_sent(self, chat_id: str | int | None = None) -> SentMessage:
        records = self.sent if chat_id is None else self.sent_to(chat_id)
        if not records:
            raise AssertionError(f"nothing was sent{'' if chat_id is None else f' to {chat_id}'}")
        return records[-1]

    def calls(self, method: str) -> list[ApiRequest]:
        return [r for r in self.requests if r.method.lower() == method.lower()]

    def clear_records(self) -> None:
        self.sent.clear()
        self.requests.clear()
        self.stats.clear()
        self.chat_actions.clear()
        self.delivered.clear()

    async def wait_for_sent(
        self,
        what: int | Callable[[SentMessage], bool] = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline is this helper's whole point
        *,
        chat_id: str | int | None = None,
    ) -> list[SentMessage]:
        """Wait until ``sent`` holds ``what`` records (int) or one matching ``what`` (predicate)."""
        if callable(what):
            predicate, need = what, 1
        else:
            predicate, need = (lambda _s: True), int(what)
        cid = None if chat_id is None else str(chat_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._sent_event
            found = [s for s in self.sent if (cid is None or s.chat_id == cid) and predicate(s)]
            if len(found) >= need:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._describe_wait_failure(need, len(found), timeout, cid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _describe_wait_failure(self, need: int, got: int, timeout: float, chat_id: str | None) -> str:
        where = "" if chat_id is None else f" to chat {chat_id}"
        lines = [f"wait_for_sent: wanted {need} matching send(s){where}, got {got} within {timeout}s."]
        lines.append(f"Sent so far ({len(self.sent)}):")
        lines.extend(f"  {s.method} chat={s.chat_id} text={(s.text or '')[:80]!r}" for s in self.sent[-20:])
        failed = [r for r in self.requests if not r.ok and r.error_code != 408][-10:]
        if failed:
            lines.append("Recent failed API calls:")
            lines.extend(f"  {r.method} -> {r.status} {r.response!r:.120}" for r in failed)
        return "\n".join(lines)

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        body = {"ok": False, "error_code": 404, "description": DESC_NOT_FOUND}
        return web.json_response(body, status=404 if self.errors_as_http_status else 200)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        raw_method = request.match_info["method"]
        known = self._handlers.get(raw_method.lower())
        method = known[0] if known else raw_method
        params: JSON = {}
        started = time.time()
        status = 200
        body: Any
        try:
            params = await self._read_params(request)
            if request.match_info["token"] != self.token:
                raise ZaloBotApiError(401, DESC_UNAUTHORIZED)
            if known is None:
                raise ZaloBotApiError(404, DESC_NOT_FOUND)
            await self._apply_faults(method, params)
            self._check_rate_limit(method, params)
            result = await known[1](params)
        except ZaloBotApiError as exc:
            body = exc.payload()
            status = exc.error_code if self.errors_as_http_status and 400 <= exc.error_code < 600 else 200
            self.stats[f"error_{exc.error_code}"] += 1
            response: web.StreamResponse = web.json_response(body, status=status, dumps=_dumps)
        except _RawReply as raw:
            status, body = raw.status, raw.body
            response = web.Response(status=raw.status, text=raw.body, content_type=raw.content_type)
        except _DropConnection:
            self._log(method, params, 0, None, started, request)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError from None
        else:
            body = {"ok": True} if result is _NoResult else {"ok": True, "result": result}
            response = web.json_response(body, dumps=_dumps)
        ok = isinstance(body, dict) and body.get("ok") is True
        self.stats["ok" if ok else "errors"] += 1
        self.stats[f"status_{status}"] += 1
        self._log(method, params, status, body, started, request)
        return response

    def _log(
        self, method: str, params: JSON, status: int, body: Any, started: float, request: web.Request
    ) -> None:
        self.requests.append(
            ApiRequest(
                method=method,
                params=params,
                status=status,
                response=body,
                time=started,
                http_method=request.method,
                content_type=request.content_type if "Content-Type" in request.headers else "",
            )
        )

    @staticmethod
    async def _read_params(request: web.Request) -> JSON:
        params: JSON = dict(request.query)
        if request.method != "POST" or not request.body_exists:
            return params
        ctype = request.content_type
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({k: str(v) for k, v in (await request.post()).items()})
            return params
        raw = await request.read()
        if not raw.strip():
            return params
        try:
            data = json.loads(raw)
        except ValueError:
            raise ZaloBotApiError(400, "Bad Request: can't parse JSON body") from None
        if not isinstance(data, dict):
            raise ZaloBotApiError(400, "Bad Request: JSON object expected")
        params.update(data)
        return params

    async def _apply_faults(self, method: str, params: JSON) -> None:
        lower = method.lower()
        chat_id = None if params.get("chat_id") is None else str(params["chat_id"])
        for fault in list(self._faults):
            if fault.method not in ("*", lower):
                continue
            if fault.chat_id is not None and fault.chat_id != chat_id:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            self.stats["injected"] += 1
            if fault.description is None and fault.error_code in (502, 503, 504):
                raise _RawReply(fault.error_code, _nginx_page(fault.error_code))
            raise ZaloBotApiError(fault.error_code, fault.description)
        if not self.outage_active:
            return
        methods = self._outage_methods
        applies = lower.startswith("send") if methods is None else ("*" in methods or lower in methods)
        if not applies:
            return
        self.stats["outage"] += 1
        if self._outage_mode == "timeout":
            remaining = (self._outage_until or 0) - time.monotonic()
            hang = self._outage_hang if self._outage_hang is not None else min(max(remaining, 0), 30.0)
            await self._sleep(hang)
            raise _RawReply(504, _nginx_page(504))
        if self._outage_mode == "disconnect":
            raise _DropConnection()
        raise _RawReply(self._outage_status, _nginx_page(self._outage_status))

    def _check_rate_limit(self, method: str, params: JSON) -> None:
        limit = self._rate_limit
        if limit is None or method.lower() not in limit.methods:
            return
        now = time.monotonic()
        chat_id = str(params.get("chat_id"))
        waits = []
        if limit.per_second:
            waits.append(_window_wait(limit.window, now, 1.0, limit.per_second))
        if limit.per_chat_per_second:
            window = limit.chat_windows.setdefault(chat_id, deque())
            waits.append(_window_wait(window, now, 1.0, limit.per_chat_per_second))
        if max(waits, default=0.0) > 0:
            self.stats["rate_limited"] += 1
            raise ZaloBotApiError(429, "Too Many Requests")
        limit.window.append(now)
        limit.chat_windows.setdefault(chat_id, deque()).append(now)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _wake_pollers(self) -> None:
        event, self._updates_event = self._updates_event, asyncio.Event()
        event.set()

    def _notify_sent(self) -> None:
        event, self._sent_event = self._sent_event, asyncio.Event()
        event.set()

    # ---------------------------------------------------------------- methods

    def _chat(self, params: JSON) -> str:
        raw = params.get("chat_id")
        if raw is None or isinstance(raw, bool) or str(raw).strip() == "":
            raise ZaloBotApiError(400, "Bad Request: chat_id is required")
        chat_id = str(raw)
        if chat_id not in self._chats:
            raise ZaloBotApiError(400, DESC_CHAT_NOT_FOUND)
        return chat_id

    def _check_text(self, value: Any, *, name: str, required: bool) -> str | None:
        if value is None or value == "":
            if required:
                raise ZaloBotApiError(
                    400, DESC_TEXT_EMPTY if name == "text" else f"Bad Request: {name} is empty"
                )
            return None
        if not isinstance(value, str):
            raise ZaloBotApiError(400, f"Bad Request: {name} must be a string")
        if len(value) > self.max_text_length:
            raise ZaloBotApiError(400, f"Bad Request: {name} must be 1-{self.max_text_length} characters")
        return value

    def _record(self, method: str, chat_id: str, params: JSON, text: str | None, **extra: Any) -> JSON:
        message_id = f"{next(self._msg_serial):04x}{secrets.token_hex(8)}"
        date = _now_ms()
        self.sent.append(
            SentMessage(
                method=method,
                chat_id=chat_id,
                text=text,
                message_id=message_id,
                date=date,
                params=copy.deepcopy(params),
                time=time.time(),
                **extra,
            )
        )
        self.stats[f"sent_{method}"] += 1
        self._notify_sent()
        return {"message_id": message_id, "date": date}

    async def _m_get_me(self, params: JSON) -> JSON:
        return dict(self.bot_info)

    async def _m_get_updates(self, params: JSON) -> JSON:
        if self.webhook.get("url"):
            raise ZaloBotApiError(409, DESC_WEBHOOK_ACTIVE)
        try:
            timeout = float(params.get("timeout", 30) or 0)
        except (TypeError, ValueError):
            raise ZaloBotApiError(400, "Bad Request: timeout must be a number") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(timeout, 0.0), self.max_long_poll)
        while True:
            event = self._updates_event
            if self._queue:
                update = self._queue.popleft()
                self.delivered.append(copy.deepcopy(update))
                self.stats["updates_delivered"] += 1
                return update
            remaining = deadline - loop.time()
            if remaining <= 0 or self._stopping.is_set():
                raise ZaloBotApiError(408, DESC_TIMEOUT)
            stop_wait = asyncio.ensure_future(self._stopping.wait())
            update_wait = asyncio.ensure_future(event.wait())
            try:
                await asyncio.wait(
                    {stop_wait, update_wait}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stop_wait.cancel()
                update_wait.cancel()

    async def _m_set_webhook(self, params: JSON) -> JSON:
        url = params.get("url")
        secret = params.get("secret_token")
        if not isinstance(url, str) or not url:
            raise ZaloBotApiError(400, "Bad Request: url is required")
        parts = urlsplit(url)
        allowed = ("https", "http") if self.local_mode else ("https",)
        if parts.scheme not in allowed or not parts.hostname:
            raise ZaloBotApiError(400, "Bad Request: url must be an HTTPS URL")
        if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX:
            raise ZaloBotApiError(
                400, f"Bad Request: secret_token must be {SECRET_MIN}-{SECRET_MAX} characters"
            )
        self.webhook = {"url": url, "secret_token": secret, "updated_at": _now_ms()}
        self._wake_pollers()
        return {"url": url, "updated_at": self.webhook["updated_at"]}

    async def _m_delete_webhook(self, params: JSON) -> JSON:
        self.webhook = {"url": "", "secret_token": None, "updated_at": _now_ms()}
        return {"url": "", "updated_at": self.webhook["updated_at"]}

    async def _m_get_webhook_info(self, params: JSON) -> JSON:
        return {"url": self.webhook.get("url", ""), "updated_at": self.webhook.get("updated_at", 0)}

    async def _m_send_message(self, params: JSON) -> JSON:
        chat_id = self._chat(params)
        text = self._check_text(params.get("text"), name="text", required=True)
        return self._record("sendMessage", chat_id, params, text)

    async def _m_send_photo(self, params: JSON) -> JSON:
        chat_id = self._chat(params)
        photo = params.get("photo")
        if not isinstance(photo, str) or not re.match(r"^https?://\S+$", photo):
            raise ZaloBotApiError(400, "Bad Request: photo must be an HTTP(S) URL")
        caption = self._check_text(params.get("caption"), name="caption", required=False)
        return self._record("sendPhoto", chat_id, params, caption, photo=photo)

    async def _m_send_sticker(self, params: JSON) -> JSON:
        chat_id = self._chat(params)
        sticker = params.get("sticker")
        if not isinstance(sticker, str) or not sticker.strip():
            raise ZaloBotApiError(400, "Bad Request: sticker is required")
        return self._record("sendSticker", chat_id, params, None, sticker=sticker)

    async def _m_send_chat_action(self, params: JSON) -> type[_NoResult]:
        chat_id = self._chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise ZaloBotApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append({"chat_id": chat_id, "action": action, "time": time.time()})
        return _NoResult
