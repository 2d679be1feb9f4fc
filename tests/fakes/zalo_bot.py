"""A protocol-faithful fake of the Zalo Bot Platform API (bot-api.zaloplatforms.com), for tests.

A real HTTP server on 127.0.0.1 (random port); the app calls ``f"{fake.base_url}/bot{token}/{method}"``
exactly as it calls ``https://bot-api.zaloplatforms.com/bot<TOKEN>/<method>``::

    async with FakeZaloBot() as fake:
        fake.user_sends_text("e4ea2cd5189df1c3a88c", "xin chào")        # queued for getUpdates
        ...                                                             # run the app's poller
        [sent] = await fake.wait_for_sent(chat_id="e4ea2cd5189df1c3a88c")

It models what the product calls (/work/shared/notes/platforms.md section 4; the docs copy is
XuanNguyenNB/QuanLyThuChi_Bot_Telegram_Zalom docs/ZALO_BOT_API.md, of bot.zaloplatforms.com/docs):

* Token ``<bot_id>:<secret>``; every method is ``POST`` with a JSON body. Envelope
  ``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code": <int>, "description": <str>}``
  (OpenClaw ``api.ts``).
* ``getMe`` -> ``{id, account_name, account_type, can_join_groups}``.
* ``getUpdates {timeout: "30"}`` long-polls and returns ONE update object as ``result``, not an
  array, with no ``offset`` (docs copy, OpenClaw): each update is handed out once. No update
  within ``min(timeout, max_long_poll)`` -> ``error_code`` 408 "Request timeout" (OpenClaw).
  While a webhook is set getUpdates fails (code 409 invented).
* ``setWebhook {url (https), secret_token (8-256 chars)}`` -> ``{url, updated_at}``;
  ``deleteWebhook`` -> ``{url: "", updated_at}``. Zalo echoes the secret in header
  ``X-Bot-Api-Secret-Token`` (docs copy, OpenClaw).
* ``sendMessage {chat_id, text (1-2000 chars)}`` -> ``{message_id, date}`` (date in ms);
  ``sendPhoto {chat_id, photo (URL), caption <= 2000}``. Lengths are counted in UTF-16 units
  (``_base.utf16_len``): the docs say "characters", the stricter reading is taken.
* Update: ``{event_name, message: {message_id, from {id, display_name, is_bot}, chat {id,
  chat_type: PRIVATE|GROUP}, date (ms), text | photo_url+caption | sticker}}``; event names
  ``message.text.received``, ``message.image.received``, ``message.sticker.received``,
  ``message.unsupported.received`` (OpenClaw). The webhook envelope is disputed: shape "A" is
  that flat object (OpenClaw), shape "B" is ``{"ok": true, "result": <it>}`` (python-zalo-bot
  README); ``make_update`` and ``deliver_webhook`` produce either.

UNCONFIRMED / invented: HTTP statuses of errors (default: HTTP status = ``error_code``;
``errors_as_http_status=False`` answers HTTP 200 for everything), descriptions other than
"Request timeout", the wrong-token code (401), rate limits (none documented; 429 here), and
whether ``chat_id`` must have messaged the bot first (the fake requires it: 400).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes._base import JSON, DropConnection, FakeServer, RawReply, abort, dumps, nginx_page, utf16_len

__all__ = ["FakeZaloBot", "SentMessage"]

MAX_TEXT_LENGTH = 2000
SECRET_MIN, SECRET_MAX = 8, 256
SECRET_HEADER = "X-Bot-Api-Secret-Token"
EVENT_TEXT = "message.text.received"
EVENT_IMAGE = "message.image.received"
EVENT_STICKER = "message.sticker.received"
EVENT_UNSUPPORTED = "message.unsupported.received"

DESCRIPTIONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                408: "Request timeout", 409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass
class SentMessage:
    """One accepted sendMessage / sendPhoto."""

    method: str
    chat_id: str
    text: str | None  # the text, or a photo's caption
    message_id: str
    params: JSON
    time: float
    photo: str | None = None


@dataclass
class ApiRequest:
    """Every call the fake received, including refused ones."""

    method: str
    params: JSON
    status: int
    response: Any

    @property
    def ok(self) -> bool:
        return isinstance(self.response, dict) and self.response.get("ok") is True

    @property
    def error_code(self) -> int | None:
        return self.response.get("error_code") if isinstance(self.response, dict) else None


class BotApiError(Exception):
    """Raised inside a method to answer ``{"ok": false, "error_code", "description"}``."""

    def __init__(self, error_code: int, description: str | None = None) -> None:
        self.error_code = error_code
        self.description = description or DESCRIPTIONS.get(error_code, "Error")
        super().__init__(f"{error_code}: {self.description}")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _unwrap(update: JSON) -> JSON:
    """Shape B ``{"ok": true, "result": {...}}`` -> the inner update; shape A unchanged."""
    if "event_name" not in update and isinstance(update.get("result"), dict):
        return update["result"]
    return update


class FakeZaloBot(FakeServer):
    """In-process fake of the Zalo Bot Platform API. See the module docstring."""

    def __init__(self, token: str = "1459232241454765289:fake-zalo-bot-secret", *, host: str = "127.0.0.1",
                 max_long_poll: float = 1.0, errors_as_http_status: bool = True) -> None:
        if not re.fullmatch(r"\d+:\S+", token):
            raise ValueError(f"not a Zalo bot token (<bot_id>:<secret>): {token!r}")
        super().__init__(host)
        self.token = token
        self.bot_id = token.split(":", 1)[0]
        self.max_long_poll = max_long_poll
        self.errors_as_http_status = errors_as_http_status
        self.sent: list[SentMessage] = []
        self.requests: list[ApiRequest] = []
        self.webhook: JSON = {"url": "", "secret_token": None, "updated_at": 0}
        self.delivered: list[JSON] = []  # updates handed out by getUpdates, in order
        self._port = 0
        self._updates_event = asyncio.Event()
        self._queue: deque[JSON] = deque()
        self._chats: set[str] = set()
        self._msg_serial = itertools.count(1)
        self._methods: dict[str, Callable[[JSON], Any]] = {
            "getme": self._get_me, "getupdates": self._get_updates, "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook, "sendmessage": self._send_message, "sendphoto": self._send_photo,
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeZaloBot:
        if not self.started:
            app = web.Application()
            app.router.add_route("POST", "/bot{token}/{method}", self._handle)
            app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
            self._port = await self._serve(app)
        return self

    @property
    def base_url(self) -> str:
        """Stands for ``https://bot-api.zaloplatforms.com``."""
        return f"http://{self.host}:{self._port}"

    def method_url(self, method: str, token: str | None = None) -> str:
        return f"{self.base_url}/bot{token or self.token}/{method}"

    def _target(self, name: str) -> str:
        return name.lower()

    def _outage_by_default(self, target: str) -> bool:
        return target.startswith("send")  # a default outage hits sending only

    # ---------------------------------------------------------------- fault injection

    def fail_next(self, method: str = "sendMessage", error_code: int = 500, description: str | None = None,
                  count: int = 1, *, chat_id: str | int | None = None) -> None:
        """The next ``count`` calls of ``method`` ("*" = any) fail with ``error_code``;
        502/503/504 without a description answer an nginx page (a front-end proxy)."""
        self._add_fault(method, error_code, description, count, chat_id)

    def enforce_rate_limit(self, per_second: int = 30, methods: Iterable[str] = ("sendMessage", "sendPhoto")) -> None:
        """Answer 429 beyond ``per_second`` sends (INVENTED: Zalo documents no limits)."""
        super().enforce_rate_limit(per_second, methods)

    # ---------------------------------------------------------------- updates (the users' side)

    def add_user(self, user_id: str | int) -> None:
        """Make a user's chat known, so the bot may message them."""
        self._chats.add(str(user_id))

    def make_update(self, event_name: str, user_id: str | int, *, text: str | None = None,
                    chat_type: str = "PRIVATE", message_id: str | None = None, shape: str = "A",
                    **message_fields: Any) -> JSON:
        """An update, not queued (for webhook tests); the chat becomes known.

        ``shape="A"``: flat ``{"event_name", "message"}``; ``shape="B"``: ``{"ok": true, "result": ...}``.
        ``message_fields`` (photo_url, caption, sticker, ...) are added to ``message``.
        """
        uid = str(user_id)
        self._chats.add(uid)
        message: JSON = {"message_id": message_id or secrets.token_hex(10),
                         "from": {"id": uid, "display_name": "Lan", "is_bot": False},
                         "chat": {"id": uid, "chat_type": chat_type}, "date": _now_ms()}
        if text is not None:
            message["text"] = text
        message.update(message_fields)
        update: JSON = {"event_name": event_name, "message": message}
        return {"ok": True, "result": update} if shape == "B" else update

    def enqueue(self, update: JSON) -> JSON:
        """Queue an update (either shape; stored flat) for getUpdates."""
        flat = copy.deepcopy(_unwrap(update))
        self._queue.append(flat)
        event, self._updates_event = self._updates_event, asyncio.Event()
        event.set()
        return flat

    def user_sends_text(self, user_id: str | int, text: str) -> JSON:
        """A ``message.text.received`` update, queued for getUpdates."""
        return self.enqueue(self.make_update(EVENT_TEXT, user_id, text=text))

    def user_sends_image(self, user_id: str | int, caption: str | None = None) -> JSON:
        fields: JSON = {"photo_url": "https://fake-zalo-cdn.example/photo.jpg"}
        if caption is not None:
            fields["caption"] = caption
        return self.enqueue(self.make_update(EVENT_IMAGE, user_id, **fields))

    @property
    def pending_updates(self) -> list[JSON]:
        return [copy.deepcopy(u) for u in self._queue]

    async def deliver_webhook(self, updates: Iterable[JSON], *, url: str | None = None, shape: str = "A",
                              secret_token: str | None = None) -> list[int]:
        """POST updates to the webhook as JSON in ``shape`` with the stored secret header
        (``secret_token`` overrides it, "" sends none); returns the HTTP statuses."""
        target = url or self.webhook.get("url")
        if not target:
            raise RuntimeError("no webhook set and no url given")
        secret = self.webhook.get("secret_token") if secret_token is None else secret_token
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SECRET_HEADER] = secret
        statuses = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for update in updates:
                body = {"ok": True, "result": _unwrap(update)} if shape == "B" else _unwrap(update)
                async with session.post(target, data=dumps(body).encode(), headers=headers) as resp:
                    await resp.read()
                    statuses.append(resp.status)
        return statuses

    # ---------------------------------------------------------------- inspection

    def sent_to(self, chat_id: str | int) -> list[SentMessage]:
        return [s for s in self.sent if s.chat_id == str(chat_id)]

    def texts_to(self, chat_id: str | int) -> list[str]:
        return [s.text or "" for s in self.sent_to(chat_id) if s.method == "sendMessage"]

    def calls(self, method: str) -> list[ApiRequest]:
        return [r for r in self.requests if r.method.lower() == method.lower()]

    async def wait_for_sent(self, what: int | Callable[[SentMessage], bool] = 1, timeout: float = 5.0,  # noqa: ASYNC109
                            *, chat_id: str | int | None = None) -> list[SentMessage]:
        """Wait until ``sent`` holds ``what`` records (int) or one matching ``what`` (predicate)."""
        cid = None if chat_id is None else str(chat_id)

        def describe(need: int, got: int) -> str:
            lines = [f"wait_for_sent: wanted {need} send(s){'' if cid is None else f' to {cid}'}, got {got} "
                     f"within {timeout}s. Sent so far:"]
            lines += [f"  {s.method} chat={s.chat_id} text={(s.text or '')[:80]!r}" for s in self.sent[-20:]]
            lines += [f"  failed: {r.method} -> {r.status} {r.response!r:.120}" for r in self.requests
                      if not r.ok and r.error_code != 408][-10:]
            return "\n".join(lines)

        return await self._wait_for(what, timeout, lambda s: cid is None or s.chat_id == cid, describe)

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        body = {"ok": False, "error_code": 404, "description": "Not Found"}
        return web.json_response(body, status=404 if self.errors_as_http_status else 200)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        target = method.lower()
        params: JSON = {}
        status = 200
        try:
            await self._apply_delay(target)
            params = await self._read_params(request)
            if request.match_info["token"] != self.token:
                raise BotApiError(401)
            handler = self._methods.get(target)
            if handler is None:
                raise BotApiError(404)
            fault = self._take_fault(target, None if params.get("chat_id") is None else str(params["chat_id"]))
            if fault is not None:
                if fault.description is None and fault.code in (502, 503, 504):
                    raise RawReply(fault.code, nginx_page(fault.code))
                raise BotApiError(fault.code, fault.description)
            self._apply_outage(target)
            if self._rate_limited(target):
                raise BotApiError(429)
            body: Any = {"ok": True, "result": await handler(params)}
            response: web.StreamResponse = web.json_response(body, dumps=dumps)
        except BotApiError as exc:
            body = {"ok": False, "error_code": exc.error_code, "description": exc.description}
            status = exc.error_code if self.errors_as_http_status and 400 <= exc.error_code < 600 else 200
            self.stats[f"error_{exc.error_code}"] += 1
            response = web.json_response(body, status=status, dumps=dumps)
        except RawReply as reply:
            status, body = reply.status, reply.body
            response = web.Response(status=status, text=reply.body, content_type=reply.content_type)
        except DropConnection:
            self.requests.append(ApiRequest(method, params, 0, None))
            abort(request)
        self.requests.append(ApiRequest(method, params, status, body))
        return response

    @staticmethod
    async def _read_params(request: web.Request) -> JSON:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise BotApiError(400, "Bad Request: can't parse JSON body") from None
        if not isinstance(data, dict):
            raise BotApiError(400, "Bad Request: JSON object expected")
        return data

    # ---------------------------------------------------------------- methods

    def _chat(self, params: JSON) -> str:
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            raise BotApiError(400, "Bad Request: chat_id is required")
        if chat_id not in self._chats:
            raise BotApiError(400, "Bad Request: chat not found")
        return chat_id

    @staticmethod
    def _text(value: Any, name: str, *, required: bool) -> str | None:
        if value is None or value == "":
            if required:
                raise BotApiError(400, f"Bad Request: {name} is empty")
            return None
        if not isinstance(value, str) or utf16_len(value) > MAX_TEXT_LENGTH:
            raise BotApiError(400, f"Bad Request: {name} must be 1-{MAX_TEXT_LENGTH} characters")
        return value

    def _record(self, method: str, chat_id: str, params: JSON, text: str | None, photo: str | None = None) -> JSON:
        message_id = f"{next(self._msg_serial):04x}{secrets.token_hex(8)}"
        self.sent.append(SentMessage(method, chat_id, text, message_id, copy.deepcopy(params), time.time(), photo))
        self._notify_sent()
        return {"message_id": message_id, "date": _now_ms()}

    async def _get_me(self, params: JSON) -> JSON:
        return {"id": self.bot_id, "account_name": "bot.TestBot", "account_type": "BASIC", "can_join_groups": False}

    async def _get_updates(self, params: JSON) -> JSON:
        if self.webhook.get("url"):
            raise BotApiError(409, "Conflict: can't use getUpdates while webhook is active; use deleteWebhook first")
        try:
            timeout = float(params.get("timeout", 30) or 0)
        except (TypeError, ValueError):
            raise BotApiError(400, "Bad Request: timeout must be a number") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(timeout, 0.0), self.max_long_poll)
        while not self._queue:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._stopping.is_set():
                raise BotApiError(408)
            waiters = {asyncio.ensure_future(self._stopping.wait()), asyncio.ensure_future(self._updates_event.wait())}
            try:
                await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        update = self._queue.popleft()
        self.delivered.append(copy.deepcopy(update))
        return update

    async def _set_webhook(self, params: JSON) -> JSON:
        url, secret = params.get("url"), params.get("secret_token")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme != "https" or not parts.hostname:
            raise BotApiError(400, "Bad Request: url must be an HTTPS URL")
        if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX:
            raise BotApiError(400, f"Bad Request: secret_token must be {SECRET_MIN}-{SECRET_MAX} characters")
        self.webhook = {"url": url, "secret_token": secret, "updated_at": _now_ms()}
        return {"url": url, "updated_at": self.webhook["updated_at"]}

    async def _delete_webhook(self, params: JSON) -> JSON:
        self.webhook = {"url": "", "secret_token": None, "updated_at": _now_ms()}
        return {"url": "", "updated_at": self.webhook["updated_at"]}

    async def _send_message(self, params: JSON) -> JSON:
        chat_id = self._chat(params)
        return self._record("sendMessage", chat_id, params, self._text(params.get("text"), "text", required=True))

    async def _send_photo(self, params: JSON) -> JSON:
        chat_id = self._chat(params)
        photo = params.get("photo")
        if not isinstance(photo, str) or not re.match(r"^https?://\S+$", photo):
            raise BotApiError(400, "Bad Request: photo must be an HTTP(S) URL")
        caption = self._text(params.get("caption"), "caption", required=False)
        return self._record("sendPhoto", chat_id, params, caption, photo)
