"""Zalo Official Account adapter (OA API v3): signed webhooks in, consultation messages out.

Zalo posts events to our webhook (route added by bot/web.py). We check the body size, the
`X-ZEvent-Signature` (SHA-256 of app id + raw body + timestamp + OA secret key), the
timestamp's age and whether the event was seen before (Zalo retries), answer 200 at once and
handle the event in a background task: Zalo gives a webhook about two seconds.

Replies go out through POST /v3.0/oa/message/cs with the OA access token. `ZaloTokens`
keeps that token fresh and stored in the database; refresh tokens are single-use, so the new
pair is committed before it is used, and only one process refreshes at a time.
Facts and their sources: /work/shared/notes/platforms.md section 3.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from bot.channels.choices import Rendered
from bot.channels.errors import OutsideWindow, RateLimited, RecipientGone, Rejected, Transient
from bot.channels.pacing import Pacer
from bot.channels.telegram import split_text
from bot.channels.zalo_common import (
    NumberedTextChannel,
    Responder,
    Unreachable,
    WebhookRejected,
    read_json_body,
    rejection,
)
from bot.settings import Settings
from bot.storage import inbound
from bot.storage.models import ChannelToken, Delivery, utcnow
from bot.storage.store import Store
from handlers.messages import IncomingMessage, Reply

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

NAME = "zalo"
MAX_TEXT = 2000  # consultation text limit per a reseller's docs (UNCONFIRMED); keep to it
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
REFRESH_AT = 0.8  # refresh when this share of the token's lifetime has passed
MIN_REFRESH_SLEEP = 0.5
MAX_REFRESH_SLEEP = 3600.0
REFRESH_RETRY_SECONDS = 60.0

OTHER_EVENTS = {  # user_send_<kind>: content we cannot read -> "please type your question"
    "user_send_image", "user_send_gif", "user_send_sticker", "user_send_link", "user_send_audio",
    "user_send_video", "user_send_file", "user_send_location", "user_send_business_card",
}

WINDOW_REASON = "zalo: no message from the citizen within {hours:g} h (Zalo messaging window)"
QUOTA_REASON = "zalo: monthly quota of {quota} campaign messages reached"
API_WINDOW_REASON = "zalo: citizen has not written to the OA for 7 days (error -230)"


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


def _fingerprint(access: str, refresh: str) -> str:
    return hashlib.sha256(f"{access}\n{refresh}".encode()).hexdigest()


class TokenError(Exception):
    """No usable access token: the refresh failed (bad refresh token, Zalo unreachable)."""


class ZaloTokens:
    """The OA access/refresh pair, persisted in `channel_tokens` and refreshed before expiry.

    The stored pair wins over the settings once the bot has rotated it; a different pair
    configured later (after re-authorising the app) replaces it once.
    """

    def __init__(self, settings: Settings, sessions, http: Callable[[], aiohttp.ClientSession]):
        self.settings = settings
        self.sessions = sessions
        self._http = http
        self.name = f"zalo_oa:{settings.zalo_oa_app_id}"[:96]
        self.access_token = ""
        self.expires_at: dt.datetime | None = None
        self.refreshed_at: dt.datetime | None = None
        self.refreshes = 0  # refreshes done by this process (tests, logs)
        self._loaded = False
        self._lock = asyncio.Lock()

    def _adopt(self, row: ChannelToken) -> None:
        self.access_token = row.access_token
        self.expires_at = row.expires_at
        self.refreshed_at = row.refreshed_at
        self._loaded = True

    async def load(self) -> None:
        """Adopt the stored pair; seed it from the settings on first start or when they changed."""
        s_access, s_refresh = self.settings.zalo_oa_access_token, self.settings.zalo_oa_refresh_token
        seed = _fingerprint(s_access, s_refresh) if (s_access or s_refresh) else None
        now = utcnow()
        for attempt in range(2):
            try:
                async with self.sessions.begin() as s:
                    row = await s.get(ChannelToken, self.name, with_for_update=True)
                    if seed is not None and (row is None or row.seeded_from != seed):
                        if row is None:
                            row = ChannelToken(name=self.name)
                            s.add(row)
                        else:
                            log.info("zalo: new tokens configured; they replace the stored pair")
                        row.access_token, row.refresh_token, row.seeded_from = s_access, s_refresh, seed
                        row.refreshed_at = now
                        row.expires_at = now + SEED_LIFETIME if s_access else now  # no access token: refresh now
                    if row is None:
                        raise TokenError("no Zalo OA token stored or configured")
                    await s.flush()
                    self._adopt(row)
                return
            except IntegrityError:  # another process seeded the row first: read theirs
                if attempt:
                    raise

    async def current(self) -> str:
        if not self._loaded:
            await self.load()
        if not self.access_token or self._expired():
            return await self.refresh(rejected=self.access_token)
        return self.access_token

    def _expired(self) -> bool:
        return self.expires_at is not None and utcnow() >= self.expires_at

    def due_at(self) -> dt.datetime | None:
        """When to refresh: after REFRESH_AT of the token's lifetime."""
        if self.expires_at is None or self.refreshed_at is None:
            return None
        return self.refreshed_at + (self.expires_at - self.refreshed_at) * REFRESH_AT

    def seconds_until_due(self) -> float:
        due = self.due_at()
        return MAX_REFRESH_SLEEP if due is None else (due - utcnow()).total_seconds()

    async def refresh(self, rejected: str | None = None) -> str:
        """A new access token from the stored refresh token; returns the token to use.

        `rejected`: the token the API just refused (None = scheduled refresh, done only when
        due). The stored row is locked while Zalo is asked, so across processes only one uses
        the single-use refresh token; a process that finds the row changed adopts the pair
        another one stored instead of refreshing again.
        """
        async with self._lock:
            async with self.sessions.begin() as s:
                # The UPDATE takes the row's write lock on PostgreSQL and the database's on SQLite.
                await s.execute(update(ChannelToken).where(ChannelToken.name == self.name)
                                .values(name=ChannelToken.name))
                row = await s.scalar(select(ChannelToken).where(ChannelToken.name == self.name))
                if row is None:
                    raise TokenError("no Zalo OA token stored")
                known = rejected if rejected is not None else self.access_token
                if row.access_token and row.access_token != known:
                    self._adopt(row)  # another process (or an earlier call) refreshed already
                    return row.access_token
                if rejected is None:  # scheduled: only when due
                    self._adopt(row)
                    due = self.due_at()
                    if due is None or utcnow() < due:
                        return row.access_token
                if not row.refresh_token:
                    raise TokenError("the access token was refused and no refresh token is stored")
                access, refresh_token, expires_in = await self._call_oauth(row.refresh_token)
                now = utcnow()
                row.access_token, row.refresh_token = access, refresh_token
                row.refreshed_at, row.expires_at = now, now + dt.timedelta(seconds=expires_in)
            # Committed: the new pair survives a crash from here on; only now is it used.
            self._adopt(row)
            self.refreshes += 1
            log.info("zalo: access token refreshed (valid %d s)", expires_in)
            return access

    async def _call_oauth(self, refresh_token: str) -> tuple[str, str, int]:
        settings = self.settings
        url = settings.zalo_oa_oauth_base_url.rstrip("/") + PATH_TOKEN
        form = {"refresh_token": refresh_token, "app_id": settings.zalo_oa_app_id, "grant_type": "refresh_token"}
        headers = {"secret_key": settings.zalo_oa_app_secret or settings.zalo_oa_secret_key}
        try:
            async with self._http().post(url, data=form, headers=headers, timeout=HTTP_TIMEOUT) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TokenError(f"token refresh failed: {type(exc).__name__}: {exc}") from exc
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            detail = body if not isinstance(body, dict) else (
                body.get("error_description") or body.get("error_reason") or body.get("message") or body)
            raise TokenError(f"token refresh refused (HTTP {status}): {str(detail)[:200]}")
        try:
            expires_in = int(str(body.get("expires_in", "3600")))  # a string in Zalo's answers
        except ValueError:
            expires_in = 3600
        return str(body["access_token"]), str(body.get("refresh_token") or refresh_token), max(60, expires_in)


