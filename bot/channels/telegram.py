"""Telegram adapter (python-telegram-bot v22): translates updates and replies, nothing more.

Long polling by default; webhook mode when TELEGRAM_WEBHOOK_URL is set, in which case the
channel serves its webhook route on our aiohttp app (`routes`) and queues updates with
`feed_webhook`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import html
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    ChatMember,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot import json_body, metrics
from bot.channels.base import (
    Backoff,
    Channel,
    ChannelContext,
    Outgoing,
    Pace,
    Responder,
    Route,
    Unreachable,
    as_is,
)
from bot.channels.choices import Rendered
from bot.channels.keyed_locks import KeyedLocks
from bot.channels.pacing import Pacer
from bot.channels.telegram_http import AiohttpRequest
from bot.contracts import texts
from bot.contracts.delivery import RateLimited, RecipientGone, Rejected, SendError, Transient
from bot.contracts.messages import Button, IncomingMessage, Reply
from bot.privacy import user_key
from bot.settings import Settings
from handlers.ids import group_id_text

# PTB 22 reports durations such as RetryAfter.retry_after as datetime.timedelta when opted
# in, and otherwise warns (PTBDeprecationWarning) each time a RetryAfter is built; the next
# major version makes timedelta the only shape. Opt in for this process unless the operator
# chose otherwise (PTB reads the variable at each access).
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)

NAME = "telegram"
# Live replies are retried for this long (wall clock), so a reply survives a Bot API outage
# of a minute or more; the pause between tries grows to LIVE_MAX_DELAY, so the reply goes
# out within seconds of the API coming back. Hand-off delivery leases must be longer.
LIVE_RETRY_SECONDS = 90.0
LIVE_DELAYS = (0.5, 1.0, 2.0, 4.0)
LIVE_MAX_DELAY = 5.0
LIVE_RETRY = Backoff(LIVE_DELAYS, LIVE_MAX_DELAY, within=LIVE_RETRY_SECONDS)
# While getUpdates fails, poll again this often (PTB's own back-off grows to 30 s).
POLL_RETRY_SECONDS = 2.0
# Telegram's Bots FAQ: at most 20 messages a minute into one group (PTB: FloodLimit.
# MESSAGES_PER_MINUTE_PER_GROUP). The ward team's group receives hand-offs and relays.
GROUP_MESSAGES_PER_MINUTE = 20
MAX_TEXT = 4000  # Telegram allows 4096 (UTF-16 code units) after entity parsing; keep a margin
COMMANDS = [
    ("start", "Bắt đầu, xem menu chủ đề"),
    ("menu", "Menu các chủ đề"),
    ("help", "Trợ lý giúp được gì"),
    ("dangky", "Đăng ký nhận tin của phường/xã"),
    ("huydangky", "Hủy nhận tin"),
    ("quyenriengtu", "Trợ lý lưu gì về bạn"),
    ("xoadulieu", "Xóa dữ liệu của bạn"),
]
GROUP_COMMANDS = [("id", "Mã của nhóm (để ghi vào TEAM_CHATS)")]
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
OTHER_CONTENT = ("sticker", "photo", "voice", "video", "video_note", "audio", "document", "animation",
                 "location", "contact", "poll", "dice")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def is_group_chat(chat_id: str) -> bool:
    """Groups, supergroups and channels have negative ids; private chats positive ones."""
    return chat_id.startswith("-")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts message text (emoji count twice)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _fit(line: str, limit: int) -> int:
    """How many characters of `line` fit in `limit` UTF-16 units."""
    units = 0
    for index, ch in enumerate(line):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(line)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split at line boundaries (then at spaces, then hard) so each part fits one message;
    sizes in UTF-16 units, never splitting a character."""
    if utf16_len(text) <= limit:  # nearly every reply
        return [text] if text.strip() else ["…"]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while utf16_len(line) > limit:
            fits = _fit(line, limit)
            cut = line.rfind(" ", 0, fits)
            cut = cut if cut > fits // 2 else fits
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:cut])
            line = line[cut:].lstrip(" ")
        candidate = f"{current}\n{line}" if current else line
        if utf16_len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return [p for p in parts if p.strip()] or ["…"]


def live_delays() -> Iterator[float]:
    """Pauses between tries of a live reply, ending after LIVE_RETRY_SECONDS of wall time."""
    return LIVE_RETRY.pauses()


