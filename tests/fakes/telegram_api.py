"""A protocol-faithful fake of the Telegram Bot API, for tests.

It is a real HTTP server (aiohttp) on 127.0.0.1, so the production code talks to it through
python-telegram-bot's own HTTP stack (httpx), exactly as it talks to api.telegram.org::

    async with FakeTelegram(token="123:ABC") as fake:
        fake.add_private_chat(42, first_name="Lan")
        bot = telegram.Bot("123:ABC", base_url=fake.base_url, base_file_url=fake.base_file_url)
        async with bot:
            await bot.send_message(42, "<b>Xin chào</b>", parse_mode="HTML")
        assert fake.texts_to(42, plain=True) == ["Xin chào"]

What it models (see tests/fakes/test_telegram_fidelity.py for the checks against the real API):

* ``/bot<token>/<method>`` with GET or POST, parameters as query string, JSON,
  form-urlencoded or multipart (PTB 22 sends form-urlencoded, multipart when uploading).
  Method names are case-insensitive like Telegram's. Wrong (well-formed) token -> 401,
  malformed token or unknown method -> 404.
* Envelopes ``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code", "description",
  "parameters"?}``; Bot-API error wordings ("Bad Request: chat not found", ...).
* Server-side validation: HTML entity parsing ported from TDLib's ``parse_html`` (same error
  texts and byte offsets), text/caption limits counted after entity parsing in UTF-16 code
  units (like entity offsets; Telegram does not say, so the stricter reading), poll limits, inline
  keyboards (callback_data <= 64 UTF-8 bytes, non-empty text, http(s)/tg URLs), unknown
  chats, blocked users, groups upgraded to supergroups (``migrate_to_chat_id``), edit semantics ("message is not modified", keyboard removed when an
  edit omits ``reply_markup``), callback-query ids answerable once.
* getUpdates offset/limit/timeout/allowed_updates semantics (long polling capped by
  ``max_long_poll``), 409 while a webhook is set or when a newer getUpdates supersedes a
  waiting one; webhook storage and optional delivery (``deliver_webhook``).
* Fault injection (``fail_next``, ``set_outage``) and optional flood control
  (``enforce_rate_limit``), all visible in ``stats``.

Deliberate deviations from the real service (documented so nobody relies on them):

* ``strict_html=True`` (default) additionally rejects a bare ``&`` that does not start a
  ``;``-terminated entity and a bare ``>``; real Telegram keeps both as text. Use
  ``FakeTelegram(strict_html=False)`` for exact TDLib behaviour.
* Markdown/MarkdownV2 text is accepted but not parsed (length is counted on the raw text).
* Photos sent by URL are not downloaded; users/chats/messages exist only as registered.
* Error descriptions marked "wording unverified" below are plausible, not confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import math
import re
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes._base import wait_for_records

__all__ = [
    "ApiRequest",
    "FakeTelegram",
    "HtmlParseError",
    "SentMessage",
    "TelegramApiError",
    "UploadedFile",
    "parse_html",
]

JSON = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_COMMANDS = 100
POLL_QUESTION_MAX = 300
POLL_OPTION_MAX = 100
POLL_OPTIONS_MIN, POLL_OPTIONS_MAX = 1, 12  # minimum lowered from 2 to 1 in Bot API 10.0
POLL_EXPLANATION_MAX = 200
WEBHOOK_PORTS = (80, 88, 443, 8443)
FORUM_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# An empty/omitted allowed_updates means "everything except these".
NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
INLINE_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "web_app",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

DESC_CHAT_NOT_FOUND = "Bad Request: chat not found"
DESC_TEXT_EMPTY = "Bad Request: message text is empty"
DESC_TOO_LONG = "Bad Request: message is too long"
DESC_CAPTION_TOO_LONG = "Bad Request: message caption is too long"
DESC_EDIT_NOT_FOUND = "Bad Request: message to edit not found"
DESC_CANT_EDIT = "Bad Request: message can't be edited"
DESC_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
DESC_REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
DESC_QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
DESC_BUTTON_DATA = "Bad Request: BUTTON_DATA_INVALID"
DESC_BUTTON_URL = "Bad Request: BUTTON_URL_INVALID"
DESC_BUTTON_TEXT = "Bad Request: BUTTON_TEXT_INVALID"  # MTProto error name; Bot API wording unverified
DESC_TEXT_BUTTON = (
    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
)
DESC_BLOCKED = "Forbidden: bot was blocked by the user"
DESC_MIGRATED = "Bad Request: group chat was upgraded to a supergroup chat"
DESC_DEACTIVATED = "Forbidden: user is deactivated"
DESC_NOT_FORUM = "Bad Request: the chat is not a forum"
DESC_THREAD_NOT_FOUND = "Bad Request: message thread not found"
DESC_WEBHOOK_ACTIVE = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
DESC_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    420: "Flood",
    500: "Internal Server Error",
}

# Parameters whose form/query value is a plain string even if it looks like JSON ("123", "true").
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "question",
        "question_parse_mode",
        "explanation",
        "explanation_parse_mode",
        "description",
        "description_parse_mode",
        "short_description",
        "name",
        "title",
        "url",
        "secret_token",
        "callback_query_id",
        "inline_message_id",
        "photo",
        "document",
        "sticker",
        "action",
        "language_code",
        "ip_address",
        "icon_custom_emoji_id",
        "business_connection_id",
        "message_effect_id",
        "type",
        "data",
        "file_id",
        "emoji",
    }
)
# Parameters that are JSON objects/arrays; accepted JSON-encoded even inside a JSON body.
_STRUCTURED_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "options",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "correct_option_ids",
        "explanation_entities",
        "question_entities",
        "media",
    }
)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field_name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class SentMessage:
    """One accepted message-affecting call (send*, edit*, deleteMessage).

    ``text`` is what the bot sent (raw, markup included; caption for sendPhoto, question for
    sendPoll); ``plain_text`` is the same after entity parsing, as a user would see it.
    ``message`` is a snapshot of the Message object returned (None for deleteMessage or
    inline-message edits).
    """

    method: str
    chat_id: int | str | None
    text: str | None
    parse_mode: str | None
    reply_markup: JSON | None
    message_id: int | None
    time: float
    params: JSON
    message_thread_id: int | None = None
    reply_to_message_id: int | None = None
    plain_text: str | None = None
    message: JSON | None = None

    @property
    def callback_data(self) -> list[str]:
        """All callback_data values of the inline keyboard, row by row."""
        return [
            b["callback_data"]
            for row in (self.reply_markup or {}).get("inline_keyboard", [])
            for b in row
            if "callback_data" in b
        ]


@dataclass
class ApiRequest:
    """Every HTTP call the fake received, including rejected ones."""

    method: str
    params: JSON
    status: int
    response: JSON | None
    time: float
    http_method: str = "POST"
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def description(self) -> str | None:
        return (self.response or {}).get("description")


@dataclass
class _Fault:
    method: str  # lower-cased method name or "*"
    status: int
    description: str | None
    retry_after: int | None
    remaining: int
    chat_id: int | str | None = None


@dataclass
class _RateLimit:
    global_per_second: int | None
    per_chat_per_second: float | None
    burst: int
    group_per_minute: int | None
    methods: frozenset[str] | None  # None = every send* except sendChatAction
    global_window: deque[float] = field(default_factory=deque)
    chat_windows: dict[Any, deque[float]] = field(default_factory=dict)
    group_windows: dict[Any, deque[float]] = field(default_factory=dict)

    def applies(self, method: str) -> bool:
        if self.methods is None:
            return method.startswith("send") and method != "sendChatAction"
        return method.lower() in self.methods


class TelegramApiError(Exception):
    """Raise from a handler (including one added with ``register_method``) to answer with an error."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class _RawReply(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, status: int, body: str, content_type: str = "text/html") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


class _DropConnection(Exception):  # noqa: N818 - control flow, not an error
    pass


@dataclass
class _Result:
    value: Any
    description: str | None = None


def _bad(description: str) -> TelegramApiError:
    return TelegramApiError(400, description)