class ZaloCampaignRule:
    """Zalo's limits for campaigns, as a CampaignRunner rule (bot/campaigns/engine.py).

    Recipients who have not written within the window, or beyond the monthly quota, are
    skipped with a fixed reason (so the campaign status can count them), never sent to.
    """

    def __init__(self, window_hours: float, monthly_quota: int = 0, channel: str = NAME):
        self.window = dt.timedelta(hours=window_hours)
        self.window_hours = window_hours
        self.quota = monthly_quota
        self.channel = channel
        self.remaining: int | None = None

    @property
    def window_reason(self) -> str:
        return WINDOW_REASON.format(hours=self.window_hours)

    async def prepare(self, sessions) -> None:
        """Before each batch: count this month's campaign messages from the deliveries table."""
        if not self.quota:
            self.remaining = None
            return
        from bot.campaigns.service import LOCAL_TZ

        local = utcnow().astimezone(LOCAL_TZ)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        async with sessions() as s:
            used = await s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.channel == self.channel, Delivery.state.in_(("sent", "uncertain")),
                Delivery.updated_at >= month_start)) or 0
        self.remaining = max(0, self.quota - used)

    def __call__(self, last_inbound: dt.datetime | None) -> str | None:
        if last_inbound is None or utcnow() - last_inbound > self.window:
            return self.window_reason
        if self.remaining is not None:
            if self.remaining <= 0:
                return QUOTA_REASON.format(quota=self.quota)
            self.remaining -= 1
        return None


