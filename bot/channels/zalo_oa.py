"""Zalo Official Account adapter (OA API v3): signed webhooks in, consultation messages out.

Zalo posts events to our webhook (`routes`, served by bot/web.py). We check the body size, the
`X-ZEvent-Signature` (SHA-256 of app id + raw body + timestamp + OA secret key), the
timestamp's age and whether the event was seen before (Zalo retries), answer 200 at once and
handle the event in a background task: Zalo gives a webhook about two seconds.

Replies go out through POST /v3.0/oa/message/cs with the OA access token, which
bot/storage/tokens.py keeps fresh and stored. Choices are shown as Zalo button templates (at
most five buttons each, every button sending back its number) above the usual "Gõ 1, 2 hoặc
3" hint, so typing the number works too; if Zalo refuses the template, numbered text is sent
instead from then on. Facts and their sources: /work/shared/notes/platforms.md section 3.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from bot.channels.base import ChannelContext, FloodCheck, Outgoing, Pace, Responder, Route, Unreachable
from bot.channels.choices import Rendered
from bot.channels.pacing import Pacer
from bot.channels.telegram import split_text, utf16_len
from bot.channels.zalo_common import (
    Parts,
    WebhookRejected,
    ZaloChannel,
    post_json,
    read_json_body,
    rejection,
)
from bot.contracts.delivery import OutsideWindow, RateLimited, RecipientGone, Rejected, Transient
from bot.contracts.messages import IncomingMessage
from bot.settings import Settings
from bot.storage import inbound
from bot.storage.pending import DATABASE_ERRORS
from bot.storage.store import Store
from bot.storage.tokens import RotatingTokens, TokenError

log = logging.getLogger(__name__)

NAME = "zalo"
# Consultation text limit per a reseller's docs (UNCONFIRMED), like every length here counted
# in UTF-16 units: Zalo does not say how it counts, and UTF-16 units (an emoji counts two) are
# never fewer than characters, so text cut to fit them fits either way.
MAX_TEXT = 2000
MAX_BUTTONS = 5  # per button template
MAX_BUTTON_TITLE = 100
SIGNATURE_HEADER = "X-ZEvent-Signature"
PATH_CS = "/v3.0/oa/message/cs"
PATH_TOKEN = "/v4/oa/access_token"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)

ERR_RATE_LIMIT = -32
ERR_NOT_FOLLOWER = -213
TOKEN_ERRORS = frozenset({-216, -220})  # -216 invalid/expired (confirmed), -220 expired or removed (3p)
ERR_OUTSIDE_WINDOW = -230
RATE_LIMIT_PAUSE = 2.0  # Zalo sends no retry-after; pause the channel this long

SEED_LIFETIME = dt.timedelta(hours=1)  # lifetime assumed for a configured token (older guides: 1 h)
MIN_REFRESH_SLEEP = 0.5
REFRESH_RETRY_SECONDS = 60.0
NO_TOKEN_POLL_SECONDS = 30.0  # while the app is not authorised yet

OTHER_EVENTS = {  # user_send_<kind>: content we cannot read -> "please type your question"
    "user_send_image", "user_send_gif", "user_send_sticker", "user_send_link", "user_send_audio",
    "user_send_video", "user_send_file", "user_send_location", "user_send_business_card",
}

API_WINDOW_REASON = "zalo: citizen has not written to the OA for 7 days (error -230)"


class MessageRefused(Rejected):
    """Zalo refused this message itself (bad parameter, unknown template...), not our token."""


def signature(app_id: str, body: bytes, timestamp: str, secret: str) -> str:
    """Hex SHA-256 of app id + raw body + timestamp + OA secret key (plain hash, not HMAC)."""
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret.encode()).hexdigest()


def signature_ok(header: str | None, app_id: str, body: bytes, timestamp: str, secret: str) -> bool:
    """Constant-time check of `mac=<hex>` (the prefix is optional, as some senders omit it)."""
    given = (header or "").strip()
    if given.lower().startswith("mac="):
        given = given[4:]
    expected = signature(app_id, body, timestamp, secret)
    return hmac.compare_digest(given.lower().encode(), expected.encode())


def citizen_of(event: dict[str, Any]) -> str:
    """The citizen an event comes from: the sender of a user_send_* event, the follower of a
    follow/unfollow; "" for receipts and the OA's own messages (sent by the OA)."""
    name = str(event.get("event_name", ""))
    if name in ("follow", "unfollow"):
        who = event.get("follower")
    elif name.startswith("user_send_"):
        who = event.get("sender")
    else:
        return ""
    return str(who.get("id") or "") if isinstance(who, dict) else ""