def _nginx_page(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


# --------------------------------------------------------------------------------------------
# HTML entity parsing (port of TDLib td/telegram/MessageEntity.cpp parse_html)
# --------------------------------------------------------------------------------------------


class HtmlParseError(ValueError):
    """The text is not valid Telegram HTML; str(exc) is TDLib's message."""


_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_TD_SPACES = frozenset(" \t\r\n\0\v")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HEX = frozenset("0123456789abcdefABCDEF")
_SURROGATE_ERROR = (
    "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
    "surrogate code units"
)


def _u16(text: str) -> int:
    """Length in UTF-16 code units (what Telegram entity offsets are measured in)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _decode_entity(text: str, pos: int) -> tuple[str, int, bool] | None:
    """Decode the HTML entity at ``text[pos] == '&'`` like TDLib: (char, next_pos, had_semicolon)."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in _HEX:
                value = value * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and "0" <= text[end] <= "9":
                value = value * 10 + int(text[end])
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return None
        if 0xD800 <= value <= 0xDFFF:
            raise HtmlParseError(_SURROGATE_ERROR)
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        maybe = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if maybe is None:
            return None
        char = maybe
    semicolon = end < n and text[end] == ";"
    return char, (end + 1 if semicolon else end), semicolon


def _checked_link(url: str) -> str:
    if not url or any(ch in url for ch in " \t\r\n"):
        return ""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if match:
        return url if match.group(1).lower() in ("http", "https", "tg", "ton") else ""
    if "." in url and not url.startswith((".", "/")):
        host, sep, rest = url.partition("/")
        return f"http://{host}/{rest}" if sep else f"http://{url}/"
    return ""


def parse_html(text: str, *, strict: bool = False) -> tuple[str, list[JSON]]:
    """Parse Bot API HTML into (plain text, entities) or raise :class:`HtmlParseError`.

    Faithful to TDLib: allowed tags b/strong, i/em, u/ins, s/strike/del, a href, code, pre,
    tg-spoiler, span class="tg-spoiler", tg-emoji emoji-id, blockquote [expandable]; any
    attribute syntax TDLib accepts; ``</>`` closes the innermost tag; entities &lt; &gt; &amp;
    &quot; and numeric ones (a ``;`` is optional); unknown entities stay as literal text.
    ``strict=True`` also rejects a bare ``&`` / ``>`` (a FakeTelegram-only rule).
    Entity offsets/lengths are in UTF-16 code units.
    """
    n = len(text)
    out: list[str] = []
    utf16 = 0
    entities: list[JSON] = []
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf16 offset, index in out

    def byte_offset(pos: int) -> int:
        return len(text[:pos].encode("utf-8", "surrogatepass"))

    i = 0
    while i < n:
        ch = text[i]
        if ch == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None and (decoded[2] or not strict):
                out.append(decoded[0])
                utf16 += _u16(decoded[0])
                i = decoded[1]
                continue
            if strict:
                raise HtmlParseError(
                    f'Unescaped "&" at byte offset {byte_offset(i)}: write &amp; '
                    '(FakeTelegram strict_html; real Telegram keeps a bare "&")'
                )
        if ch == ">" and strict:
            raise HtmlParseError(
                f'Unescaped ">" at byte offset {byte_offset(i)}: write &gt; '
                '(FakeTelegram strict_html; real Telegram keeps a bare ">")'
            )
        if ch != "<":
            out.append(ch)
            utf16 += _u16(ch)
            i += 1
            continue

        begin = i
        i += 1
        if i >= n or text[i] != "/":
            # ---- start tag
            while i < n and text[i] not in _TD_SPACES and text[i] != ">":
                i += 1
            if i >= n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {byte_offset(begin)}')
            argument = ""
            while i < n and text[i] != ">":
                while i < n and text[i] in _TD_SPACES:
                    i += 1
                if i < n and text[i] == ">":
                    break
                attr_begin = i
                while i < n and text[i] not in _TD_SPACES and text[i] not in "=>":
                    i += 1
                attr = text[attr_begin:i].lower()
                if not attr:
                    raise HtmlParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {byte_offset(begin)}'
                    )
                while i < n and text[i] in _TD_SPACES:
                    i += 1
                if i >= n or text[i] != "=":
                    if tag == "blockquote" and attr == "expandable":
                        argument = "expandable"
                        continue
                    raise HtmlParseError(
                        "Expected equal sign in declaration of an attribute of the tag "
                        f'"{tag}" at byte offset {byte_offset(begin)}'
                    )
                i += 1
                while i < n and text[i] in _TD_SPACES:
                    i += 1
                if i >= n:
                    raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {byte_offset(begin)}')
                if text[i] not in "'\"":
                    token_begin = i
                    while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if i < n and text[i] not in _TD_SPACES and text[i] != ">":
                        raise HtmlParseError(
                            f"Unexpected end of name token at byte offset {byte_offset(token_begin)}"
                        )
                else:
                    quote = text[i]
                    i += 1
                    buf: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_entity(text, i)
                            if decoded is not None:
                                buf.append(decoded[0])
                                i = decoded[1]
                                continue
                        buf.append(text[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(buf)
                if i >= n:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
                if tag == "a" and attr == "href":
                    argument = value
                elif tag == "code" and attr == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise HtmlParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(begin)}'
                )
            stack.append((tag, argument, utf16, len(out)))
            i += 1  # the '>'
            continue

        # ---- end tag
        if not stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {byte_offset(begin)}")
        while i < n and text[i] not in _TD_SPACES and text[i] != ">":
            i += 1
        end_name = text[begin + 2 : i].lower()
        while i < n and text[i] in _TD_SPACES:
            i += 1
        if i >= n or text[i] != ">":
            raise HtmlParseError(f"Unclosed end tag at byte offset {byte_offset(begin)}")
        tag, argument, offset, out_index = stack[-1]
        if end_name and end_name != tag:
            raise HtmlParseError(
                f'Unmatched end tag at byte offset {byte_offset(begin)}, expected "</{tag}>", found "</{end_name}>"'
            )
        length = utf16 - offset
        if length > 0:
            _close_entity(entities, tag, argument, offset, length, "".join(out[out_index:]))
        stack.pop()
        i += 1

    if stack:
        raise HtmlParseError(f"Can't find end tag corresponding to start tag {stack[-1][0]}")
    for entity in entities:
        entity.pop("_lang", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_entity(
    entities: list[JSON], tag: str, argument: str, offset: int, length: int, inner: str
) -> None:
    simple = {
        "b": "bold",
        "strong": "bold",
        "i": "italic",
        "em": "italic",
        "u": "underline",
        "ins": "underline",
        "s": "strikethrough",
        "strike": "strikethrough",
        "del": "strikethrough",
        "tg-spoiler": "spoiler",
        "span": "spoiler",
    }
    base = {"offset": offset, "length": length}
    last = entities[-1] if entities else None
    same_range = last is not None and last["offset"] == offset and last["length"] == length
    if tag in simple:
        entities.append({"type": simple[tag], **base})
    elif tag == "blockquote":
        entities.append(
            {"type": "expandable_blockquote" if argument == "expandable" else "blockquote", **base}
        )
    elif tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise HtmlParseError("Invalid custom emoji identifier specified")
        entities.append({"type": "custom_emoji", **base, "custom_emoji_id": argument})
    elif tag == "a":
        url = _checked_link(argument or inner)
        if url:
            entities.append({"type": "text_link", **base, "url": url})
    elif tag == "pre":
        if same_range and last is not None and last["type"] == "code" and last.get("_lang"):
            last["type"] = "pre"
            last["language"] = last.pop("_lang")
        else:
            entities.append({"type": "pre", **base})
    elif tag == "code":
        if same_range and last is not None and last["type"] == "pre" and argument:
            last["language"] = argument
        else:
            entities.append({"type": "code", **base, "_lang": argument})


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram strips leading/trailing whitespace of message texts; keep entities in range."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = _u16(text[: len(text) - len(text.lstrip())])
    total = _u16(stripped)
    result = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


# --------------------------------------------------------------------------------------------
# The fake server
# --------------------------------------------------------------------------------------------

Handler = Callable[[JSON], Awaitable[Any]]


class FakeTelegram:
    """In-process fake Bot API server. See the module docstring and the public methods."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "test_bot",
        bot_first_name: str = "Test Bot",
        max_long_poll: float = 1.0,
        strict_html: bool = True,
        local_mode: bool = False,
        first_update_id: int = 100_001,
    ) -> None:
        if not re.fullmatch(r"\d+:[\w-]+", token):
            raise ValueError(f"not a Bot API token: {token!r}")
        self.token = token
        self.host = host
        self.max_long_poll = max_long_poll
        self.strict_html = strict_html
        self.local_mode = local_mode  # like telegram-bot-api --local: http webhooks on any port
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }

        # Records (public, read them in tests).
        self.sent: list[SentMessage] = []
        self.requests: list[ApiRequest] = []
        self.stats: Counter[str] = Counter()
        self.answered_callbacks: list[str] = []
        self.callback_answers: list[JSON] = []
        self.chat_actions: list[JSON] = []
        self.webhook: JSON = {"url": "", "secret_token": None}
        self.closed = False
        self.logged_out = False

        self._port = port
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._sent_event = asyncio.Event()
        self._updates_event = asyncio.Event()

        self._users: dict[int, JSON] = {}
        self._chats: dict[int, JSON] = {}
        self._usernames: dict[str, int] = {}
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._deactivated: set[int] = set()
        self._messages: dict[tuple[int, int], JSON] = {}
        self._message_counters: dict[int, itertools.count[int]] = {}
        self._topics: dict[int, dict[int, JSON]] = {}
        self._queue: list[JSON] = []
        self._update_ids = itertools.count(first_update_id)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._pending_callbacks: set[str] = set()
        self._files: dict[str, tuple[str, bytes]] = {}
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._faults: list[_Fault] = []
        self._outage_until: float | None = None
        self._outage_mode = "5xx"
        self._outage_status = 502
        self._outage_methods: frozenset[str] | None = None  # None = message-affecting methods
        self._outage_hang: float | None = None
        self._rate_limit: _RateLimit | None = None

        self._handlers: dict[str, tuple[str, Handler]] = {}
        for name, handler in {
            "getMe": self._m_get_me,
            "logOut": self._m_log_out,
            "close": self._m_close,
            "getUpdates": self._m_get_updates,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "deleteMessage": self._m_delete_message,
            "answerCallbackQuery": self._m_answer_callback_query,
            "sendPhoto": self._m_send_photo,
            "sendPoll": self._m_send_poll,
            "createForumTopic": self._m_create_forum_topic,
            "sendChatAction": self._m_send_chat_action,
            "getChat": self._m_get_chat,
            "getFile": self._m_get_file,
        }.items():
            self._handlers[name.lower()] = (name, handler)
        for name in (
            "setMyDescription",
            "setMyShortDescription",
            "setMyName",
            "setChatMenuButton",
            "setMyDefaultAdministratorRights",
            "pinChatMessage",
            "unpinChatMessage",
            "unpinAllChatMessages",
        ):
            self._handlers[name.lower()] = (name, self._m_accept)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeTelegram:
        if self._runner is not None:
            return self
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping.set()  # wakes long polls and hanging "timeout" outages
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Pass as PTB ``base_url``: PTB appends the token, then ``/<method>``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ---------------------------------------------------------------- python-telegram-bot conveniences

    def ptb_requests(self, read_timeout: float | None = 5.0, **httpx_request_kwargs: Any) -> JSON:
        """``request``/``get_updates_request`` objects for PTB, skipping TLS setup.

        The fake is plain HTTP, so certificate verification is pointless; a default
        ``HTTPXRequest`` loads the CA bundle, which costs ~0.2 s per Bot.
        """
        from telegram.request import HTTPXRequest

        def build(pool: int) -> Any:
            return HTTPXRequest(
                connection_pool_size=pool,
                read_timeout=read_timeout,
                httpx_kwargs={"verify": False},
                **httpx_request_kwargs,
            )

        return {"request": build(256), "get_updates_request": build(1)}

    def make_bot(self, **bot_kwargs: Any) -> Any:
        """A ``telegram.Bot`` wired to this fake (use as ``async with fake.make_bot() as bot``)."""
        from telegram import Bot

        kwargs = {"base_url": self.base_url, "base_file_url": self.base_file_url, **self.ptb_requests()}
        kwargs.update(bot_kwargs)
        return Bot(self.token, **kwargs)

    def application_builder(self) -> Any:
        """A ``telegram.ext.ApplicationBuilder`` with token, base URLs and fast requests preset."""
        from telegram.ext import ApplicationBuilder

        requests = self.ptb_requests()
        return (
            ApplicationBuilder()
            .token(self.token)
            .base_url(self.base_url)
            .base_file_url(self.base_file_url)
            .request(requests["request"])
            .get_updates_request(requests["get_updates_request"])
        )

    # ---------------------------------------------------------------- world setup

    def add_private_chat(
        self,
        user_id: int,
        first_name: str = "Lan",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
    ) -> JSON:
        """Register a user and the private chat with them (chat id == user id)."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = self._ensure_user(
            user_id, first_name, last_name=last_name, username=username, language_code=language_code
        )
        chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        self._chats[user_id] = chat
        if username:
            self._usernames[username.lower()] = user_id
        return dict(chat)

    def add_group(
        self, chat_id: int, title: str = "Test group", is_forum: bool = False, *, username: str | None = None
    ) -> JSON:
        """Register a group. Ids starting with -100 (or forums) are supergroups."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        supergroup = is_forum or str(chat_id).startswith("-100")
        chat: JSON = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        if is_forum:
            chat["is_forum"] = True
            self._topics.setdefault(chat_id, {})
        if username:
            chat["username"] = username
            self._usernames[username.lower()] = chat_id
        self._chats[chat_id] = chat
        return dict(chat)

    def add_topic(self, chat_id: int, message_thread_id: int, name: str = "Topic") -> None:
        """Declare an existing forum topic (createForumTopic also creates them)."""
        self._require_chat(chat_id)
        self._topics.setdefault(chat_id, {})[message_thread_id] = {
            "message_thread_id": message_thread_id,
            "name": name,
            "icon_color": FORUM_ICON_COLORS[0],
        }

    def block(self, chat_id: int) -> None:
        """The user blocked the bot (or, for a group, the bot was removed): sends -> 403."""
        self._blocked.add(chat_id)

    def migrate_group(self, chat_id: int, new_chat_id: int) -> JSON:
        """The group was upgraded to a supergroup: sends to the old id -> 400 with
        ``parameters.migrate_to_chat_id``; the new supergroup is registered."""
        old = self._require_chat(chat_id)
        self._migrated[chat_id] = new_chat_id
        return self.add_group(new_chat_id, old.get("title", "Test group"))

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def deactivate(self, user_id: int) -> None:
        """Deleted account: sends -> 403 "Forbidden: user is deactivated"."""
        self._deactivated.add(user_id)

    def is_blocked(self, chat_id: int) -> bool:
        return chat_id in self._blocked

    def chat(self, chat_id: int) -> JSON | None:
        chat = self._chats.get(chat_id)
        return dict(chat) if chat else None

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        """Current state of a stored message (after edits), or None."""
        msg = self._messages.get((chat_id, message_id))
        return copy.deepcopy(msg) if msg else None

    def messages_in(self, chat_id: int) -> list[JSON]:
        return [copy.deepcopy(m) for (cid, _), m in sorted(self._messages.items()) if cid == chat_id]

    @property
    def topics(self) -> dict[int, dict[int, JSON]]:
        return copy.deepcopy(self._topics)

    def add_file(self, file_id: str, data: bytes, file_path: str | None = None) -> None:
        """Make ``file_id`` resolvable by getFile and downloadable from ``base_file_url``."""
        self._files[file_id] = (file_path or f"documents/{file_id}", data)

    def register_method(self, name: str, handler: Callable[[JSON], Any]) -> None:
        """Add/override a method. ``handler(params)`` (sync or async) returns the result or raises TelegramApiError."""

        async def wrapper(params: JSON) -> Any:
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
            return result

        self._handlers[name.lower()] = (name, wrapper)

    # ---------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
        *,
        chat_id: int | str | None = None,
    ) -> None:
        """The next ``count`` calls of ``method`` ("*" = any; optionally only for ``chat_id``) fail.

        429 gets ``parameters.retry_after`` (default 1) and "Too Many Requests: retry after N";
        502/503/504 without a description get nginx's HTML page, as the real front-end sends.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(_Fault(method.lower(), status, description, retry_after, count, chat_id))

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
        """Simulate an outage for ``seconds`` (``math.inf`` = until cleared; None/0 clears it).

        mode "5xx": answer ``status`` (502 -> nginx HTML page, 500 -> JSON error);
        mode "timeout": hold the request ``hang`` seconds (default: until the outage ends, max 30 s)
        then answer 504 - configure a short PTB read timeout to see ``telegram.error.TimedOut``;
        mode "disconnect": drop the connection without a response (``NetworkError``).
        ``methods``: None = message-affecting methods (send*/edit*/answer*/deleteMessage/
        createForumTopic...), "all" = every method, or an iterable of method names.
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
            self._outage_methods = frozenset(m.lower() for m in methods)

    def clear_outage(self) -> None:
        self._outage_until = None

    @property
    def outage_active(self) -> bool:
        return self._outage_until is not None and time.monotonic() < self._outage_until

    def enforce_rate_limit(
        self,
        global_per_second: int | None = 30,
        per_chat_per_second: float | None = 1,
        burst: int | None = 3,
        *,
        group_per_minute: int | None = 20,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer 429 + retry_after when sends exceed Telegram's published flood limits.

        Sliding windows over accepted sends: at most ``global_per_second`` per second overall;
        per chat at most ``burst`` within ``burst / per_chat_per_second`` seconds (a sustained
        ``per_chat_per_second`` with short bursts tolerated); at most ``group_per_minute`` per
        minute into one group. ``methods`` default: every send* except sendChatAction.
        Rejections count in ``stats["429"]`` and ``stats["rate_limited"]``. None disables a limit.
        """
        names = None if methods is None else frozenset(m.lower() for m in methods)
        self._rate_limit = _RateLimit(
            global_per_second=global_per_second,
            per_chat_per_second=per_chat_per_second,
            burst=max(1, burst or 1),
            group_per_minute=group_per_minute,
            methods=names,
        )

    def disable_rate_limit(self) -> None:
        self._rate_limit = None

    # ---------------------------------------------------------------- updates (the users' side)

    def make_update(self, update_type: str, payload: JSON) -> JSON:
        """Build ``{"update_id": next, update_type: payload}`` WITHOUT queueing it.

        Chats/users/messages in it become known to the fake (so the bot may answer them), which
        is what webhook tests need when they POST the update themselves.
        """
        update = {"update_id": next(self._update_ids), update_type: payload}
        self._register_from_update(update)
        return update

    def enqueue(self, update: JSON) -> JSON:
        """Queue a prebuilt update for getUpdates / deliver_webhook.

        Like Telegram, an update whose type is excluded by the current allowed_updates setting
        is not stored at all (counted in ``stats["updates_filtered"]``); changing the setting
        later does not affect updates already queued.
        """
        self._register_from_update(update)
        if not self._is_allowed(update):
            self.stats["updates_filtered"] += 1
            return update
        self._queue.append(update)
        self._wake_pollers()
        return update

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset (or delivered by webhook)."""
        return list(self._queue)

    def _emit(self, update_type: str, payload: JSON, queue: bool) -> JSON:
        update = self.make_update(update_type, payload)
        return self.enqueue(update) if queue else update

    def user_sends_text(
        self,
        user_id: int,
        text: str,
        first_name: str = "Lan",
        *,
        queue: bool = True,
        **user_fields: Any,
    ) -> JSON:
        """A private ``message`` update (with a bot_command entity for a leading /command)."""
        chat = self._ensure_private_chat(user_id, first_name, **user_fields)
        content: JSON = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        msg = self._user_message(chat, self._users[user_id], content)
        return self._emit("message", msg, queue)

    def user_sends_sticker(
        self, user_id: int, emoji: str = "👍", *, first_name: str = "Lan", queue: bool = True
    ) -> JSON:
        chat = self._ensure_private_chat(user_id, first_name)
        file_id = self._new_file_id("sticker", b"RIFF....WEBP")
        sticker = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "FakeStickers",
            "file_size": 12,
        }
        msg = self._user_message(chat, self._users[user_id], {"sticker": sticker})
        return self._emit("message", msg, queue)

    def user_sends_voice(
        self, user_id: int, duration: int = 3, *, first_name: str = "Lan", queue: bool = True
    ) -> JSON:
        chat = self._ensure_private_chat(user_id, first_name)
        file_id = self._new_file_id("voice", b"OggS fake-opus")
        voice = {"file_id": file_id, "file_unique_id": f"u{file_id}", "duration": duration,
                 "mime_type": "audio/ogg", "file_size": 14}
        msg = self._user_message(chat, self._users[user_id], {"voice": voice})
        return self._emit("message", msg, queue)

    def user_sends_photo(
        self, user_id: int, caption: str | None = None, *, first_name: str = "Lan", queue: bool = True
    ) -> JSON:
        chat = self._ensure_private_chat(user_id, first_name)
        content: JSON = {"photo": self._photo_sizes(b"\xff\xd8\xff\xe0fake-jpeg")}
        if caption:
            content["caption"] = caption
        msg = self._user_message(chat, self._users[user_id], content)
        return self._emit("message", msg, queue)

    def user_presses(
        self,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        strict: bool = True,
        first_name: str = "Lan",
        queue: bool = True,
    ) -> JSON:
        """A ``callback_query`` for a button of a message the bot sent (default: in the user's private chat).

        ``strict`` (default) requires ``data`` to be the callback_data of one of the message's
        current buttons, as a real client would send.
        """
        target_chat = user_id if chat_id is None else chat_id
        if target_chat == user_id:
            self._ensure_private_chat(user_id, first_name)
        else:
            self._ensure_user(user_id, first_name)
        msg = self._messages.get((target_chat, message_id))
        if msg is None:
            raise ValueError(f"no message {message_id} in chat {target_chat}")
        if msg.get("from", {}).get("id") != self.bot_id:
            raise ValueError(f"message {message_id} in chat {target_chat} was not sent by the bot")
        buttons = [
            b.get("callback_data")
            for row in (msg.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
        ]
        if strict and data not in buttons:
            raise ValueError(
                f"message {message_id} has no button with callback_data {data!r}; buttons: {buttons}"
            )
        query_id = str(4_000_000_000_000_000_000 + next(self._callback_ids))
        self._pending_callbacks.add(query_id)
        payload = {
            "id": query_id,
            "from": dict(self._users[user_id]),
            "message": copy.deepcopy(msg),
            "chat_instance": str((target_chat * 2654435761 + self.bot_id) % (2**63)),
            "data": data,
        }
        return self._emit("callback_query", payload, queue)

    def user_blocks_bot(self, user_id: int, *, first_name: str = "Lan", queue: bool = True) -> JSON:
        """Queue a ``my_chat_member`` member -> kicked update and mark the chat blocked."""
        chat = self._ensure_private_chat(user_id, first_name)
        self.block(user_id)
        return self._emit("my_chat_member", self._member_update(chat, user_id, "member", "kicked"), queue)

    def user_unblocks_bot(self, user_id: int, *, first_name: str = "Lan", queue: bool = True) -> JSON:
        chat = self._ensure_private_chat(user_id, first_name)
        self.unblock(user_id)
        return self._emit("my_chat_member", self._member_update(chat, user_id, "kicked", "member"), queue)

    def bot_added_to_group(
        self, group_id: int, by_user_id: int, *, status: str = "member", first_name: str = "Member",
        queue: bool = True,
    ) -> JSON:
        """A member adds the bot to a registered group. As Telegram does, the bot gets a
        ``my_chat_member`` update (left -> member, or -> administrator when added as admin) and
        the group a ``new_chat_members`` service message; both are queued (the update is returned)."""
        if status not in ("member", "administrator"):
            raise ValueError("the bot joins as member or administrator")
        chat = self._require_chat(group_id)
        self._ensure_user(by_user_id, first_name)
        self.unblock(group_id)
        update = self._emit("my_chat_member", self._member_update(chat, by_user_id, "left", status), queue)
        service = self._user_message(chat, self._users[by_user_id], {"new_chat_members": [dict(self.bot_user)]})
        self._emit("message", service, queue)
        return update

    def bot_removed_from_group(self, group_id: int, by_user_id: int, *, queue: bool = True) -> JSON:
        """A member removes the bot: ``my_chat_member`` member -> left; sends to the group -> 403."""
        chat = self._require_chat(group_id)
        self._ensure_user(by_user_id, "Member")
        self.block(group_id)
        return self._emit("my_chat_member", self._member_update(chat, by_user_id, "member", "left"), queue)

    def member_sends_in_group(
        self,
        group_id: int,
        member_id: int,
        text: str,
        *,
        message_thread_id: int | None = None,
        first_name: str = "Member",
        queue: bool = True,
    ) -> JSON:
        chat = self._require_chat(group_id)
        user = self._ensure_user(member_id, first_name)
        content: JSON = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        if message_thread_id is not None and chat.get("is_forum"):
            content["message_thread_id"] = message_thread_id
            content["is_topic_message"] = True
            # In a forum topic a plain message "replies" to the topic's creation service message.
            created = self._messages.get((group_id, message_thread_id))
            if created is not None:
                content["reply_to_message"] = _without_reply(created)
        msg = self._user_message(chat, user, content)
        return self._emit("message", msg, queue)

    def member_replies_in_group(
        self,
        group_id: int,
        member_id: int,
        reply_to_message_id: int,
        text: str,
        message_thread_id: int | None = None,
        *,
        first_name: str = "Member",
        queue: bool = True,
    ) -> JSON:
        """A group ``message`` replying to a stored message (usually the bot's), with ``reply_to_message``."""
        chat = self._require_chat(group_id)
        original = self._messages.get((group_id, reply_to_message_id))
        if original is None:
            raise ValueError(f"no message {reply_to_message_id} in chat {group_id}")
        user = self._ensure_user(member_id, first_name)
        content: JSON = {"text": text, "reply_to_message": _without_reply(original)}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        thread = message_thread_id if message_thread_id is not None else original.get("message_thread_id")
        if thread is not None:
            content["message_thread_id"] = thread
            if chat.get("is_forum"):
                content["is_topic_message"] = True
        msg = self._user_message(chat, user, content)
        return self._emit("message", msg, queue)

    async def deliver_webhook(
        self,
        updates: Iterable[JSON] | None = None,
        *,
        url: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - HTTP client timeout per delivery run
    ) -> list[int]:
        """POST updates to the webhook like Telegram does (JSON body, secret-token header).

        ``updates`` None = the pending queue, in order; delivered ones are removed, and delivery
        stops at the first failure (status 0 = connection error), recorded in getWebhookInfo's
        last_error_*. ``url`` overrides the stored webhook URL (e.g. a public https URL was set
        but the app under test listens on 127.0.0.1). Returns the HTTP statuses.
        """
        target = url or self.webhook.get("url")
        if not target:
            raise RuntimeError("no webhook set and no url given")
        from_queue = updates is None
        batch = list(self._queue) if updates is None else list(updates)
        headers = {"Content-Type": "application/json"}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        statuses: list[int] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            for update in batch:
                error: str | None = None
                try:
                    body = json.dumps(update, ensure_ascii=False)
                    if not body.isascii():
                        try:
                            body.encode("utf-8")
                        except UnicodeEncodeError:  # a lone surrogate: JSON's own \ud800 escape
                            body = json.dumps(update)
                    async with session.post(target, data=body, headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                        if not 200 <= status < 300:
                            error = f"Wrong response from the webhook: {status} {resp.reason}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = 0
                    error = f"Connection failed: {exc.__class__.__name__}"
                statuses.append(status)
                if error is not None:
                    self.webhook["last_error_date"] = int(time.time())
                    self.webhook["last_error_message"] = error
                    break
                if from_queue and update in self._queue:
                    self._queue.remove(update)
        return statuses

    # ---------------------------------------------------------------- inspection helpers

    @property
    def commands(self) -> list[JSON]:
        """Commands stored for the default scope and no language code."""
        return self.commands_for()

    def commands_for(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return copy.deepcopy(self._commands.get((_scope_key(scope), language_code), []))

    def sent_to(self, chat_id: int | str) -> list[SentMessage]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def texts_to(
        self,
        chat_id: int | str,
        *,
        plain: bool = False,
        methods: Iterable[str] = ("sendMessage", "editMessageText"),
    ) -> list[str]:
        """Texts sent (and edited in) to a chat, in order; raw markup unless ``plain``."""
        wanted = set(methods)
        return [
            (s.plain_text if plain else s.text) or ""
            for s in self.sent
            if s.chat_id == chat_id and s.method in wanted and s.text is not None
        ]

    def last_sent(self, chat_id: int | str | None = None) -> SentMessage:
        records = self.sent if chat_id is None else self.sent_to(chat_id)
        if not records:
            raise AssertionError(f"nothing was sent{'' if chat_id is None else f' to {chat_id}'}")
        return records[-1]

    def calls(self, method: str) -> list[ApiRequest]:
        """All requests (accepted or not) of one method."""
        return [r for r in self.requests if r.method.lower() == method.lower()]

    def clear_records(self) -> None:
        self.sent.clear()
        self.requests.clear()
        self.stats.clear()
        self.answered_callbacks.clear()
        self.callback_answers.clear()
        self.chat_actions.clear()

    async def wait_for_sent(
        self,
        what: int | Callable[[SentMessage], bool] = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline is this helper's whole point
        *,
        chat_id: int | str | None = None,
    ) -> list[SentMessage]:
        """Wait until ``fake.sent`` holds ``what`` records (int) or one matching ``what`` (predicate).

        ``chat_id`` restricts to one chat. Returns the matching records; raises TimeoutError
        listing what was sent and the recent failed calls.
        """
        return await wait_for_records(
            lambda: self.sent, lambda: self._sent_event, what, timeout,
            lambda s: chat_id is None or s.chat_id == chat_id,
            lambda need, got: self._describe_wait_failure(need, got, timeout, chat_id))

    def _describe_wait_failure(self, need: int, got: int, timeout: float, chat_id: Any) -> str:
        where = "" if chat_id is None else f" to chat {chat_id}"
        lines = [f"wait_for_sent: wanted {need} matching send(s){where}, got {got} within {timeout}s."]
        lines.append(f"Sent so far ({len(self.sent)}):")
        lines.extend(
            f"  {s.method} chat={s.chat_id} id={s.message_id} text={(s.text or '')[:80]!r}"
            for s in self.sent[-20:]
        )
        failed = [r for r in self.requests if not r.ok][-10:]
        if failed:
            lines.append("Recent failed API calls:")
            lines.extend(f"  {r.method} -> {r.status} {r.description or ''}" for r in failed)
        return "\n".join(lines)

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        for file_path, data in self._files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        raw_method = request.match_info["method"]
        known = self._handlers.get(raw_method.lower())
        method = known[0] if known else raw_method
        params: JSON = {}
        started = time.time()
        status = 200
        body: JSON | None
        try:
            params = await self._read_params(request)
            self._check_token(request.match_info["token"])
            if known is None:
                raise TelegramApiError(404, "Not Found")
            await self._apply_faults(method, params)
            self._check_rate_limit(method, params)
            result = await known[1](params)
        except TelegramApiError as exc:
            status, body = exc.status, exc.payload()
            if status == 429:
                self.stats["429"] += 1
            response: web.StreamResponse = web.json_response(body, status=status, dumps=_dumps)
        except _RawReply as raw:
            status, body = raw.status, None
            response = web.Response(status=raw.status, text=raw.body, content_type=raw.content_type)
        except _DropConnection:
            self._log(method, params, 0, None, started, request)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError from None
        else:
            if isinstance(result, _Result):
                body = {"ok": True, "result": result.value}
                if result.description:
                    body["description"] = result.description
            else:
                body = {"ok": True, "result": result}
            response = web.json_response(body, dumps=_dumps)
        self.stats["ok" if 200 <= status < 300 else "errors"] += 1
        self.stats[f"status_{status}"] += 1
        self._log(method, params, status, body, started, request)
        return response

    def _log(
        self, method: str, params: JSON, status: int, body: JSON | None, started: float, request: web.Request
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

    async def _read_params(self, request: web.Request) -> JSON:
        params: JSON = {}
        for key, value in request.query.items():
            params[key] = _coerce(key, value)
        if request.method != "POST" or not request.body_exists:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            try:
                data = await request.json(loads=json.loads)
            except ValueError:
                raise _bad("Bad Request: can't parse JSON object") from None
            if not isinstance(data, dict):
                raise _bad("Bad Request: JSON object expected")
            for key, value in data.items():
                if key in _STRUCTURED_PARAMS and isinstance(value, str):
                    params[key] = _coerce(key, value)
                else:
                    params[key] = value
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = UploadedFile(key, value.filename, value.content_type, value.file.read())
                else:
                    params[key] = _coerce(key, str(value))
        return params

    def _check_token(self, token: str) -> None:
        if token == self.token:
            return
        if re.fullmatch(r"\d+:[\w-]+", token):
            raise TelegramApiError(401, "Unauthorized")
        raise TelegramApiError(404, "Not Found")

    async def _apply_faults(self, method: str, params: JSON) -> None:
        lower = method.lower()
        for fault in list(self._faults):
            if fault.method not in ("*", lower):
                continue
            if fault.chat_id is not None and _norm_chat_id(params.get("chat_id")) != fault.chat_id:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            self.stats["injected"] += 1
            raise self._error_for(fault.status, fault.description, fault.retry_after)
        if not self.outage_active or not self._outage_applies(method):
            return
        self.stats["outage"] += 1
        if self._outage_mode == "timeout":
            remaining = (self._outage_until or 0) - time.monotonic()
            hang = self._outage_hang if self._outage_hang is not None else min(max(remaining, 0), 30.0)
            await self._sleep(hang)
            raise _RawReply(504, _nginx_page(504))
        if self._outage_mode == "disconnect":
            raise _DropConnection()
        raise self._error_for(self._outage_status, None, None)

    def _outage_applies(self, method: str) -> bool:
        if self._outage_methods is None:
            return _is_message_method(method)
        return "*" in self._outage_methods or method.lower() in self._outage_methods

    @staticmethod
    def _error_for(status: int, description: str | None, retry_after: int | None) -> Exception:
        if description is None and status in (502, 503, 504):
            return _RawReply(status, _nginx_page(status))
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else _DEFAULT_DESCRIPTIONS.get(status, "Internal Server Error")
            )
        return TelegramApiError(status, description, parameters)

    def _check_rate_limit(self, method: str, params: JSON) -> None:
        limit = self._rate_limit
        if limit is None or not limit.applies(method):
            return
        chat_id = _norm_chat_id(params.get("chat_id"))
        now = time.monotonic()
        waits: list[float] = []
        if limit.global_per_second:
            waits.append(_window_wait(limit.global_window, now, 1.0, limit.global_per_second))
        if limit.per_chat_per_second and chat_id is not None:
            window = limit.chat_windows.setdefault(chat_id, deque())
            waits.append(_window_wait(window, now, limit.burst / limit.per_chat_per_second, limit.burst))
        if limit.group_per_minute and isinstance(chat_id, int) and chat_id < 0:
            window = limit.group_windows.setdefault(chat_id, deque())
            waits.append(_window_wait(window, now, 60.0, limit.group_per_minute))
        wait = max(waits, default=0.0)
        if wait > 0:
            self.stats["rate_limited"] += 1
            retry_after = max(1, math.ceil(wait))
            raise TelegramApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )

    def _count_for_rate_limit(self, method: str, chat_id: Any) -> None:
        limit = self._rate_limit
        if limit is None or not limit.applies(method):
            return
        now = time.monotonic()
        limit.global_window.append(now)
        limit.chat_windows.setdefault(chat_id, deque()).append(now)
        if isinstance(chat_id, int) and chat_id < 0:
            limit.group_windows.setdefault(chat_id, deque()).append(now)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
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

    # ---------------------------------------------------------------- world internals

    def _ensure_user(self, user_id: int, first_name: str = "Lan", **fields: Any) -> JSON:
        user = self._users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": first_name}
            for key in ("last_name", "username", "language_code"):
                value = fields.get(key, "vi" if key == "language_code" else None)
                if value:
                    user[key] = value
            self._users[user_id] = user
        return user

    def _ensure_private_chat(self, user_id: int, first_name: str = "Lan", **fields: Any) -> JSON:
        if user_id not in self._chats:
            self.add_private_chat(user_id, first_name, **fields)
        else:
            self._ensure_user(user_id, first_name, **fields)
        return self._chats[user_id]

    def _require_chat(self, chat_id: int) -> JSON:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ValueError(f"chat {chat_id} is not registered (add_private_chat/add_group)")
        return chat

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_counters.setdefault(chat_id, itertools.count(1))
        while True:
            mid = next(counter)
            if (chat_id, mid) not in self._messages:
                return mid

    def _user_message(self, chat: JSON, user: JSON, content: JSON) -> JSON:
        mid = self._next_message_id(chat["id"])
        msg = {"message_id": mid, "from": dict(user), "chat": dict(chat), "date": int(time.time()), **content}
        self._messages[(chat["id"], mid)] = msg
        return copy.deepcopy(msg)

    def _member_update(self, chat: JSON, user_id: int, old: str, new: str) -> JSON:
        def member(status: str) -> JSON:
            data: JSON = {"user": dict(self.bot_user), "status": status}
            if status == "kicked":
                data["until_date"] = 0
            if status == "administrator":  # ChatMemberAdministrator's required fields
                data.update(can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                            can_delete_messages=True, can_manage_video_chats=False,
                            can_restrict_members=False, can_promote_members=False,
                            can_change_info=False, can_invite_users=True, can_post_stories=False,
                            can_edit_stories=False, can_delete_stories=False)
            return data

        return {
            "chat": dict(chat),
            "from": dict(self._users[user_id]),
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }

    def _register_from_update(self, update: JSON) -> None:
        for key, payload in update.items():
            if key == "update_id" or not isinstance(payload, dict):
                continue
            msg = payload.get("message") if key == "callback_query" else payload
            sender = payload.get("from")
            if isinstance(sender, dict) and isinstance(sender.get("id"), int) and not sender.get("is_bot"):
                self._users.setdefault(sender["id"], dict(sender))
            if not isinstance(msg, dict):
                continue
            chat = msg.get("chat")
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                self._chats.setdefault(chat["id"], dict(chat))
                if chat.get("is_forum"):
                    self._topics.setdefault(chat["id"], {})
                mid = msg.get("message_id")
                if isinstance(mid, int) and key != "my_chat_member":
                    self._messages.setdefault((chat["id"], mid), copy.deepcopy(msg))
                    thread = msg.get("message_thread_id")
                    if chat.get("is_forum") and isinstance(thread, int):
                        self._topics[chat["id"]].setdefault(
                            thread,
                            {
                                "message_thread_id": thread,
                                "name": "Topic",
                                "icon_color": FORUM_ICON_COLORS[0],
                            },
                        )

    def _new_file_id(self, kind: str, data: bytes) -> str:
        file_id = f"AgAC-fake-{kind}-{next(self._file_ids)}"
        self._files[file_id] = (f"{kind}s/file_{len(self._files)}", data)
        return file_id

    def _photo_sizes(self, data: bytes) -> list[JSON]:
        sizes = []
        for width, height in ((90, 90), (320, 320), (800, 800)):
            file_id = self._new_file_id("photo", data)
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "width": width,
                    "height": height,
                    "file_size": len(data),
                }
            )
        return sizes

    def _resolve_chat(self, params: JSON, key: str = "chat_id") -> JSON:
        raw = params.get(key)
        if raw is None or raw == "":
            raise _bad(f"Bad Request: {key} is empty")
        chat_id = _norm_chat_id(raw)
        if isinstance(chat_id, str):
            found = self._usernames.get(chat_id.lstrip("@").lower()) if chat_id.startswith("@") else None
            if found is None:
                raise _bad(DESC_CHAT_NOT_FOUND)
            chat_id = found
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad(DESC_CHAT_NOT_FOUND)
        return chat

    def _check_can_send(self, chat: JSON) -> None:
        chat_id = chat["id"]
        if chat_id in self._migrated:
            raise TelegramApiError(400, DESC_MIGRATED, {"migrate_to_chat_id": self._migrated[chat_id]})
        if chat_id in self._deactivated:
            raise TelegramApiError(403, DESC_DEACTIVATED)
        if chat_id in self._blocked:
            if chat["type"] == "private":
                raise TelegramApiError(403, DESC_BLOCKED)
            kind = "group chat" if chat["type"] == "group" else f"{chat['type']} chat"
            raise TelegramApiError(403, f"Forbidden: bot was kicked from the {kind}")

    def _format(self, text: str, parse_mode: Any, entities: Any) -> tuple[str, list[JSON]]:
        if parse_mode:
            mode = str(parse_mode).lower()
            if mode == "html":
                try:
                    plain, parsed = parse_html(text, strict=self.strict_html)
                except HtmlParseError as exc:
                    raise _bad(f"Bad Request: can't parse entities: {exc}") from None
            elif mode in ("markdown", "markdownv2"):
                plain, parsed = text, []  # not parsed by the fake
            else:
                raise _bad("Bad Request: unsupported parse_mode")
        else:
            plain = text
            parsed = [dict(e) for e in entities] if isinstance(entities, list) else []
        return _trim(plain, parsed)

    def _check_reply_markup(self, markup: Any) -> JSON | None:
        if markup is None:
            return None
        if isinstance(markup, str):
            try:
                markup = json.loads(markup)
            except ValueError:
                raise _bad("Bad Request: can't parse reply keyboard markup JSON object") from None
        if not isinstance(markup, dict):
            raise _bad("Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad(
                    'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
                )
            for row in rows:
                for button in row:
                    _check_inline_button(button)
        elif "keyboard" in markup:
            for row in markup.get("keyboard") or []:
                for button in row if isinstance(row, list) else []:
                    text = button.get("text") if isinstance(button, dict) else button
                    if not isinstance(text, str) or not text.strip():
                        raise _bad(DESC_BUTTON_TEXT)
        return markup

    def _reply_and_thread(self, chat: JSON, params: JSON) -> tuple[JSON | None, int | None]:
        chat_id = chat["id"]
        reply_id: Any = None
        allow = bool(params.get("allow_sending_without_reply"))
        reply_parameters = params.get("reply_parameters")
        reply_chat = chat_id
        if isinstance(reply_parameters, dict):
            reply_id = reply_parameters.get("message_id")
            allow = bool(reply_parameters.get("allow_sending_without_reply", allow))
            if reply_parameters.get("chat_id") is not None:
                reply_chat = _norm_chat_id(reply_parameters["chat_id"])
        elif params.get("reply_to_message_id") is not None:
            reply_id = params["reply_to_message_id"]
        reply_msg = None
        if reply_id is not None:
            reply_msg = self._messages.get((reply_chat, int(reply_id)))  # type: ignore[arg-type]
            if reply_msg is None and not allow:
                raise _bad(DESC_REPLY_NOT_FOUND)
        thread = params.get("message_thread_id")
        thread = int(thread) if thread is not None else None
        if chat.get("is_forum"):
            if thread is None and reply_msg is not None:
                thread = reply_msg.get("message_thread_id")
            if thread is not None and thread not in self._topics.get(chat_id, {}):
                raise _bad(DESC_THREAD_NOT_FOUND)
        else:
            thread = None  # only forum topics are modelled
        return reply_msg, thread

    def _bot_message(
        self,
        chat: JSON,
        content: JSON,
        *,
        reply_to: JSON | None = None,
        thread: int | None = None,
        markup: JSON | None = None,
    ) -> JSON:
        mid = self._next_message_id(chat["id"])
        msg: JSON = {
            "message_id": mid,
            "from": dict(self.bot_user),
            "chat": dict(chat),
            "date": int(time.time()),
        }
        if thread is not None:
            msg["message_thread_id"] = thread
            msg["is_topic_message"] = True
        if reply_to is not None:
            msg["reply_to_message"] = _without_reply(reply_to)
        msg.update(content)
        if markup is not None and "inline_keyboard" in markup:
            msg["reply_markup"] = markup  # Message.reply_markup only ever holds inline keyboards
        self._messages[(chat["id"], mid)] = msg
        return msg

    def _record(
        self,
        method: str,
        params: JSON,
        chat_id: Any,
        msg: JSON | None,
        *,
        text: str | None = None,
        plain: str | None = None,
        parse_mode: str | None = None,
        markup: JSON | None = None,
    ) -> None:
        reply_to = None
        if msg is not None and "reply_to_message" in msg:
            reply_to = msg["reply_to_message"]["message_id"]
        elif isinstance(params.get("reply_parameters"), dict):
            reply_to = params["reply_parameters"].get("message_id")
        elif params.get("reply_to_message_id") is not None:
            reply_to = params["reply_to_message_id"]
        thread = msg.get("message_thread_id") if msg else None
        if thread is None and params.get("message_thread_id") is not None:
            thread = params["message_thread_id"]
        message_id = msg["message_id"] if msg else params.get("message_id")
        self.sent.append(
            SentMessage(
                method=method,
                chat_id=chat_id,
                text=text,
                parse_mode=parse_mode,
                reply_markup=copy.deepcopy(markup),
                message_id=message_id,
                time=time.time(),
                params=dict(params),
                message_thread_id=thread,
                reply_to_message_id=reply_to,
                plain_text=plain,
                message=copy.deepcopy(msg),
            )
        )
        self.stats["sent"] += 1
        self._count_for_rate_limit(method, chat_id)
        self._notify_sent()

    def _editable_message(self, chat: JSON, params: JSON) -> JSON:
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad("Bad Request: message identifier is not specified")
        msg = self._messages.get((chat["id"], int(message_id)))
        if msg is None:
            raise _bad(DESC_EDIT_NOT_FOUND)
        if msg.get("from", {}).get("id") != self.bot_id:
            raise _bad(DESC_CANT_EDIT)
        return msg

    # ---------------------------------------------------------------- methods

    async def _m_accept(self, params: JSON) -> bool:
        return True

    async def _m_get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_log_out(self, params: JSON) -> bool:
        self.logged_out = True
        return True

    async def _m_close(self, params: JSON) -> bool:
        self.closed = True
        return True

    async def _m_get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook.get("url"):
            raise TelegramApiError(409, DESC_WEBHOOK_ACTIVE)
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = list(allowed) or None
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # a waiting older getUpdates is superseded (-> 409)
        if offset > 0:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        elif offset < 0:
            self._queue = self._queue[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, self.max_long_poll)
        while True:
            event = self._updates_event
            if self._queue:
                return copy.deepcopy(self._queue[:limit])
            if generation != self._poll_generation:
                raise TelegramApiError(409, DESC_POLL_CONFLICT)
            remaining = deadline - loop.time()
            if remaining <= 0 or self._stopping.is_set():
                return []
            stop_wait = asyncio.ensure_future(self._stopping.wait())
            update_wait = asyncio.ensure_future(event.wait())
            try:
                await asyncio.wait(
                    {stop_wait, update_wait}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stop_wait.cancel()
                update_wait.cancel()

    def _is_allowed(self, update: JSON) -> bool:
        kind = next((k for k in update if k != "update_id"), "")
        if self._allowed_updates is None:
            return kind not in NOT_DEFAULT_UPDATES
        return kind in self._allowed_updates

    async def _m_set_webhook(self, params: JSON) -> _Result:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None:
            secret = str(secret)
            if not secret:
                raise _bad("Bad Request: secret token is empty")  # wording unverified
            if len(secret) > 256:
                raise _bad("Bad Request: secret token is too long")
            if not re.fullmatch(r"[A-Za-z0-9_-]+", secret):
                raise _bad("Bad Request: secret token contains unallowed characters")
        max_connections = params.get("max_connections")
        if max_connections is not None and not 1 <= int(max_connections) <= 100:
            raise _bad("Bad Request: max_connections must be between 1 and 100")  # wording unverified
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise _bad("Bad Request: bad webhook: Failed to resolve host: Name or service not known")
            if not self.local_mode:
                if parts.scheme != "https":
                    raise _bad("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
                if (parts.port or 443) not in WEBHOOK_PORTS:
                    raise _bad(
                        "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
                    )
        if params.get("drop_pending_updates"):
            self._queue.clear()
        if not url:
            was_set = bool(self.webhook.get("url"))
            self.webhook = {"url": "", "secret_token": None}
            return _Result(True, "Webhook was deleted" if was_set else "Webhook is already deleted")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = list(allowed) or None
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": int(max_connections) if max_connections is not None else 40,
            "ip_address": params.get("ip_address"),
            "allowed_updates": self._allowed_updates,
            "has_custom_certificate": isinstance(params.get("certificate"), UploadedFile),
        }
        self._wake_pollers()
        return _Result(True, "Webhook was set")

    async def _m_delete_webhook(self, params: JSON) -> _Result:
        if params.get("drop_pending_updates"):
            self._queue.clear()
        was_set = bool(self.webhook.get("url"))
        self.webhook = {"url": "", "secret_token": None}
        return _Result(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def _m_get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": bool(self.webhook.get("has_custom_certificate")),
            "pending_update_count": len(self._queue),
        }
        if info["url"]:
            info["max_connections"] = self.webhook.get("max_connections", 40)
            if self.webhook.get("ip_address"):
                info["ip_address"] = self.webhook["ip_address"]
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        if self.webhook.get("last_error_message"):
            info["last_error_date"] = self.webhook["last_error_date"]
            info["last_error_message"] = self.webhook["last_error_message"]
        return info

    async def _m_set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("Bad Request: can't parse commands JSON object")  # wording unverified
        if len(commands) > MAX_COMMANDS:
            raise _bad("Bad Request: too many commands specified")  # wording unverified
        stored = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad("Bad Request: can't parse BotCommand")  # wording unverified
            command, description = item.get("command"), item.get("description")
            if not isinstance(command, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _bad("Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": command, "description": description})
        language_code = str(params.get("language_code") or "")
        if language_code and not re.fullmatch(r"[a-z]{2}", language_code):
            raise _bad("Bad Request: LANG_CODE_INVALID")
        self._commands[(_scope_key(params.get("scope")), language_code)] = stored
        return True

    async def _m_get_my_commands(self, params: JSON) -> list[JSON]:
        return self.commands_for(params.get("scope"), str(params.get("language_code") or ""))

    async def _m_delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop((_scope_key(params.get("scope")), str(params.get("language_code") or "")), None)
        return True

    async def _m_send_message(self, params: JSON) -> JSON:
        text = params.get("text")
        if text is None or text == "":
            raise _bad(DESC_TEXT_EMPTY)
        text = str(text)
        markup = self._check_reply_markup(params.get("reply_markup"))
        plain, entities = self._format(text, params.get("parse_mode"), params.get("entities"))
        chat = self._resolve_chat(params)
        self._check_can_send(chat)
        if not plain:
            raise _bad(DESC_TEXT_EMPTY)
        if _u16(plain) > MAX_TEXT_LENGTH:
            raise _bad(DESC_TOO_LONG)
        reply_to, thread = self._reply_and_thread(chat, params)
        content: JSON = {"text": plain}
        if entities:
            content["entities"] = entities
        msg = self._bot_message(chat, content, reply_to=reply_to, thread=thread, markup=markup)
        self._record(
            "sendMessage",
            params,
            chat["id"],
            msg,
            text=text,
            plain=plain,
            parse_mode=params.get("parse_mode"),
            markup=markup,
        )
        return copy.deepcopy(msg)

    async def _m_edit_message_text(self, params: JSON) -> JSON | bool:
        text = params.get("text")
        if text is None or text == "":
            raise _bad(DESC_TEXT_EMPTY)
        text = str(text)
        markup = self._check_reply_markup(params.get("reply_markup"))
        plain, entities = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain:
            raise _bad(DESC_TEXT_EMPTY)
        if _u16(plain) > MAX_TEXT_LENGTH:
            raise _bad(DESC_TOO_LONG)
        if params.get("inline_message_id"):
            self._record(
                "editMessageText",
                params,
                None,
                None,
                text=text,
                plain=plain,
                parse_mode=params.get("parse_mode"),
                markup=markup,
            )
            return True
        chat = self._resolve_chat(params)
        self._check_can_send(chat)
        msg = self._editable_message(chat, params)
        if "text" not in msg:
            raise _bad("Bad Request: there is no text in the message to edit")
        new_markup = markup if markup is not None and "inline_keyboard" in markup else None
        if (
            msg["text"] == plain
            and msg.get("entities", []) == entities
            and msg.get("reply_markup") == new_markup
        ):
            raise _bad(DESC_NOT_MODIFIED)
        msg["text"] = plain
        _set_or_pop(msg, "entities", entities or None)
        _set_or_pop(msg, "reply_markup", new_markup)  # omitting reply_markup removes the keyboard
        msg["edit_date"] = int(time.time())
        self._record(
            "editMessageText",
            params,
            chat["id"],
            msg,
            text=text,
            plain=plain,
            parse_mode=params.get("parse_mode"),
            markup=new_markup,
        )
        return copy.deepcopy(msg)

    async def _m_edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        markup = self._check_reply_markup(params.get("reply_markup"))
        new_markup = markup if markup is not None and "inline_keyboard" in markup else None
        if params.get("inline_message_id"):
            self._record("editMessageReplyMarkup", params, None, None, markup=new_markup)
            return True
        chat = self._resolve_chat(params)
        self._check_can_send(chat)
        msg = self._editable_message(chat, params)
        if msg.get("reply_markup") == new_markup:
            raise _bad(DESC_NOT_MODIFIED)
        _set_or_pop(msg, "reply_markup", new_markup)
        msg["edit_date"] = int(time.time())
        self._record("editMessageReplyMarkup", params, chat["id"], msg, markup=new_markup)
        return copy.deepcopy(msg)

    async def _m_delete_message(self, params: JSON) -> bool:
        chat = self._resolve_chat(params)
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad("Bad Request: message identifier is not specified")
        msg = self._messages.pop((chat["id"], int(message_id)), None)
        if msg is None:
            raise _bad("Bad Request: message to delete not found")
        self._record("deleteMessage", params, chat["id"], None)
        return True

    async def _m_answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._pending_callbacks:
            raise _bad(DESC_QUERY_TOO_OLD)
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("Bad Request: MESSAGE_TOO_LONG")  # wording unverified
        self._pending_callbacks.discard(query_id)
        self.answered_callbacks.append(query_id)
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "text": text,
                "show_alert": bool(params.get("show_alert")),
                "url": params.get("url"),
                "cache_time": params.get("cache_time"),
            }
        )
        return True

    async def _m_send_photo(self, params: JSON) -> JSON:
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = params.get(photo[len("attach://") :])
        if photo is None or photo == "":
            raise _bad("Bad Request: there is no photo in the request")
        if isinstance(photo, UploadedFile):
            data = photo.data
        elif isinstance(photo, str) and (re.match(r"^https?://\S+$", photo) or photo in self._files):
            data = self._files[photo][1] if photo in self._files else b"fetched-from-url"
        else:
            raise _bad("Bad Request: wrong file identifier/HTTP URL specified")
        markup = self._check_reply_markup(params.get("reply_markup"))
        caption = params.get("caption")
        plain, entities = (
            self._format(str(caption), params.get("parse_mode"), params.get("caption_entities"))
            if caption
            else ("", [])
        )
        chat = self._resolve_chat(params)
        self._check_can_send(chat)
        if _u16(plain) > MAX_CAPTION_LENGTH:
            raise _bad(DESC_CAPTION_TOO_LONG)
        reply_to, thread = self._reply_and_thread(chat, params)
        content: JSON = {"photo": self._photo_sizes(data)}
        if plain:
            content["caption"] = plain
        if entities:
            content["caption_entities"] = entities
        msg = self._bot_message(chat, content, reply_to=reply_to, thread=thread, markup=markup)
        self._record(
            "sendPhoto",
            params,
            chat["id"],
            msg,
            text=str(caption) if caption else None,
            plain=plain or None,
            parse_mode=params.get("parse_mode"),
            markup=markup,
        )
        return copy.deepcopy(msg)

    async def _m_send_poll(self, params: JSON) -> JSON:
        # Poll error wordings below are unverified approximations (limits are from PTB's PollLimit).
        question = params.get("question")
        if not question:
            raise _bad("Bad Request: poll question must be non-empty")
        question_plain, question_entities = self._format(
            str(question), params.get("question_parse_mode"), params.get("question_entities")
        )
        if not question_plain:
            raise _bad("Bad Request: poll question must be non-empty")
        if len(question_plain) > POLL_QUESTION_MAX:
            raise _bad(f"Bad Request: poll question length must not exceed {POLL_QUESTION_MAX}")
        raw_options = params.get("options")
        if not isinstance(raw_options, list):
            raise _bad("Bad Request: can't parse options JSON object")
        options = []
        for index, option in enumerate(raw_options):
            option_text = option.get("text") if isinstance(option, dict) else option
            if not isinstance(option_text, str) or not option_text.strip():
                raise _bad("Bad Request: poll options must be non-empty")
            if len(option_text) > POLL_OPTION_MAX:
                raise _bad(f"Bad Request: poll options length must not exceed {POLL_OPTION_MAX}")
            options.append({"text": option_text, "voter_count": 0, "persistent_id": str(index)})
        if len(options) < POLL_OPTIONS_MIN:
            raise _bad(f"Bad Request: poll must have at least {POLL_OPTIONS_MIN} option")
        if len(options) > POLL_OPTIONS_MAX:
            raise _bad(f"Bad Request: poll can't have more than {POLL_OPTIONS_MAX} options")
        poll_type = str(params.get("type") or "regular")
        if poll_type not in ("regular", "quiz"):
            raise _bad("Bad Request: wrong poll type specified")
        multiple = bool(params.get("allows_multiple_answers"))
        correct = params.get("correct_option_ids")
        if correct is None and params.get("correct_option_id") is not None:
            correct = [params["correct_option_id"]]
        explanation = params.get("explanation")
        poll: JSON = {
            "id": str(5_000_000_000_000_000_000 + next(self._callback_ids)),
            "question": question_plain,
            "options": options,
            "total_voter_count": 0,
            "is_closed": bool(params.get("is_closed")),
            "is_anonymous": bool(params.get("is_anonymous", True)),
            "type": poll_type,
            "allows_multiple_answers": multiple,
            "allows_revoting": bool(params.get("allows_revoting")),
            "members_only": bool(params.get("members_only")),
        }
        if question_entities:
            poll["question_entities"] = question_entities
        if poll_type == "quiz":
            if not isinstance(correct, list) or not correct:
                raise _bad("Bad Request: quiz poll must have a correct option")
            ids = [int(c) for c in correct]
            if (
                any(not 0 <= c < len(options) for c in ids)
                or ids != sorted(set(ids))
                or (len(ids) > 1 and not multiple)
            ):
                raise _bad("Bad Request: wrong correct option ids specified")
            poll["correct_option_ids"] = ids  # Bot API 9.6+ no longer returns correct_option_id
            if explanation:
                expl_plain, expl_entities = self._format(
                    str(explanation), params.get("explanation_parse_mode"), params.get("explanation_entities")
                )
                if len(expl_plain) > POLL_EXPLANATION_MAX:
                    raise _bad(f"Bad Request: explanation length must not exceed {POLL_EXPLANATION_MAX}")
                if expl_plain.count("\n") > 2:
                    raise _bad("Bad Request: explanation can't contain more than 2 line feeds")
                poll["explanation"] = expl_plain
                if expl_entities:
                    poll["explanation_entities"] = expl_entities
        if params.get("open_period") is not None:
            poll["open_period"] = int(params["open_period"])
        if params.get("close_date") is not None:
            poll["close_date"] = int(params["close_date"])
        markup = self._check_reply_markup(params.get("reply_markup"))
        chat = self._resolve_chat(params)
        self._check_can_send(chat)
        reply_to, thread = self._reply_and_thread(chat, params)
        msg = self._bot_message(chat, {"poll": poll}, reply_to=reply_to, thread=thread, markup=markup)
        self._record(
            "sendPoll", params, chat["id"], msg, text=str(question), plain=question_plain, markup=markup
        )
        return copy.deepcopy(msg)

    async def _m_create_forum_topic(self, params: JSON) -> JSON:
        chat = self._resolve_chat(params)
        self._check_can_send(chat)
        if not chat.get("is_forum"):
            raise _bad(DESC_NOT_FORUM)
        name = str(params.get("name") or "")
        if not 1 <= len(name) <= 128:
            raise _bad("Bad Request: TOPIC_TITLE_EMPTY" if not name else "Bad Request: TOPIC_TITLE_TOO_LONG")
        icon_color = int(params.get("icon_color") or FORUM_ICON_COLORS[0])
        if icon_color not in FORUM_ICON_COLORS:
            raise _bad("Bad Request: TOPIC_ICON_COLOR_INVALID")  # wording unverified
        topic: JSON = {"message_thread_id": 0, "name": name, "icon_color": icon_color}
        if params.get("icon_custom_emoji_id"):
            topic["icon_custom_emoji_id"] = params["icon_custom_emoji_id"]
        service = self._bot_message(chat, {"forum_topic_created": {"name": name, "icon_color": icon_color}})
        thread = service["message_id"]  # a topic's id is the id of its creation service message
        service["message_thread_id"] = thread
        service["is_topic_message"] = True
        topic["message_thread_id"] = thread
        self._topics.setdefault(chat["id"], {})[thread] = topic
        return dict(topic)

    async def _m_send_chat_action(self, params: JSON) -> bool:
        chat = self._resolve_chat(params)
        action = str(params.get("action") or "")
        if action not in CHAT_ACTIONS:
            raise _bad("Bad Request: wrong parameter action in request")
        self._check_can_send(chat)
        self.chat_actions.append(
            {
                "chat_id": chat["id"],
                "action": action,
                "message_thread_id": params.get("message_thread_id"),
                "time": time.time(),
            }
        )
        return True

    async def _m_get_chat(self, params: JSON) -> JSON:
        chat = self._resolve_chat(params)
        info = dict(chat)
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return info

    async def _m_get_file(self, params: JSON) -> JSON:
        file_id = str(params.get("file_id") or "")
        if file_id not in self._files:
            raise _bad("Bad Request: invalid file_id")
        path, data = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(data),
            "file_path": path,
        }


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _coerce(key: str, value: str) -> Any:
    """Form/query values are strings; PTB JSON-encodes every non-string parameter."""
    if key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _norm_chat_id(value: Any) -> int | str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _is_message_method(method: str) -> bool:
    if method in ("deleteWebhook", "deleteMyCommands"):
        return False
    return method.startswith(
        ("send", "edit", "answer", "delete", "copy", "forward", "createForumTopic", "pin", "unpin", "stop")
    )


