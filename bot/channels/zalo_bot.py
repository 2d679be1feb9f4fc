"""Zalo Bot Platform adapter: Zalo's Telegram-like Bot API (`<base>/bot<TOKEN>/<method>`).

getUpdates long polling by default; webhook mode when ZALO_BOT_WEBHOOK_URL is set, with
Zalo's `X-Bot-Api-Secret-Token` header checked in constant time. Sources disagree on the
update envelope (flat `{event_name, message}` or `{ok, result: {...}}`, one update or a
list), so every shape is accepted. Replies use sendMessage (2,000 characters, counted here in
UTF-16 units as for the OA: the stricter reading) with numbered choices, since the API has no
keyboards. Facts: /work/shared/notes/platforms.md section 4.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.channels.base import ChannelContext, FloodCheck, Outgoing, Pace, Responder, Route, Unreachable
from bot.channels.pacing import Pacer
from bot.channels.telegram import split_text
from bot.channels.zalo_common import (
    Parts,
    WebhookRejected,
    ZaloChannel,
    post_json,
    read_json_body,
    rejection,
)
from bot.contracts.delivery import RateLimited, RecipientGone, Rejected, Transient
from bot.contracts.messages import IncomingMessage
from bot.settings import Settings
from bot.storage import inbound
from bot.storage.store import Store

log = logging.getLogger(__name__)

NAME = "zalobot"
MAX_TEXT = 2000  # sendMessage text: 1-2000 characters (UTF-16 units here, see above)
SECRET_HEADER = "X-Bot-Api-Secret-Token"
DEFAULT_WEBHOOK_PATH = "/zalobot/webhook"
POLL_TIMEOUT = 30  # seconds Zalo holds a getUpdates call open
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)
RATE_LIMIT_PAUSE = 1.0  # no retry-after is documented
POLL_BACKOFF_MAX = 30.0

EVENT_TEXT = "message.text.received"
OTHER_KINDS = {"image": "photo", "sticker": "sticker", "unsupported": "unsupported", "voice": "voice",
               "document": "document", "video": "video", "file": "document", "location": "location"}


class ZaloBotApiError(Exception):
    """`{"ok": false, "error_code", "description"}` (or a non-2xx status)."""

    def __init__(self, code: int, description: str, retry_after: float | None = None):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


def webhook_secret(settings: Settings) -> str:
    """ZALO_BOT_WEBHOOK_SECRET, or one derived from the token (stable across processes)."""
    if settings.zalo_bot_webhook_secret:
        return settings.zalo_bot_webhook_secret
    return hashlib.sha256(f"zalobot-secret:{settings.zalo_bot_token}".encode()).hexdigest()


def webhook_target(settings: Settings) -> tuple[str, str]:
    """(URL given to Zalo, path we listen on): a bare base URL gets /zalobot/webhook appended."""
    url = settings.zalo_bot_webhook_url.rstrip("/")
    path = urlsplit(url).path
    if not path:
        return url + DEFAULT_WEBHOOK_PATH, DEFAULT_WEBHOOK_PATH
    return url, path


def updates_in(data: Any) -> list[dict[str, Any]]:
    """Every update in a webhook body or getUpdates result, whatever the envelope."""
    if isinstance(data, list):
        return [u for item in data for u in updates_in(item)]
    if not isinstance(data, dict):
        return []
    if "message" not in data and "event_name" not in data and "result" in data:
        return updates_in(data["result"])
    return [data] if isinstance(data.get("message"), dict) else []


def translate(update: dict[str, Any]) -> IncomingMessage | None:
    """One update -> IncomingMessage; None for bots, groups and updates without a sender.

    A citizen is identified by their private chat id, which is what sendMessage needs.
    """
    message = update.get("message") or {}
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    if sender.get("is_bot"):
        return None
    if str(chat.get("chat_type") or "PRIVATE").upper() != "PRIVATE":
        return None  # community teams work in Telegram; group chats here are not ours
    chat_id = str(chat.get("id") or sender.get("id") or "")
    if not chat_id:
        return None
    event = str(update.get("event_name") or "")
    text = message.get("text")
    if isinstance(text, str) and text.strip() and event in ("", EVENT_TEXT):
        return IncomingMessage(channel=NAME, user_id=chat_id, text=text)
    kind = event.removeprefix("message.").removesuffix(".received") if event.startswith("message.") else ""
    if not kind or kind == "text":
        kind = "image" if message.get("photo_url") else "sticker" if message.get("sticker") else "unsupported"
    return IncomingMessage(channel=NAME, user_id=chat_id, other=OTHER_KINDS.get(kind, kind))


def update_key(update: dict[str, Any]) -> str:
    message = update.get("message") or {}
    ident = message.get("message_id")
    if not ident:
        ident = hashlib.sha256(json.dumps(update, sort_keys=True, default=str).encode()).hexdigest()
    return inbound.event_key(NAME, update.get("event_name") or "", ident)


class ZaloBotChannel(ZaloChannel):
    name = NAME

    def __init__(self, settings: Settings, store: Store, respond: Responder, on_unreachable: Unreachable,
                 flood: FloodCheck | None = None):
        super().__init__(store, respond, on_unreachable,
                         Pacer(settings.zalo_bot_rate_per_second, per_chat_interval=settings.chat_send_interval_seconds), flood)
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.poll_timeout = POLL_TIMEOUT

    @classmethod
    def off_reason(cls, settings: Settings) -> str | None:
        return None if settings.zalo_bot_token else "ZALO_BOT_TOKEN is not set"

    @classmethod
    def create(cls, settings: Settings, context: ChannelContext) -> ZaloBotChannel:
        return cls(settings, context.store, context.respond, context.unreachable(NAME), context.flood)

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.zalo_bot_webhook_url)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        return self._session

    # --- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        if self.webhook_mode:
            url, _path = webhook_target(self.settings)
            await self.call("setWebhook", {"url": url, "secret_token": webhook_secret(self.settings)})
            log.info("zalobot: webhook mode")
        else:
            try:  # polling and a webhook exclude each other
                await self.call("deleteWebhook", {})
            except (ZaloBotApiError, Transient) as exc:
                log.warning("zalobot: deleteWebhook failed: %s", exc)
            self.spawn_loop(self._poll_loop())
            log.info("zalobot: long polling")
        self.spawn_loop(self.housekeeping())

    async def stop(self) -> None:
        await self.stop_tasks()
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, params: dict[str, Any], *, http_timeout: float | None = None) -> Any:
        """POST one method; the `result`, or ZaloBotApiError / Transient."""
        url = f"{self.settings.zalo_bot_api_base_url.rstrip('/')}/bot{self.settings.zalo_bot_token}/{method}"
        client_timeout = aiohttp.ClientTimeout(total=http_timeout) if http_timeout else HTTP_TIMEOUT
        status, body = await post_json(self._http(), url, lambda e: Transient(f"zalobot: {e}"),
                                       json=params, timeout=client_timeout)
        if not isinstance(body, dict):
            if status >= 500 or status in (408, 429):
                raise Transient(f"zalobot: HTTP {status}")
            raise ZaloBotApiError(status, f"HTTP {status}, not JSON")
        if body.get("ok") is True and status < 400:
            return body.get("result")
        code = body.get("error_code")
        code = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else status
        params_ = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        retry = params_.get("retry_after")
        raise ZaloBotApiError(code, str(body.get("description") or ""),
                              float(retry) if isinstance(retry, (int, float)) else None)

    # --- incoming -------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        """getUpdates forever; 408 means "nothing new", other failures back off."""
        backoff = 1.0
        while True:
            try:
                result = await self.call("getUpdates", {"timeout": str(self.poll_timeout)},
                                         http_timeout=self.poll_timeout + 10)
                backoff = 1.0
            except ZaloBotApiError as exc:
                if exc.code == 408:
                    continue
                log.warning("zalobot: getUpdates failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(POLL_BACKOFF_MAX, backoff * 2)
                continue
            except Transient as exc:
                log.warning("zalobot: getUpdates failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(POLL_BACKOFF_MAX, backoff * 2)
                continue
            for update in updates_in(result):
                self._accept_update(update)

    def _accept_update(self, update: dict[str, Any]) -> None:
        """Hand a citizen's update to a background task (bots and group chats are ignored)."""
        msg = translate(update)
        if msg is not None:
            self.take(update_key(update), msg.user_id, functools.partial(self._handle, msg))

    async def _handle(self, msg: IncomingMessage) -> None:
        if msg.text is not None:
            await self.on_text(msg.user_id, msg.text)
        else:
            await self.on_message(msg)

    def routes(self) -> list[Route]:
        if not self.webhook_mode:
            return []
        return [Route(webhook_target(self.settings)[1], self.handle_webhook)]

    async def probe(self) -> None:
        await self.call("getMe", {})

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """Secret header first, then body checks; duplicates are acknowledged and dropped."""
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return rejection(NAME, WebhookRejected(401, "no_secret"))
        if not hmac.compare_digest(given.encode(), webhook_secret(self.settings).encode()):
            return rejection(NAME, WebhookRejected(403, "secret"))
        try:
            _raw, data = await read_json_body(request, NAME)
        except WebhookRejected as exc:
            return rejection(NAME, exc)
        updates = updates_in(data)
        if not updates:  # authentic but not an update we know: acknowledge, or Zalo resends it
            log.info("zalobot: ignored a webhook body without a message (keys: %s)", ", ".join(sorted(data))[:200])
        for update in updates:
            self._accept_update(update)
        return web.Response(text="ok")

    # --- outgoing -------------------------------------------------------------------
    async def transmit(self, out: Outgoing, pace: Pace) -> None:
        send = Parts(pace, self._send)
        if out.reply.image_url:
            await send("sendPhoto", {"chat_id": out.chat_id, "photo": out.reply.image_url})
        for chunk in split_text(out.rendered.text, MAX_TEXT):
            await send("sendMessage", {"chat_id": out.chat_id, "text": chunk})

    async def _send(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self.call(method, params)
        except ZaloBotApiError as exc:
            raise self._translate_error(exc) from exc

    def _translate_error(self, exc: ZaloBotApiError) -> Exception:
        reason = f"zalobot error {exc.code}: {exc.description}"[:300]
        if exc.code == 429:
            seconds = exc.retry_after or RATE_LIMIT_PAUSE
            self.pacer.pause(seconds)
            return RateLimited(seconds, reason)
        if exc.code == 403:
            return RecipientGone(reason)
        if exc.code == 408 or exc.code >= 500:
            return Transient(reason)
        return Rejected(reason)