class ZaloOAChannel(ZaloChannel):
    name = NAME

    def __init__(self, settings: Settings, store: Store, respond: Responder, on_unreachable: Unreachable,
                 report_state: Callable[[str], None] | None = None, flood: FloodCheck | None = None):
        super().__init__(store, respond, on_unreachable,
                         Pacer(settings.zalo_oa_rate_per_second, per_chat_interval=settings.chat_send_interval_seconds), flood)
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.tokens = RotatingTokens(
            store.sessions, f"zalo_oa:{settings.zalo_oa_app_id}", self._call_oauth,
            seed_access=settings.zalo_oa_access_token, seed_refresh=settings.zalo_oa_refresh_token,
            seed_lifetime=SEED_LIFETIME)
        self.buttons = settings.zalo_oa_interactive_buttons
        self._report_state = report_state or (lambda _state: None)

    @classmethod
    def off_reason(cls, settings: Settings) -> str | None:
        missing = settings.zalo_oa_missing
        if len(missing) == 2:
            return "ZALO_OA_APP_ID is not set"
        return f"{', '.join(missing)} not set" if missing else None

    @classmethod
    def create(cls, settings: Settings, context: ChannelContext) -> ZaloOAChannel:
        if not settings.zalo_oa_app_secret:
            log.warning("zalo: ZALO_OA_APP_SECRET is empty; token refresh will send ZALO_OA_SECRET_KEY instead")
        return cls(settings, context.store, context.respond, context.unreachable(NAME),
                   functools.partial(context.report_state, NAME), context.flood)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        return self._session

    # --- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self.tokens.load()
        except TokenError as exc:  # not authorised yet: wait for `python -m bot zalo authorize`
            if not exc.permanent:
                raise
            log.warning("zalo: %s; run `python -m bot zalo authorize`", exc)
            self._report_state(f"down: {exc} (run python -m bot zalo authorize)")
        self.spawn_loop(self._refresh_loop())
        self.spawn_loop(self.housekeeping())
        log.info("zalo: official account webhook at %s", self.settings.zalo_oa_webhook_path)

    async def stop(self) -> None:
        await self.stop_tasks()
        if self._session is not None:
            await self._session.close()

    async def _refresh_loop(self) -> None:
        """Refresh the access token at 80% of its lifetime (the API refusing it also triggers one)."""
        while not self.tokens.loaded:  # no pair yet: adopt the one `zalo authorize` stores
            await asyncio.sleep(NO_TOKEN_POLL_SECONDS)
            try:
                await self.tokens.load()
                self._report_state("on")
            except TokenError:
                pass
        while True:
            await asyncio.sleep(max(MIN_REFRESH_SLEEP, self.tokens.seconds_until_due()))
            try:
                await self.tokens.refresh()
                self._report_state("on")
            except TokenError as exc:
                self._report_state(f"down: {exc}")
                await asyncio.sleep(REFRESH_RETRY_SECONDS)
            except Exception:
                log.exception("zalo: token refresh failed")
                await asyncio.sleep(REFRESH_RETRY_SECONDS)

    async def _call_oauth(self, refresh_token: str) -> tuple[str, str, int]:
        """POST the refresh token to Zalo's OAuth host: (access, refresh, lifetime) or TokenError."""
        settings = self.settings
        url = settings.zalo_oa_oauth_base_url.rstrip("/") + PATH_TOKEN
        form = {"refresh_token": refresh_token, "app_id": settings.zalo_oa_app_id, "grant_type": "refresh_token"}
        headers = {"secret_key": settings.zalo_oa_app_secret or settings.zalo_oa_secret_key}
        status, body = await post_json(self._http(), url, lambda e: TokenError(f"token refresh failed: {e}"),
                                       data=form, headers=headers, timeout=HTTP_TIMEOUT)
        if status >= 500 or body is None:
            raise TokenError(f"token refresh failed: HTTP {status}")
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            detail = body if not isinstance(body, dict) else (
                body.get("error_description") or body.get("error_reason") or body.get("message") or body)
            raise TokenError(f"token refresh refused (HTTP {status}): {str(detail)[:200]}", permanent=True)
        try:
            expires_in = int(str(body.get("expires_in", "3600")))  # a string in Zalo's answers
        except ValueError:
            expires_in = 3600
        return str(body["access_token"]), str(body.get("refresh_token") or refresh_token), max(60, expires_in)

    # --- webhook ------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [Route(self.settings.zalo_oa_webhook_path, self.handle_webhook)]

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """Verify, de-duplicate, acknowledge; the event itself is handled in the background."""
        try:
            event, raw = await self._verify(request)
        except WebhookRejected as exc:
            return rejection(NAME, exc)
        self.take(self.event_key(event, raw), citizen_of(event), functools.partial(self.handle_event, event))
        return web.Response(text="ok")

    async def _verify(self, request: web.Request) -> tuple[dict[str, Any], bytes]:
        """The signed, fresh event and its raw body; WebhookRejected when it must be refused."""
        raw, event = await read_json_body(request, NAME)
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(401, "no_signature")
        settings = self.settings
        timestamp = event.get("timestamp")
        timestamp = str(timestamp) if isinstance(timestamp, (str, int)) and not isinstance(timestamp, bool) else ""
        if not signature_ok(header, settings.zalo_oa_app_id, raw, timestamp, settings.zalo_oa_secret_key):
            raise WebhookRejected(403, "signature")
        if str(event.get("app_id", "")) != settings.zalo_oa_app_id:
            raise WebhookRejected(403, "app_id")
        try:
            age = abs(time.time() - int(timestamp) / 1000)
        except ValueError:
            raise WebhookRejected(403, "stale") from None
        if age > settings.zalo_oa_webhook_max_age_seconds:
            raise WebhookRejected(403, "stale")
        return event, raw

    @staticmethod
    def event_key(event: dict[str, Any], raw: bytes) -> str:
        """Zalo's message id when there is one, else a hash of the whole signed body."""
        name = str(event.get("event_name", ""))
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        if message.get("msg_id"):
            return inbound.event_key(NAME, name, message["msg_id"])
        return inbound.event_key(NAME, name, hashlib.sha256(raw).hexdigest())

    # --- incoming -------------------------------------------------------------------
    async def handle_event(self, event: dict[str, Any]) -> None:
        """Route one verified event: text to the handlers, follow/unfollow, other content."""
        name = str(event.get("event_name", ""))
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        user_id = citizen_of(event)
        if name == "user_send_text" and user_id:
            text = message.get("text")
            if isinstance(text, str):
                await self.on_text(user_id, text)
        elif name == "follow" and user_id:  # the welcome message is the /start menu
            await self.on_message(IncomingMessage(channel=NAME, user_id=user_id, text="/start"))
        elif name == "unfollow" and user_id:
            await self._mark_gone(user_id)
        elif name in OTHER_EVENTS and user_id:
            kind = name.removeprefix("user_send_")
            await self.on_message(IncomingMessage(channel=NAME, user_id=user_id, other=kind))
        elif name == "anonymous_send_text":
            # A chat from someone who has not shared their id with the OA: the OA API cannot
            # reply by user id, so it is not answered; say so, operators may wonder.
            log.info("zalo: anonymous_send_text not answered (the OA API replies to known users only)")
        else:  # delivery/seen receipts, the OA's own messages: nothing to answer
            log.debug("zalo: ignored event %s", name)

    # --- outgoing -------------------------------------------------------------------
    async def transmit(self, out: Outgoing, pace: Pace) -> None:
        reply, rendered = out.reply, out.rendered
        send = Parts(pace, functools.partial(self._send_message, out.chat_id))
        if reply.image_url:
            await send({"attachment": {"type": "template", "payload": {
                "template_type": "media", "elements": [{"media_type": "image", "url": reply.image_url}]}}})
        text = rendered.text
        if self.buttons and rendered.actions and not rendered.quiz:
            shown = await self._send_templates(send, rendered)
            if shown is None:
                return
            if shown:  # the body went out with the first buttons: list only the choices left
                first = rendered.start + shown
                rest = rendered.labels[shown:]
                text = "\n".join([f"{first + i}. {label}" for i, label in enumerate(rest)] + [rendered.prompt])
        for chunk in split_text(text, MAX_TEXT):
            await send({"text": chunk})

    async def _send_templates(self, send: Parts, rendered: Rendered) -> int | None:
        """The choices as button templates; None when all went out, else how many choices did
        before Zalo refused the template (it is then not used again by this process)."""
        messages = button_templates(rendered)
        if messages is None:
            return 0
        shown = 0
        for text, buttons in messages:
            try:
                await send({"attachment": {"type": "template", "payload": {
                    "template_type": "button", "text": text, "buttons": buttons}}})
            except MessageRefused as exc:
                log.warning("zalo: button template refused (%s); sending numbered text instead", exc.reason)
                self.buttons = False
                return shown
            shown += len(buttons)
        return None

    async def _token(self, rejected: str | None = None) -> str:
        """The access token (in memory while it is valid); a refresh needs the database, as
        the single-use refresh token must be stored before the new access token is used."""
        try:
            if rejected is None:
                return await self.tokens.current()
            return await self.tokens.refresh(rejected=rejected)
        except TokenError as exc:
            self._report_state(f"down: {exc}")
            raise (Rejected if exc.permanent else Transient)(f"zalo: {exc}") from exc
        except DATABASE_ERRORS as exc:
            self.store.outage.failed(exc)
            raise Transient("zalo: the token needs refreshing and the database is unavailable") from exc

    async def _send_message(self, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        body = {"recipient": {"user_id": str(user_id)}, "message": message}
        token = await self._token()
        data = await self._post(PATH_CS, body, token)
        if data.get("error") in TOKEN_ERRORS:  # expired or replaced: refresh once and retry
            token = await self._token(rejected=token)
            data = await self._post(PATH_CS, body, token)
            if data.get("error") in TOKEN_ERRORS:  # a brand-new token refused: refreshing again won't help
                reason = f"the access token was refused right after a refresh (error {data.get('error')})"
                self.tokens.hold(reason)
                self._report_state(f"down: {reason}")
                raise Rejected(f"zalo: {reason}")
        self._raise_for(data)
        self._report_state("on")
        return data.get("data") if isinstance(data.get("data"), dict) else {}

    async def _post(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        url = self.settings.zalo_oa_api_base_url.rstrip("/") + path
        status, data = await post_json(self._http(), url, lambda e: Transient(f"zalo: {e}"),
                                       json=body, headers={"access_token": token})
        if status == 429:
            self.pacer.pause(RATE_LIMIT_PAUSE)
            raise RateLimited(RATE_LIMIT_PAUSE, "zalo: HTTP 429")
        if status >= 500:
            raise Transient(f"zalo: HTTP {status}")
        if data is None:
            raise Transient(f"zalo: HTTP {status}, not JSON")
        if not isinstance(data, dict) or "error" not in data:
            raise Transient(f"zalo: HTTP {status}, unexpected answer")
        return data

    def _raise_for(self, data: dict[str, Any]) -> None:
        code = data.get("error")
        if code == 0:
            return
        reason = f"zalo error {code}: {data.get('message', '')}"[:300]
        if code == ERR_RATE_LIMIT:
            self.pacer.pause(RATE_LIMIT_PAUSE)
            raise RateLimited(RATE_LIMIT_PAUSE, reason)
        if code == ERR_OUTSIDE_WINDOW:
            raise OutsideWindow(API_WINDOW_REASON)
        if code == ERR_NOT_FOLLOWER:
            raise RecipientGone(reason)
        raise MessageRefused(reason)


def clip(text: str, units: int) -> str:
    """The longest start of `text` within `units` UTF-16 units, never half a character."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def button_templates(rendered: Rendered) -> list[tuple[str, list[dict[str, Any]]]] | None:
    """(text, buttons) of the button templates showing a reply's choices, five at most each.

    The body heads the first template, the "Gõ ..." hint the others (or follows the body when
    one template holds every choice). Each button sends its number back as the citizen's
    text (`oa.query.show`), exactly as if they had typed it. None when the body is too long
    for a template (the reply then goes out as numbered text).
    """
    numbered = [(rendered.start + i, label) for i, label in enumerate(rendered.labels)]
    groups = [numbered[i:i + MAX_BUTTONS] for i in range(0, len(numbered), MAX_BUTTONS)]
    head = rendered.body if len(groups) > 1 else f"{rendered.body}\n\n{rendered.prompt}".strip()
    if utf16_len(head) > MAX_TEXT:
        return None
    return [(head if k == 0 else rendered.prompt,
             [{"title": clip(f"{number}. {label}", MAX_BUTTON_TITLE), "type": "oa.query.show", "payload": str(number)}
              for number, label in group])
            for k, group in enumerate(groups)]