class PollingRequest(AiohttpRequest):
    """getUpdates transport that retries every POLL_RETRY_SECONDS while the Bot API fails.

    PTB's polling loop backs off up to 30 s after 5xx answers and network errors, which would
    leave questions unanswered for that long after an outage ends; it retries at once after
    a timeout. So failures wait a short, constant pause here and are reported as timeouts.
    """

    def __init__(self) -> None:
        super().__init__(connection_pool_size=1)
        self.failing = False

    async def do_request(self, *args, **kwargs):  # type: ignore[override]
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except TimedOut:
            raise
        except NetworkError as exc:
            await self._failed(type(exc).__name__)
        else:
            if code < 500:
                if self.failing:
                    log.warning("telegram: getUpdates works again")
                    self.failing = False
                return code, payload
            await self._failed(f"HTTP {code}")
        raise TimedOut(f"Bot API unavailable; polling again in {POLL_RETRY_SECONDS:.0f} s")

    async def _failed(self, what: str) -> None:
        if not self.failing:
            log.warning("telegram: getUpdates failed (%s); retrying every %.0f s", what, POLL_RETRY_SECONDS)
        self.failing = True
        await asyncio.sleep(POLL_RETRY_SECONDS)


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(b.label[:64], callback_data=b.action) for b in row] for row in reply.buttons]
    rows = [[InlineKeyboardButton(f"🔗 {link.label}", url=link.url)] for link in reply.links] + rows
    return InlineKeyboardMarkup(rows) if rows else None