class ZaloOAChannel(NumberedTextChannel):
    name = NAME
    max_text = MAX_TEXT

    def __init__(self, settings: Settings, store: Store, respond: Responder, on_unreachable: Unreachable,
                 report_state: Callable[[str], None] | None = None):
        super().__init__(store, respond, on_unreachable,
                         Pacer(settings.zalo_oa_rate_per_second, per_chat_interval=1.0))
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.tokens = ZaloTokens(settings, store.sessions, self._http)
        self._report_state = report_state or (lambda _state: None)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        return self._session

    # --- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        await self.tokens.load()
        self.spawn_loop(self._refresh_loop())
        self.spawn_loop(self.housekeeping())
        log.info("zalo: official account webhook at %s", self.settings.zalo_oa_webhook_path)

    async def stop(self) -> None:
        await self.stop_tasks()
        if self._session is not None:
            await self._session.close()

    async def _refresh_loop(self) -> None:
        """Refresh the access token at 80% of its lifetime (the API refusing it also triggers one)."""
        while True:
            await asyncio.sleep(min(MAX_REFRESH_SLEEP, max(MIN_REFRESH_SLEEP, self.tokens.seconds_until_due())))
            try:
                await self.tokens.refresh()
                self._report_state("on")
            except TokenError as exc:
                log.error("zalo: %s", exc)
                self._report_state(f"down: {exc}")
                await asyncio.sleep(REFRESH_RETRY_SECONDS)
            except Exception:
                log.exception("zalo: token refresh failed")
                await asyncio.sleep(REFRESH_RETRY_SECONDS)

    # --- webhook ------------------------------------------------------------------
    def webhook_routes(self) -> list[tuple[str, Callable]]:
        return [(self.settings.zalo_oa_webhook_path, self.handle_webhook)]

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """Verify, de-duplicate, acknowledge; the event itself is handled in the background."""
        try:
            event = await self._accept(request)
        except WebhookRejected as exc:
            return rejection(NAME, exc)
        if event is not None:
            self.spawn(self.handle_event(event))
        return web.Response(text="ok")

    async def _accept(self, request: web.Request) -> dict[str, Any] | None:
        """The event to handle, None for a duplicate; WebhookRejected when it must be refused."""
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
        if not await inbound.remember(self.store.sessions, self.event_key(event, raw)):
            return None
        return event

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
        sender = event.get("sender") if isinstance(event.get("sender"), dict) else {}
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        user_id = str(sender.get("id") or "")
        if name == "user_send_text" and user_id:
            text = message.get("text")
            if isinstance(text, str):
                await self.on_text(user_id, text)
        elif name in ("follow", "unfollow"):
            follower = event.get("follower") if isinstance(event.get("follower"), dict) else {}
            follower_id = str(follower.get("id") or "")
            if not follower_id:
                return
            if name == "follow":  # the welcome message is the /start menu
                await self.on_message(IncomingMessage(channel=NAME, user_id=follower_id, text="/start"))
            else:
                await self._on_unreachable(follower_id)
        elif name in OTHER_EVENTS and user_id:
            kind = name.removeprefix("user_send_")
            await self.on_message(IncomingMessage(channel=NAME, user_id=user_id, other=kind))
        else:  # delivery/seen receipts, the OA's own messages, anonymous chats: nothing to answer
            log.debug("zalo: ignored event %s", name)

    # --- outgoing -------------------------------------------------------------------
    async def _transmit(self, chat_id: str, reply: Reply, rendered: Rendered, broadcast: bool) -> None:
        pace = (lambda: self.pacer.broadcast(chat_id)) if broadcast else self.pacer.live
        if reply.image_url:
            await pace()
            await self._send_message(chat_id, {"attachment": {"type": "template", "payload": {
                "template_type": "media", "elements": [{"media_type": "image", "url": reply.image_url}]}}})
        buttons = self._template_buttons(rendered)
        if buttons and len(rendered.body) <= MAX_TEXT:
            await pace()
            await self._send_message(chat_id, {"attachment": {"type": "template", "payload": {
                "template_type": "button", "text": rendered.body, "buttons": buttons}}})
            return
        for chunk in split_text(rendered.text, MAX_TEXT):
            await pace()
            await self._send_message(chat_id, {"text": chunk})

    def _template_buttons(self, rendered: Rendered) -> list[dict[str, Any]] | None:
        """Zalo's button template (ZALO_OA_INTERACTIVE_BUTTONS): each button sends back its number."""
        if not self.settings.zalo_oa_interactive_buttons or not rendered.actions or rendered.quiz:
            return None
        if len(rendered.actions) > 5:
            return None
        return [{"title": label[:100], "type": "oa.query.show", "payload": str(rendered.start + i)}
                for i, label in enumerate(rendered.labels)]

    async def _send_message(self, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        body = {"recipient": {"user_id": str(user_id)}, "message": message}
        try:
            token = await self.tokens.current()
        except TokenError as exc:
            self._report_state(f"down: {exc}")
            raise Transient(str(exc)) from exc
        data = await self._post(PATH_CS, body, token)
        if data.get("error") in TOKEN_ERRORS:  # expired or replaced: refresh once and retry
            try:
                token = await self.tokens.refresh(rejected=token)
            except TokenError as exc:
                self._report_state(f"down: {exc}")
                raise Transient(str(exc)) from exc
            data = await self._post(PATH_CS, body, token)
        self._raise_for(data)
        self._report_state("on")
        return data.get("data") if isinstance(data.get("data"), dict) else {}

    async def _post(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        url = self.settings.zalo_oa_api_base_url.rstrip("/") + path
        try:
            async with self._http().post(url, json=body, headers={"access_token": token}) as resp:
                status = resp.status
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(f"zalo: {type(exc).__name__}: {exc}") from exc
        if status == 429:
            self.pacer.pause(RATE_LIMIT_PAUSE)
            raise RateLimited(RATE_LIMIT_PAUSE, "zalo: HTTP 429")
        if status >= 500:
            raise Transient(f"zalo: HTTP {status}")
        try:
            data = json.loads(text)
        except ValueError:
            raise Transient(f"zalo: HTTP {status}, not JSON") from None
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
        if code in TOKEN_ERRORS:
            raise Transient(reason)
        raise Rejected(reason)


def register(runtime: Runtime) -> None:
    """Add the OA channel when configured (else say why it is off) and its campaign rule."""
    settings = runtime.settings
    missing = settings.zalo_oa_missing
    if len(missing) == 3:
        runtime.channel_states[NAME] = "off: ZALO_OA_APP_ID is not set"
        return
    if missing:
        runtime.channel_states[NAME] = f"off: {', '.join(missing)} not set"
        return
    if runtime.store is None:
        runtime.channel_states[NAME] = "off: no database"
        return
    store = runtime.store

    def report_state(state: str) -> None:
        runtime.channel_states[NAME] = state

    if not settings.zalo_oa_app_secret:
        log.warning("zalo: ZALO_OA_APP_SECRET is empty; token refresh will send ZALO_OA_SECRET_KEY instead")
    channel = ZaloOAChannel(settings, store, runtime.conversation.handle,
                            lambda user_id: store.mark_unreachable(NAME, user_id), report_state)
    runtime.channels.register(channel)
    runtime.channel_states[NAME] = "on"
    if runtime.campaign_runner is not None:
        runtime.campaign_runner.rules[NAME] = ZaloCampaignRule(
            settings.zalo_oa_campaign_window_hours, settings.zalo_oa_campaign_monthly_quota)