def _scope_key(scope: Any) -> str:
    if isinstance(scope, str):
        try:
            scope = json.loads(scope)
        except ValueError:
            scope = None
    if not scope or scope == {"type": "default"}:
        return '{"type": "default"}'
    return json.dumps(scope, sort_keys=True)


def _window_wait(window: deque[float], now: float, length: float, capacity: int) -> float:
    """Seconds until one more event fits into the sliding window (0 = fits now)."""
    while window and window[0] <= now - length:
        window.popleft()
    if len(window) < capacity:
        return 0.0
    return window[len(window) - capacity] + length - now


def _without_reply(msg: JSON) -> JSON:
    copied = copy.deepcopy(msg)
    copied.pop("reply_to_message", None)
    return copied


def _set_or_pop(target: JSON, key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _command_entities(text: str) -> list[JSON]:
    match = re.match(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?", text)
    return [{"type": "bot_command", "offset": 0, "length": len(match.group(0))}] if match else []


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise _bad("Bad Request: can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise _bad('Bad Request: can\'t parse inline keyboard button: Field "text" must be of type String')
    actions = [
        key
        for key in INLINE_BUTTON_ACTIONS
        if key in button
        and button[key] is not None
        and (button[key] != "" or key.startswith("switch_inline"))
    ]
    if not actions:
        raise _bad(DESC_TEXT_BUTTON)
    if not text.strip():
        raise _bad(DESC_BUTTON_TEXT)
    if "callback_data" in actions:
        data = button["callback_data"]
        if not isinstance(data, str):
            raise _bad(
                'Bad Request: can\'t parse inline keyboard button: Field "callback_data" must be of type String'
            )
        if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            raise _bad(DESC_BUTTON_DATA)
    if "url" in actions:
        url = button["url"]
        if not isinstance(url, str) or not re.match(
            r"^(?:https?|tg)://[^\s/$.?#][^\s]*$", url, re.IGNORECASE
        ):
            raise _bad(DESC_BUTTON_URL)