def keyboard_json(reply: Reply) -> dict | None:
    """`keyboard(reply)` as the Bot API's JSON, without PTB objects (the hot path of sending)."""
    rows = [[{"text": f"🔗 {link.label}", "url": link.url}] for link in reply.links]
    rows += [[{"text": b.label[:64], "callback_data": b.action} for b in row] for row in reply.buttons]
    return {"inline_keyboard": rows} if rows else None


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds to wait. With PTB_TIMEDELTA opted in (above) PTB 22 gives a timedelta; an int or
    float still works should someone set PTB_TIMEDELTA=false (PTB then warns)."""
    value = exc.retry_after
    return float(value.total_seconds()) if isinstance(value, dt.timedelta) else float(value)


def joined(member: ChatMemberUpdated) -> bool:
    """The bot became a member of the chat (not a promotion or a change of rights)."""
    before = member.old_chat_member.status in (ChatMember.LEFT, ChatMember.BANNED)
    return before and member.new_chat_member.status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR)


def webhook_path(token: str) -> str:
    """A path that includes a secret derived from the token, stable across processes."""
    return "/telegram/webhook/" + hashlib.sha256(f"path:{token}".encode()).hexdigest()[:32]


def webhook_secret(settings: Settings) -> str:
    if settings.telegram_webhook_secret:
        return settings.telegram_webhook_secret
    return hashlib.sha256(f"secret:{settings.telegram_bot_token}".encode()).hexdigest()


class TelegramChannel(Channel):
    name = NAME
    edits_messages = True  # campaign progress is one message edited in place
    live_retry = LIVE_RETRY

    def __init__(self, settings: Settings, respond: Responder, on_unreachable: Unreachable,
                 claim_update: Callable[[str], Awaitable[bool]] | None = None):
        self.settings = settings
        # Idempotency across processes (None: no check). With it, every message and button
        # reaches `respond` with IncomingMessage.event_key set, for the conversation to claim.
        self._claim_update = claim_update
        self._respond = respond
        self._on_unreachable = on_unreachable
        self._locks = KeyedLocks()
        self._log_secret: str | None = None
        self.pacer = Pacer(settings.telegram_rate_per_second, per_chat_interval=settings.chat_send_interval_seconds,
                           name=NAME, group_limit=GROUP_MESSAGES_PER_MINUTE, group_window=60.0,
                           is_group=is_group_chat)
        base = settings.telegram_api_base_url.rstrip("/")
        builder: ApplicationBuilder = (
            Application.builder()
            .token(settings.telegram_bot_token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .concurrent_updates(True)
            .request(AiohttpRequest())  # PTB's defaults (pool 256, 5 s timeouts) on aiohttp
        )
        if self.webhook_mode:
            builder = builder.updater(None).get_updates_request(AiohttpRequest(connection_pool_size=1))
        else:
            builder = builder.get_updates_request(PollingRequest())
        self.app: Application = builder.build()
        # Webhook updates acknowledged and not yet handled (bounded by feed_webhook).
        self.backlog = 0
        self._backlog_warned = float("-inf")
        self.app.add_handler(TypeHandler(Update, self._on_fed_update if self.webhook_mode else self._on_update))
        self.app.add_error_handler(self._on_error)

    @classmethod
    def off_reason(cls, settings: Settings) -> str | None:
        return None if settings.telegram_enabled else "TELEGRAM_BOT_TOKEN is not set"

    @classmethod
    def create(cls, settings: Settings, context: ChannelContext) -> TelegramChannel:
        return cls(settings, context.respond, context.unreachable(NAME), claim_update=context.store.claim_inbound_event)

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.telegram_webhook_url)

    def routes(self) -> list[Route]:
        if not self.webhook_mode:
            return []
        return [Route(webhook_path(self.settings.telegram_bot_token), self.handle_webhook)]

    async def probe(self) -> None:
        await self.app.bot.get_me()

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """Updates pushed by Telegram; the secret header must match before the body is read."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), webhook_secret(self.settings).encode()):
            metrics.WEBHOOK_REJECTED.labels(NAME, "secret").inc()
            return web.Response(status=403, text="forbidden")
        try:
            data = json_body.parse_object(await request.read())
        except json_body.BadJson:
            data = None
        if data is None or not isinstance(data.get("update_id"), int):
            metrics.WEBHOOK_REJECTED.labels(NAME, "malformed").inc()
            return web.Response(status=400, text="bad update")
        try:
            accepted = await self.feed_webhook(data)
        except Exception as exc:  # PTB could not read it as an Update: Telegram never sends that
            log.warning("telegram webhook: malformed update refused (%s)", type(exc).__name__)
            metrics.WEBHOOK_REJECTED.labels(NAME, "malformed").inc()
            return web.Response(status=400, text="bad update")
        if not accepted:
            # The backlog is full: Telegram retries a non-2xx answer later (nothing is lost).
            metrics.WEBHOOK_REJECTED.labels(NAME, "backlog").inc()
            return web.Response(status=503, text="busy, retry later", headers={"Retry-After": "1"})
        return web.Response(text="ok")

    # --- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        await self.app.initialize()
        await self.app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
        await self.app.bot.set_my_commands([BotCommand(c, d) for c, d in GROUP_COMMANDS],
                                           scope=BotCommandScopeAllGroupChats())
        allowed = ["message", "callback_query", "my_chat_member"]
        if self.webhook_mode:
            url = self.settings.telegram_webhook_url.rstrip("/") + webhook_path(self.settings.telegram_bot_token)
            await self.app.bot.set_webhook(url, secret_token=webhook_secret(self.settings), allowed_updates=allowed)
            await self.app.start()
            log.info("telegram: webhook mode")
        else:
            await self.app.start()
            assert self.app.updater is not None
            await self.app.updater.start_polling(allowed_updates=allowed, poll_interval=0.0, timeout=10)
            log.info("telegram: long polling")

    async def stop(self) -> None:
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def feed_webhook(self, data: dict) -> bool:
        """Queue a webhook update; False when TELEGRAM_WEBHOOK_BACKLOG updates are already
        waiting: the webhook then answers 503 and Telegram delivers it again later, so what
        a crash can lose (acknowledged, not yet handled) stays bounded."""
        if self.backlog >= self.settings.telegram_webhook_backlog:
            if time.monotonic() - self._backlog_warned >= 60:  # once a minute while it lasts
                self._backlog_warned = time.monotonic()
                log.warning("telegram: %d webhook updates waiting (TELEGRAM_WEBHOOK_BACKLOG); answering 503, "
                            "Telegram delivers them again later", self.backlog)
            return False
        update = Update.de_json(data, self.app.bot)
        if update is not None:
            self.backlog += 1
            await self.app.update_queue.put(update)
        return True

    async def _on_fed_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await self._on_update(update, context)
        finally:
            self.backlog = max(0, self.backlog - 1)

    def who(self, chat_id: str | int) -> str:
        """How logs name a chat: groups by id (they are configuration), citizens only by
        their pseudonymous key, never by their Telegram id."""
        chat = str(chat_id)
        if is_group_chat(chat):
            return chat
        if self._log_secret is None:
            self._log_secret = self.settings.resolved_user_key_secret()
        return "user " + user_key(self._log_secret, NAME, chat)[:12]

    # --- incoming -------------------------------------------------------------------
    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        key = f"telegram:{update.update_id}"
        member = update.my_chat_member
        incoming, query = self.translate(update) if member is None else (None, None)
        if self._claim_update is not None:
            if incoming is not None:
                # A message or a button: the conversation claims it (handlers/middleware.py, the one
                # de-duplication path, which forgets the key again if handling fails), a citizen's
                # in the same transaction as recording the sender (Users.arrive).
                incoming = dataclasses.replace(incoming, event_key=key)
            elif not await self._claim_update(key):
                return  # already handled here or by another process (Telegram retried, or both got it)
        if member is not None:
            if member.chat.type == "private" and member.new_chat_member.status in ("kicked", "left"):
                await self._on_unreachable(str(member.chat.id))
            elif member.chat.type in ("group", "supergroup") and joined(member):
                await self._introduce(str(member.chat.id))
            return
        if query is not None:
            try:
                await query.answer()
            except TelegramError:
                log.debug("callback answer failed", exc_info=True)
        if incoming is None:
            return
        log.debug("telegram: update %s from %s: %s", update.update_id, self.who(incoming.chat),
                  "button" if incoming.action else incoming.other or "text")  # never the text itself
        async with self._locks.hold(incoming.chat):  # one user's messages are handled in order
            replies = await self._respond(incoming)
            thread_id = incoming.thread_id if incoming.is_group else None
            for reply in replies:
                try:
                    await self.send(incoming.chat, reply, thread_id=thread_id)
                except RecipientGone:
                    return
                except SendError as exc:
                    log.warning("telegram: reply to %s not sent (%s: %s)", self.who(incoming.chat),
                                type(exc).__name__, exc.reason)
                    if not isinstance(exc, Rejected):
                        return  # retries are spent: the rest would fail the same way

    async def _introduce(self, chat_id: str) -> None:
        """Post the group's id once when the bot is added, so whoever sets up TEAM_CHATS
        need not look it up (handlers/ids.py); `/id` in the group shows it again."""
        text = f"{texts.GROUP_ADDED}\n{group_id_text(chat_id, self.settings.team_chat_ids)}"
        try:
            await self.send(chat_id, Reply(text, kind="notice"))
        except SendError as exc:
            log.warning("telegram: could not greet group %s (%s)", chat_id, exc.reason)

    def translate(self, update: Update):
        """Telegram update -> (IncomingMessage or None, callback query to answer or None)."""
        query = update.callback_query
        if query is not None:
            message = query.message
            if message is None or query.data is None:
                return None, query
            chat = message.chat
            return IncomingMessage(
                channel=NAME, user_id=str(query.from_user.id), action=query.data, chat_id=str(chat.id),
                chat_type="private" if chat.type == "private" else "group",
                author=self._author(query.from_user), thread_id=getattr(message, "message_thread_id", None),
                message_id=message.message_id,
            ), query
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return None, None
        chat = message.chat
        is_group = chat.type != "private"
        other = next((kind for kind in OTHER_CONTENT if getattr(message, kind, None)), None)
        if message.text is None and other is None:
            other = "unsupported"
        replied = message.reply_to_message
        return IncomingMessage(
            channel=NAME, user_id=str(message.from_user.id), text=message.text,
            other=other if message.text is None else None, chat_id=str(chat.id),
            chat_type="group" if is_group else "private",
            reply_to_message_id=replied.message_id if replied else None,
            reply_to_bot=bool(replied and replied.from_user and replied.from_user.id == self.app.bot.id),
            thread_id=message.message_thread_id if message.is_topic_message else None,
            author=self._author(message.from_user) if is_group else None,
            message_id=message.message_id,
        ), None

    @staticmethod
    def _author(user) -> str:
        return f"{user.first_name} (telegram:{user.id})"

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed: %s", context.error, exc_info=context.error)

    # --- outgoing -------------------------------------------------------------------
    def render(self, reply: Reply, start: int = 1) -> Rendered:
        return as_is(reply)  # buttons go out as an inline keyboard

    async def transmit(self, out: Outgoing, pace: Pace) -> int | None:
        """One attempt to send a reply (image, text parts, quiz); raises bot.contracts.delivery types.

        Returns the id of the last text message. Each API call is paced: live replies go
        first, broadcasts wait their turn (bot/channels/pacing.py). `skip_parts` resumes a
        retry after the parts an earlier attempt delivered; a raised error's `parts_done`
        says how many are delivered now (so the photo is not sent twice).
        """
        chat_id, reply, skip_parts = out.chat_id, out.reply, out.skip_parts
        kwargs: dict = {"message_thread_id": out.thread_id} if out.thread_id else {}
        if out.reply_to:  # the quoted message may be gone
            kwargs["reply_parameters"] = ReplyParameters(message_id=out.reply_to, allow_sending_without_reply=True)
        bot = self.app.bot
        last: int | None = None
        parts: list = []
        if reply.image_url:
            parts.append(lambda: bot.send_photo(chat_id, reply.image_url, **kwargs))
        chunks = split_text(reply.text)
        markup = keyboard_json(reply)
        for index, chunk in enumerate(chunks):
            parts.append(lambda chunk=chunk, index=index: self._send_text(
                chat_id, chunk, markup if index == len(chunks) - 1 else None, kwargs))
        if reply.quiz:
            quiz = reply.quiz
            parts.append(lambda: bot.send_poll(
                chat_id, quiz.question[:300], [o[:100] for o in quiz.options], type="quiz",
                correct_option_ids=[quiz.correct], explanation=quiz.explanation[:200] or None,
                is_anonymous=True, **kwargs))
        done = skip_parts
        try:
            for send_part in parts[skip_parts:]:
                await pace()
                sent = await send_part()
                done += 1
                if isinstance(sent, int):  # a text part: its message id (photos and polls are Messages)
                    last = sent
        except TelegramError as exc:
            error = self._translate(exc)
            error.parts_done = done
            raise error from exc
        return last

    def _translate(self, exc: TelegramError) -> SendError:
        if isinstance(exc, RetryAfter):
            seconds = retry_after_seconds(exc)
            self.pacer.pause(seconds)
            return RateLimited(seconds)
        if isinstance(exc, Forbidden):
            return RecipientGone(str(exc))
        if isinstance(exc, ChatMigrated):  # a group became a supergroup: its id changed
            return Rejected(f"chat moved to {exc.new_chat_id}; update TEAM_CHATS")
        if isinstance(exc, BadRequest):
            return Rejected(str(exc))
        if isinstance(exc, (TimedOut, NetworkError)):
            return Transient(str(exc) or type(exc).__name__)
        # InvalidToken (a token problem hits every send: retry, then give up), Conflict and
        # anything newer: worth another attempt later.
        return Transient(f"{type(exc).__name__}: {exc}")

    async def _send_text(self, chat_id: str, text: str, markup, kwargs: dict) -> int:
        """sendMessage; returns the message id.

        Through PTB's `Bot._post` rather than `send_message`: the same request and errors,
        without building a `Message` from the answer, which cost about as much CPU as the
        rest of sending (README, Benchmarks)."""
        params = {"chat_id": chat_id, "reply_markup": markup, **kwargs}
        try:
            sent = await self.app.bot._post("sendMessage", {
                **params, "text": html.escape(text, quote=False), "parse_mode": ParseMode.HTML,
                "link_preview_options": NO_PREVIEW})
        except BadRequest as exc:
            if "parse entities" not in str(exc).lower():
                raise
            # Escaping should make this impossible; if Telegram still objects, send plain text.
            sent = await self.app.bot._post("sendMessage", {**params, "text": text})
        return int(sent["message_id"])

    async def recipient_gone(self, chat_id: str) -> None:
        """A citizen who blocked the bot is marked unreachable; a group the bot was removed
        from is configuration (TEAM_CHATS), not a citizen."""
        if not is_group_chat(str(chat_id)):
            await self._on_unreachable(str(chat_id))

    async def edit(self, chat_id: str, message_id: int, reply: Reply) -> None:
        """Edit a message in place (campaign progress), paced like a broadcast; 'not modified'
        is not an error, a 429 pauses the channel."""
        try:
            await self.pacer.broadcast(chat_id)
            await self.app.bot.edit_message_text(html.escape(reply.text, quote=False), chat_id, message_id,
                                                 parse_mode=ParseMode.HTML, reply_markup=keyboard(reply))
        except RetryAfter as exc:
            self.pacer.pause(retry_after_seconds(exc))
            log.warning("progress edit in %s rate limited", self.who(chat_id))
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                log.warning("could not edit message %s in %s: %s", message_id, self.who(chat_id), exc)
        except TelegramError as exc:
            log.warning("could not edit message %s in %s: %s", message_id, self.who(chat_id), exc)

    async def edit_buttons(self, chat_id: str, message_id: int, buttons: list[list[Button]]) -> None:
        """Replace the inline keyboard of a sent message (empty list: remove it)."""
        try:
            await self.app.bot.edit_message_reply_markup(chat_id, message_id,
                                                         reply_markup=keyboard(Reply("", buttons)))
        except TelegramError as exc:
            log.warning("could not change the buttons of message %s in %s: %s", message_id, self.who(chat_id), exc)

    async def create_topic(self, chat_id: str, name: str) -> int | None:
        try:
            chat = await self.app.bot.get_chat(chat_id)
            if not getattr(chat, "is_forum", False):
                return None
            topic = await self.app.bot.create_forum_topic(chat_id, name[:128])
            return topic.message_thread_id
        except TelegramError:
            log.warning("could not create a forum topic in %s", chat_id, exc_info=True)
            return None
