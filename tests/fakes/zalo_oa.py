"""A protocol-faithful fake of the Zalo Official Account (OA) Open API + OAuth v4, for tests.

Two real HTTP servers on 127.0.0.1 (random ports), standing for the two Zalo hosts, so the app
is pointed at separate base URLs exactly as in production::

    async with FakeZaloOA() as fake:
        fake.add_user("8123456789012345678", display_name="Lan")
        app = my_app_factory(                               # your code under test
            api_base=fake.api_base_url,                     # https://openapi.zalo.me
            oauth_base=fake.oauth_base_url,                 # https://oauth.zaloapp.com
            access_token=fake.access_token, refresh_token=fake.refresh_token,
            app_id=fake.app_id, app_secret=fake.app_secret, oa_secret_key=fake.oa_secret_key)
        body, headers = fake.webhook_request(fake.make_event("user_send_text", "8123...", "xin chào"))
        ...                                                 # POST body/headers into the app
        [sent] = await fake.wait_for_sent(user_id="8123456789012345678")

Facts and sources (see /work/shared/notes/platforms.md section 3; "3p" = third-party only):

* API host (``api_base_url``), header ``access_token: <token>`` (a query ``?access_token=`` is
  accepted only with ``accept_query_token=True``; older v2 integrations used it):
  - ``POST /v3.0/oa/message/cs`` consultation ("tư vấn") message, JSON
    ``{"recipient": {"user_id"}, "message": {"text"} | {"attachment"} }`` (Zalo Java SDK,
    Chatwoot). ``/v3.0/oa/message/transaction`` and ``/v3.0/oa/message/promotion`` (PHP SDK
    constants) take the same envelope with an ``attachment`` template.
  - ``GET /v2.0/oa/getoa`` OA profile (Chatwoot ``official_account.rb``) - the health check.
  - ``GET /v3.0/oa/user/detail?data={"user_id": "..."}`` (Chatwoot ``user.rb``).
  - Every answer is HTTP 200 with ``{"error": <int>, "message": <str>, "data"?: {...}}``;
    ``error == 0`` is success (Chatwoot ``client.rb``).
* OAuth host (``oauth_base_url``): ``POST /v4/oa/access_token``, form-urlencoded ``app_id``,
  ``grant_type=refresh_token``, ``refresh_token`` (or ``grant_type=authorization_code``, ``code``,
  ``code_verifier``), header ``secret_key: <app secret>`` (Java/PHP SDK). Success:
  ``{"access_token", "refresh_token", "expires_in": "90000"}`` - ``expires_in`` is a STRING.
  Refresh tokens are single-use (3p, consistent).
* Error codes: -216 access token invalid/expired (Chatwoot); -230 user has not interacted in the
  past 7 days (3p). UNCONFIRMED, from a third-party table (hoangnd25/monorepo): -32 rate limit,
  -201 invalid parameter, -210 parameter exceeds limit, -213 user has not followed OA, -220
  access token expired or removed, -240 v2 message API shut down. OAuth errors carry
  ``error_name``/``error_reason``/``error_description`` (3p: ChatbotX PR #1019 - "sometimes with
  HTTP 200", sometimes without a numeric ``error``); the numeric OAuth codes here are invented.
* Text limit 2000 characters (UNCONFIRMED, reseller docs); 7-day consultation window (3p).
* Webhook: ``X-ZEvent-Signature: mac=<sha256 hex of app_id + raw body + timestamp + OA secret key>``
  (plain SHA-256, not HMAC; Zalo Java SDK ``MacUtils.buildMac``); ``app_id`` and ``timestamp``
  come from the JSON body (Chatwoot). See :func:`zalo_signature`, :meth:`FakeZaloOA.make_event`.

Deliberate choices where the real service is unknown (documented so nobody relies on them):

* ``revoke_old_access_token=True``: a refresh invalidates the previous access token at once.
* ``cs_requires_follower=True``: a consultation message to a user who unfollowed fails with -213.
* Unknown ``user_id`` -> -201 "user_id is invalid!"; unknown paths -> HTTP 404 JSON.
* ``SentMessage.free`` models the help-centre "8 free replies within 48 h" rule; informational only.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import json
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

__all__ = [
    "ApiRequest",
    "FakeZaloOA",
    "SentMessage",
    "TokenRefresh",
    "ZaloOAError",
    "zalo_signature",
    "verify_zalo_signature",
]

JSON = dict[str, Any]

MAX_TEXT_LENGTH = 2000  # UNCONFIRMED (reseller docs)
CS_WINDOW = timedelta(days=7)  # 3p; consistent with error -230
FREE_WINDOW = timedelta(hours=48)  # Zalo OA help centre
FREE_REPLIES = 8  # Zalo OA help centre
DEFAULT_EXPIRES_IN = 90_000  # seconds (25 h), as observed in refresh responses
SIGNATURE_HEADER = "X-ZEvent-Signature"

# OpenAPI error codes (body "error"); see module docstring for their sources.
ERR_RATE_LIMIT = -32
ERR_SEND_FAILED = -200
ERR_INVALID_PARAM = -201
ERR_PARAM_LIMIT = -210
ERR_NOT_FOLLOWER = -213
ERR_TOKEN_INVALID = -216
ERR_TOKEN_EXPIRED = -220
ERR_OUTSIDE_WINDOW = -230
ERR_V2_SHUT_DOWN = -240

ERROR_MESSAGES = {
    ERR_RATE_LIMIT: "Your application reached limit call api",
    ERR_SEND_FAILED: "Send message failed",
    ERR_INVALID_PARAM: "Parameters invalid",
    ERR_PARAM_LIMIT: "Parameter exceeds allowable limit",
    ERR_NOT_FOLLOWER: "User has not followed OA",
    ERR_TOKEN_INVALID: "Access token is invalid",
    ERR_TOKEN_EXPIRED: "access_token is expired or removed",
    ERR_OUTSIDE_WINDOW: "User has not interacted with the OA in the past 7 days",
    ERR_V2_SHUT_DOWN: "MessageV2 API has been shut down",
}

# OAuth v4 errors: field names are 3p-confirmed, the numbers are NOT (invented, stable for tests).
OAUTH_ERR_INVALID_PARAM = -14003
OAUTH_ERR_INVALID_SECRET = -14004
OAUTH_ERR_INVALID_REFRESH_TOKEN = -14014
OAUTH_ERR_INVALID_CODE = -14019

PATH_CS = "/v3.0/oa/message/cs"
PATH_TRANSACTION = "/v3.0/oa/message/transaction"
PATH_PROMOTION = "/v3.0/oa/message/promotion"
PATH_GET_OA = "/v2.0/oa/getoa"
PATH_USER_DETAIL = "/v3.0/oa/user/detail"
PATH_V2_MESSAGE = "/v2.0/oa/message"
PATH_ACCESS_TOKEN = "/v4/oa/access_token"

# Short names accepted by fail_next/set_outage/enforce_rate_limit (paths work too).
ENDPOINT_NAMES = {
    "cs": PATH_CS,
    "transaction": PATH_TRANSACTION,
    "promotion": PATH_PROMOTION,
    "getoa": PATH_GET_OA,
    "user_detail": PATH_USER_DETAIL,
    "access_token": PATH_ACCESS_TOKEN,
    "oauth": PATH_ACCESS_TOKEN,
    "refresh": PATH_ACCESS_TOKEN,
}
SEND_PATHS = frozenset({PATH_CS, PATH_TRANSACTION, PATH_PROMOTION})
KIND_BY_PATH = {PATH_CS: "cs", PATH_TRANSACTION: "transaction", PATH_PROMOTION: "promotion"}

TEMPLATE_TYPES = frozenset({"media", "button", "list", "request_user_info"})
BUTTON_TYPES = frozenset({"oa.open.url", "oa.query.show", "oa.query.hide", "oa.open.sms", "oa.open.phone"})
MEDIA_TYPES = frozenset({"image", "gif"})
WEBHOOK_EVENTS_WITH_MESSAGE = frozenset(
    {
        "user_send_text",
        "user_send_image",
        "user_send_gif",
        "user_send_sticker",
        "user_send_link",
        "user_send_audio",
        "user_send_video",
        "user_send_file",
        "user_send_location",
        "user_send_business_card",
        "anonymous_send_text",
    }
)


# --------------------------------------------------------------------------------------------
# Signature
# --------------------------------------------------------------------------------------------


def _b(value: str | bytes | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def zalo_signature(
    app_id: str | int, body: bytes | str, timestamp: str | int, secret: str, *, prefix: bool = True
) -> str:
    """``X-ZEvent-Signature`` value: ``mac=`` + SHA-256 hex of app_id + raw body + timestamp + OA secret.

    Plain SHA-256 (not HMAC) as in Zalo's Java SDK ``MacUtils.buildMac(appId, data, timeStamp,
    secretKey)``. ``body`` must be the exact bytes sent; ``timestamp`` is the body's string of ms.
    """
    digest = hashlib.sha256(_b(app_id) + _b(body) + _b(timestamp) + _b(secret)).hexdigest()
    return f"mac={digest}" if prefix else digest


def verify_zalo_signature(
    header: str | None, app_id: str | int, body: bytes, timestamp: str, secret: str
) -> bool:
    """Reference verifier (accepts the value with or without ``mac=``; constant-time compare)."""
    if not header:
        return False
    given = header.strip()
    if given.lower().startswith("mac="):
        given = given[4:]
    expected = zalo_signature(app_id, body, timestamp, secret, prefix=False)
    return secrets.compare_digest(given.lower(), expected)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class SentMessage:
    """One accepted message send (cs / transaction / promotion)."""

    user_id: str
    text: str | None
    attachment: JSON | None
    raw: JSON
    time: float
    kind: str = "cs"
    message_id: str = ""
    reply_to: str | None = None  # recipient.message_id or message.quote_message_id, if any
    free: bool | None = None  # within 48 h and <= 8 replies since the user's last message

    @property
    def template_type(self) -> str | None:
        return ((self.attachment or {}).get("payload") or {}).get("template_type")

    @property
    def buttons(self) -> list[JSON]:
        return list(((self.attachment or {}).get("payload") or {}).get("buttons") or [])


@dataclass
class TokenRefresh:
    """One successful call of the OAuth token endpoint."""

    grant_type: str
    old_refresh_token: str | None
    access_token: str
    refresh_token: str
    expires_in: int
    time: float


@dataclass
class ApiRequest:
    """Every HTTP call the fake received (both hosts), including rejected ones."""

    host: str  # "api" | "oauth"
    http_method: str
    path: str
    name: str
    headers: JSON
    query: JSON
    body: Any
    status: int
    response: Any
    time: float

    @property
    def error(self) -> int | None:
        return self.response.get("error") if isinstance(self.response, dict) else None

    @property
    def ok(self) -> bool:
        if self.status != 200 or not isinstance(self.response, dict):
            return False
        if self.host == "oauth":
            return "access_token" in self.response
        return self.response.get("error") == 0


class ZaloOAError(Exception):
    """Raise inside a handler to answer ``{"error": code, "message": msg}`` (HTTP 200)."""

    def __init__(self, code: int, message: str | None = None, *, http_status: int = 200) -> None:
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Unknown error")
        self.http_status = http_status
        super().__init__(f"{code}: {self.message}")

    def payload(self) -> JSON:
        return {"error": self.code, "message": self.message}


class _OAuthError(Exception):
    def __init__(self, code: int | None, name: str, reason: str, description: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.name = name
        self.reason = reason
        self.description = description or reason

    def payload(self, numeric: bool) -> JSON:
        body: JSON = {
            "error_name": self.name,
            "error_reason": self.reason,
            "ref_doc": "https://developers.zalo.me/docs/official-account/bat-dau/xac-thuc-va-uy-quyen-cho-ung-dung-new",
            "error_description": self.description,
        }
        if numeric and self.code is not None:
            body["error"] = self.code
        return body


class _RawReply(Exception):  # noqa: N818 - control flow
    def __init__(self, status: int, body: str, content_type: str = "text/html") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


class _DropConnection(Exception):  # noqa: N818 - control flow
    pass


@dataclass
class _Fault:
    path: str  # a path or "*" (any API-host path) or "**" (both hosts)
    code: int
    message: str | None
    http_status: int
    remaining: int
    user_id: str | None = None


@dataclass
class _RateLimit:
    per_second: int | None
    per_minute: int | None
    paths: frozenset[str]
    second_window: deque[float] = field(default_factory=deque)
    minute_window: deque[float] = field(default_factory=deque)


@dataclass
class _User:
    user_id: str
    display_name: str
    follower: bool
    last_interaction: datetime | None
    user_id_by_app: str
    replies_since_interaction: int = 0
    avatar: str = ""
    shared_info: JSON | None = None


def _invalid(field_name: str) -> ZaloOAError:
    return ZaloOAError(ERR_INVALID_PARAM, f"{field_name} is invalid!")


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


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.astimezone()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _digits_id(seed: str, length: int = 19) -> str:
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(10 ** (length - 1) + number % (9 * 10 ** (length - 1)))


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class FakeZaloOA:
    """In-process fake of openapi.zalo.me + oauth.zaloapp.com. See the module docstring."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        app_id: str = "1357924680135792468",
        app_secret: str = "fake-app-secret-key",
        oa_id: str = "2468013579246801357",
        oa_secret_key: str = "fake-oa-secret-key",
        oa_name: str = "Trợ lý Dịch vụ công (test)",
        access_token: str | None = None,
        refresh_token: str | None = None,
        expires_in: int = DEFAULT_EXPIRES_IN,
        cs_window: timedelta = CS_WINDOW,
        max_text_length: int = MAX_TEXT_LENGTH,
        expired_token_code: int = ERR_TOKEN_INVALID,
        revoke_old_access_token: bool = True,
        cs_requires_follower: bool = True,
        accept_query_token: bool = False,
        oauth_error_numeric: bool = True,
    ) -> None:
        self.host = host
        self.app_id = app_id
        self.app_secret = app_secret
        self.oa_id = oa_id
        self.oa_secret_key = oa_secret_key
        self.oa_name = oa_name
        self.expires_in = expires_in
        self.cs_window = cs_window
        self.max_text_length = max_text_length
        self.expired_token_code = expired_token_code
        self.revoke_old_access_token = revoke_old_access_token
        self.cs_requires_follower = cs_requires_follower
        self.accept_query_token = accept_query_token
        self.oauth_error_numeric = oauth_error_numeric

        # Records (public).
        self.sent: list[SentMessage] = []
        self.requests: list[ApiRequest] = []
        self.refreshes: list[TokenRefresh] = []
        self.stats: Counter[str] = Counter()

        self._serial = itertools.count(1)
        self._access_token = access_token or self._new_token("oa-access")
        self._refresh_token = refresh_token or self._new_token("oa-refresh")
        self._token_issued = time.monotonic()
        self._token_expired = False
        self._old_access_tokens: set[str] = set()
        self._used_refresh_tokens: set[str] = set()
        self._auth_codes: dict[str, str | None] = {}
        self._users: dict[str, _User] = {}
        self._inbound_msg_ids: dict[str, str] = {}  # msg_id -> user_id
        self._faults: list[_Fault] = []
        self._outage_until: float | None = None
        self._outage_mode = "5xx"
        self._outage_status = 502
        self._outage_paths: frozenset[str] | None = None  # None = API host
        self._outage_hang: float | None = None
        self._rate_limit: _RateLimit | None = None

        self._api_runner: web.AppRunner | None = None
        self._oauth_runner: web.AppRunner | None = None
        self._api_port = 0
        self._oauth_port = 0
        self._stopping = asyncio.Event()
        self._sent_event = asyncio.Event()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeZaloOA:
        if self._api_runner is not None:
            return self
        self._stopping = asyncio.Event()
        api = web.Application()
        api.router.add_route("POST", PATH_CS, self._handle_api)
        api.router.add_route("POST", PATH_TRANSACTION, self._handle_api)
        api.router.add_route("POST", PATH_PROMOTION, self._handle_api)
        api.router.add_route("POST", PATH_V2_MESSAGE, self._handle_api)
        api.router.add_route("GET", PATH_GET_OA, self._handle_api)
        api.router.add_route("GET", PATH_USER_DETAIL, self._handle_api)
        api.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        oauth = web.Application()
        oauth.router.add_route("POST", PATH_ACCESS_TOKEN, self._handle_oauth)
        oauth.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._api_runner, self._api_port = await self._serve(api)
        self._oauth_runner, self._oauth_port = await self._serve(oauth)
        return self

    async def _serve(self, app: web.Application) -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        return runner, port

    async def stop(self) -> None:
        if self._api_runner is None:
            return
        self._stopping.set()
        runners = [self._api_runner, self._oauth_runner]
        self._api_runner = self._oauth_runner = None
        for runner in runners:
            if runner is not None:
                await runner.cleanup()

    async def __aenter__(self) -> FakeZaloOA:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _require_started(self) -> None:
        if self._api_runner is None:
            raise RuntimeError("FakeZaloOA is not started")

    @property
    def url(self) -> str:
        """Same as ``api_base_url``."""
        return self.api_base_url

    @property
    def api_base_url(self) -> str:
        """Stands for ``https://openapi.zalo.me`` (no trailing slash)."""
        self._require_started()
        return f"http://{self.host}:{self._api_port}"

    @property
    def oauth_base_url(self) -> str:
        """Stands for ``https://oauth.zaloapp.com`` (no trailing slash)."""
        self._require_started()
        return f"http://{self.host}:{self._oauth_port}"

    @property
    def cs_url(self) -> str:
        return self.api_base_url + PATH_CS

    @property
    def token_url(self) -> str:
        return self.oauth_base_url + PATH_ACCESS_TOKEN

    # ---------------------------------------------------------------- tokens

    @property
    def access_token(self) -> str:
        """The currently valid access token (even after ``expire_token``: it is then expired)."""
        return self._access_token

    @property
    def refresh_token(self) -> str:
        """The current (unused) refresh token."""
        return self._refresh_token

    def expire_token(self) -> None:
        """Make the current access token expired: the next API call answers ``expired_token_code``."""
        self._token_expired = True

    def revoke_refresh_token(self) -> None:
        """Make the current refresh token unusable (as if it expired after 3 months)."""
        self._used_refresh_tokens.add(self._refresh_token)

    def new_auth_code(self, code_verifier: str | None = None) -> str:
        """An authorization code for ``grant_type=authorization_code`` (single-use)."""
        code = self._new_token("oa-code")
        self._auth_codes[code] = code_verifier
        return code

    def _new_token(self, kind: str) -> str:
        return f"{kind}-{next(self._serial)}-{secrets.token_urlsafe(12)}"

    def _token_state(self, token: str | None) -> str:
        if not token:
            return "missing"
        if token == self._access_token:
            if self._token_expired or time.monotonic() > self._token_issued + self.expires_in:
                return "expired"
            return "valid"
        if token in self._old_access_tokens:
            return "expired"
        return "invalid"

    def _issue_tokens(self) -> tuple[str, str]:
        if self.revoke_old_access_token:
            self._old_access_tokens.add(self._access_token)
        self._access_token = self._new_token("oa-access")
        self._refresh_token = self._new_token("oa-refresh")
        self._token_issued = time.monotonic()
        self._token_expired = False
        return self._access_token, self._refresh_token

    # ---------------------------------------------------------------- users

    def add_user(
        self,
        user_id: str | int,
        *,
        display_name: str = "Lan",
        follower: bool = True,
        last_interaction: datetime | None | str = "now",
        shared_info: JSON | None = None,
    ) -> str:
        """Register a user (scoped OA user id, kept as a string). ``last_interaction=None`` = never."""
        uid = str(user_id)
        if last_interaction == "now":
            when: datetime | None = self._now()
        elif isinstance(last_interaction, datetime):
            when = _aware(last_interaction)
        else:
            when = None
        self._users[uid] = _User(
            user_id=uid,
            display_name=display_name,
            follower=follower,
            last_interaction=when,
            user_id_by_app=_digits_id(f"{self.app_id}:{uid}"),
            avatar=f"https://s120-ava-talk.zadn.vn/fake/{uid}.jpg",
            shared_info=shared_info,
        )
        return uid

    def _ensure_user(self, user_id: str | int) -> _User:
        uid = str(user_id)
        if uid not in self._users:
            self.add_user(uid, last_interaction=None)
        return self._users[uid]

    def set_last_interaction(self, user_id: str | int, when: datetime | None) -> None:
        """Set when the user last interacted (naive datetimes are local time). Resets the free-reply count."""
        user = self._ensure_user(user_id)
        user.last_interaction = _aware(when) if when is not None else None
        user.replies_since_interaction = 0

    def set_follower(self, user_id: str | int, follower: bool) -> None:
        self._ensure_user(user_id).follower = follower

    def remove_user(self, user_id: str | int) -> None:
        self._users.pop(str(user_id), None)

    def user(self, user_id: str | int) -> JSON | None:
        """The user-detail ``data`` the API would return (None if unknown)."""
        user = self._users.get(str(user_id))
        return None if user is None else self._user_detail(user)

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    # ---------------------------------------------------------------- fault injection

    def fail_next(
        self,
        target: str = "cs",
        error_code: int = ERR_SEND_FAILED,
        message: str | None = None,
        count: int = 1,
        *,
        user_id: str | int | None = None,
        http_status: int = 200,
    ) -> None:
        """The next ``count`` calls to ``target`` fail.

        ``target``: a short name (cs, transaction, promotion, getoa, user_detail, access_token /
        oauth / refresh), a path, "*" (any API-host call) or "**" (both hosts). On the API host the
        answer is ``{"error": error_code, "message": ...}`` with ``http_status`` (default 200, as
        Zalo does); ``http_status`` >= 500 answers an nginx HTML page instead. On the OAuth host
        the answer is an OAuth error body. ``user_id`` restricts to sends to that user.
        """
        path = target if target in ("*", "**") else ENDPOINT_NAMES.get(target, target)
        self._faults.append(
            _Fault(path, error_code, message, http_status, count, None if user_id is None else str(user_id))
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_outage(
        self,
        seconds: float | None,
        mode: str = "5xx",
        *,
        status: int = 502,
        targets: Iterable[str] | str | None = None,
        hang: float | None = None,
    ) -> None:
        """Simulate an outage for ``seconds`` (``math.inf`` = until cleared; None/0 clears it).

        mode "5xx": answer ``status`` with an nginx HTML page; "timeout": hold the request ``hang``
        seconds (default: until the outage ends, max 30 s) then answer 504; "disconnect": drop the
        connection. ``targets``: None = every API-host endpoint, "all" = both hosts, or names/paths.
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
        if targets is None:
            self._outage_paths = None
        elif targets == "all":
            self._outage_paths = frozenset({"**"})
        else:
            names = [targets] if isinstance(targets, str) else list(targets)
            self._outage_paths = frozenset(ENDPOINT_NAMES.get(t, t) for t in names)

    def clear_outage(self) -> None:
        self._outage_until = None

    @property
    def outage_active(self) -> bool:
        return self._outage_until is not None and time.monotonic() < self._outage_until

    def enforce_rate_limit(
        self,
        per_second: int | None = 20,
        per_minute: int | None = None,
        *,
        targets: Iterable[str] = ("cs", "transaction", "promotion"),
    ) -> None:
        """Answer -32 when calls to ``targets`` exceed ``per_second`` (sliding 1 s) or ``per_minute``.

        20/s for sends comes from a third-party table; the real limits are UNCONFIRMED. Rejected
        calls count in ``stats["rate_limited"]`` and are not counted against the window.
        """
        paths = frozenset(ENDPOINT_NAMES.get(t, t) for t in targets)
        self._rate_limit = _RateLimit(per_second, per_minute, paths)

    def disable_rate_limit(self) -> None:
        self._rate_limit = None

    # ---------------------------------------------------------------- webhook helpers (Zalo -> app)

    def make_event(
        self,
        event_name: str,
        user_id: str | int,
        text: str | None = None,
        *,
        msg_id: str | None = None,
        timestamp: int | str | None = None,
        touch: bool = True,
        **extra: Any,
    ) -> JSON:
        """Build an OA webhook body (a dict; serialise it yourself or use ``webhook_request``).

        * ``user_send_*`` / ``anonymous_send_text``: ``app_id``, ``user_id_by_app``,
          ``event_name``, ``sender.id`` (user), ``recipient.id`` (OA), ``message`` {``msg_id``,
          ``text`` | ``attachments``}, ``timestamp`` (string of epoch ms). Image/sticker/gif/...
          get ``message.attachments[{type, payload}]``; ``text`` becomes the caption if given.
        * ``follow`` / ``unfollow``: ``follower.id`` and ``oa_id`` instead of sender/recipient
          (UNCONFIRMED field set) - and the fake's follower flag changes accordingly.
        * ``user_received_message`` / ``user_seen_message``: sender = OA, recipient = user.

        ``extra`` keys are merged at top level, except ``message`` (a dict merged into the
        message) and ``attachments`` (replaces the default list). ``touch`` (default) records a
        user interaction now (a user_send_* event resets the 7-day window, as on Zalo).
        """
        uid = str(user_id)
        user = self._ensure_user(uid)
        ts = str(timestamp if timestamp is not None else int(time.time() * 1000))
        body: JSON = {"app_id": self.app_id, "user_id_by_app": user.user_id_by_app, "event_name": event_name}
        message_extra = extra.pop("message", None)
        attachments = extra.pop("attachments", None)
        if event_name in ("follow", "unfollow"):
            body["oa_id"] = self.oa_id
            body["follower"] = {"id": uid}
            user.follower = event_name == "follow"
            if touch and event_name == "follow":
                self.set_last_interaction(uid, self._now())
        elif event_name in ("user_received_message", "user_seen_message"):
            body["sender"] = {"id": self.oa_id}
            body["recipient"] = {"id": uid}
            body["message"] = {"msg_id": msg_id or self._last_sent_id(uid)}
        else:
            mid = msg_id or secrets.token_hex(16)
            message: JSON = {"msg_id": mid}
            if text is not None:
                message["text"] = text
            kind = event_name.removeprefix("user_send_")
            if attachments is None and event_name not in ("user_send_text", "anonymous_send_text"):
                attachments = [self._default_attachment(kind)]
            if attachments is not None:
                message["attachments"] = attachments
            body["sender"] = {"id": uid}
            body["recipient"] = {"id": self.oa_id}
            body["message"] = message
            self._inbound_msg_ids[mid] = uid
            if touch and event_name in WEBHOOK_EVENTS_WITH_MESSAGE:
                self.set_last_interaction(uid, self._now())
        if isinstance(message_extra, dict) and "message" in body:
            body["message"].update(message_extra)
        body["timestamp"] = ts
        body.update(extra)
        return body

    def _last_sent_id(self, user_id: str) -> str:
        for record in reversed(self.sent):
            if record.user_id == user_id:
                return record.message_id
        return secrets.token_hex(16)

    @staticmethod
    def _default_attachment(kind: str) -> JSON:
        base = "https://fake-zalo-cdn.example/"
        if kind == "image":
            return {"type": "image", "payload": {"thumbnail": base + "thumb.jpg", "url": base + "photo.jpg"}}
        if kind == "gif":
            return {"type": "gif", "payload": {"thumbnail": base + "thumb.gif", "url": base + "anim.gif"}}
        if kind == "sticker":
            return {
                "type": "sticker",
                "payload": {"id": "bfe458bf64fa8da4d4eb", "url": base + "sticker.webp"},
            }
        if kind == "location":
            return {
                "type": "location",
                "payload": {"coordinates": {"latitude": "21.0285", "longitude": "105.8542"}},
            }
        if kind == "file":
            return {
                "type": "file",
                "payload": {"url": base + "doc.pdf", "name": "doc.pdf", "size": "1024", "type": "pdf"},
            }
        if kind == "link":
            return {
                "type": "link",
                "payload": {"url": "https://dichvucong.gov.vn", "description": "", "thumbnail": ""},
            }
        return {"type": kind, "payload": {"url": base + f"file.{kind}"}}

    def sign(
        self,
        body: bytes | str,
        timestamp: str | int,
        app_id: str | int | None = None,
        oa_secret_key: str | None = None,
    ) -> str:
        """``X-ZEvent-Signature`` value for ``body`` (defaults: this fake's app id and OA secret key)."""
        return zalo_signature(
            self.app_id if app_id is None else app_id,
            body,
            timestamp,
            self.oa_secret_key if oa_secret_key is None else oa_secret_key,
        )

    def webhook_request(self, event: JSON, *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """(raw body, headers) as Zalo would POST them: JSON body + ``X-ZEvent-Signature``."""
        raw = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        signature = self.sign(raw, event.get("timestamp", ""), event.get("app_id", self.app_id), secret)
        return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: signature}

    async def deliver_webhook(
        self,
        url: str,
        event: JSON,
        *,
        secret: str | None = None,
        signature: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - HTTP client timeout
    ) -> tuple[int, str]:
        """POST ``event`` to the app like Zalo does; returns (HTTP status, response text).

        ``secret`` signs with another key (to test rejection); ``signature`` overrides the header.
        """
        raw, headers = self.webhook_request(event, secret=secret)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, data=raw, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    # ---------------------------------------------------------------- inspection helpers

    def sent_to(self, user_id: str | int) -> list[SentMessage]:
        return [s for s in self.sent if s.user_id == str(user_id)]

    def texts_to(self, user_id: str | int) -> list[str]:
        """Texts sent to a user, in order (attachment-only sends are skipped)."""
        return [s.text for s in self.sent if s.user_id == str(user_id) and s.text is not None]

    def last_sent(self, user_id: str | int | None = None) -> SentMessage:
        records = self.sent if user_id is None else self.sent_to(user_id)
        if not records:
            raise AssertionError(f"nothing was sent{'' if user_id is None else f' to {user_id}'}")
        return records[-1]

    def calls(self, target: str) -> list[ApiRequest]:
        """All requests (accepted or not) to a short name or path."""
        path = ENDPOINT_NAMES.get(target, target)
        return [r for r in self.requests if r.path == path]

    def clear_records(self) -> None:
        self.sent.clear()
        self.requests.clear()
        self.refreshes.clear()
        self.stats.clear()

    async def wait_for_sent(
        self,
        what: int | Callable[[SentMessage], bool] = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline is this helper's whole point
        *,
        user_id: str | int | None = None,
    ) -> list[SentMessage]:
        """Wait until ``sent`` holds ``what`` records (int) or one matching ``what`` (predicate)."""
        if callable(what):
            predicate, need = what, 1
        else:
            predicate, need = (lambda _s: True), int(what)
        uid = None if user_id is None else str(user_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._sent_event
            found = [s for s in self.sent if (uid is None or s.user_id == uid) and predicate(s)]
            if len(found) >= need:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._describe_wait_failure(need, len(found), timeout, uid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _describe_wait_failure(self, need: int, got: int, timeout: float, user_id: str | None) -> str:
        where = "" if user_id is None else f" to user {user_id}"
        lines = [f"wait_for_sent: wanted {need} matching send(s){where}, got {got} within {timeout}s."]
        lines.append(f"Sent so far ({len(self.sent)}):")
        lines.extend(
            f"  {s.kind} user={s.user_id} text={(s.text or '')[:80]!r} attachment={bool(s.attachment)}"
            for s in self.sent[-20:]
        )
        failed = [r for r in self.requests if not r.ok][-10:]
        if failed:
            lines.append("Recent failed calls:")
            lines.extend(f"  {r.http_method} {r.path} -> {r.status} {r.response!r:.120}" for r in failed)
        return "\n".join(lines)

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        self.stats["status_404"] += 1
        return web.json_response({"error": 404, "message": "Not Found"}, status=404)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        path = request.path
        started = time.time()
        body: Any = None
        status = 200
        payload: Any
        try:
            body = await self._read_json(request)
            await self._apply_outage(path, oauth=False)
            self._check_token(request)
            self._apply_faults(path, body)
            self._check_rate_limit(path)
            data = await self._dispatch(request, path, body)
            payload = {"error": 0, "message": "Success"}
            if data is not None:
                payload["data"] = data
            response: web.StreamResponse = web.json_response(payload, dumps=_dumps)
        except ZaloOAError as exc:
            status, payload = exc.http_status, exc.payload()
            self.stats[f"error_{exc.code}"] += 1
            response = web.json_response(payload, status=status, dumps=_dumps)
        except _RawReply as raw:
            status, payload = raw.status, raw.body
            response = web.Response(status=raw.status, text=raw.body, content_type=raw.content_type)
        except _DropConnection:
            self._log("api", request, path, body, 0, None, started)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError from None
        ok = status == 200 and isinstance(payload, dict) and payload.get("error") == 0
        self.stats["ok" if ok else "errors"] += 1
        self.stats[f"status_{status}"] += 1
        self._log("api", request, path, body, status, payload, started)
        return response

    async def _handle_oauth(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        path = request.path
        started = time.time()
        form: JSON = {}
        status = 200
        payload: Any
        try:
            if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = {k: str(v) for k, v in (await request.post()).items()}
            await self._apply_outage(path, oauth=True)
            self._apply_oauth_faults(path)
            payload = self._token_grant(request, form)
            response: web.StreamResponse = web.json_response(payload, dumps=_dumps)
        except _OAuthError as exc:
            payload = exc.payload(self.oauth_error_numeric)
            self.stats["refresh_failed"] += 1
            response = web.json_response(payload, dumps=_dumps)
        except _RawReply as raw:
            status, payload = raw.status, raw.body
            response = web.Response(status=raw.status, text=raw.body, content_type=raw.content_type)
        except _DropConnection:
            self._log("oauth", request, path, form, 0, None, started)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError from None
        ok = status == 200 and isinstance(payload, dict) and "access_token" in payload
        self.stats["ok" if ok else "errors"] += 1
        self.stats[f"status_{status}"] += 1
        self._log("oauth", request, path, form, status, payload, started)
        return response

    def _log(
        self, host: str, request: web.Request, path: str, body: Any, status: int, payload: Any, started: float
    ) -> None:
        name = next((n for n, p in ENDPOINT_NAMES.items() if p == path), path)
        interesting = ("access_token", "secret_key", "content-type")
        self.requests.append(
            ApiRequest(
                host=host,
                http_method=request.method,
                path=path,
                name=name,
                headers={k.lower(): v for k, v in request.headers.items() if k.lower() in interesting},
                query=dict(request.query),
                body=body,
                status=status,
                response=payload,
                time=started,
            )
        )

    @staticmethod
    async def _read_json(request: web.Request) -> Any:
        if request.method != "POST" or not request.body_exists:
            return None
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError:
            raise ZaloOAError(ERR_INVALID_PARAM, "body is invalid!") from None

    def _check_token(self, request: web.Request) -> None:
        token = request.headers.get("access_token")
        if token is None and self.accept_query_token:
            token = request.query.get("access_token")
        state = self._token_state(token)
        if state == "valid":
            return
        self.stats["token_rejected"] += 1
        if state == "expired":
            raise ZaloOAError(self.expired_token_code)
        raise ZaloOAError(ERR_TOKEN_INVALID)

    async def _apply_outage(self, path: str, *, oauth: bool) -> None:
        if not self.outage_active:
            return
        paths = self._outage_paths
        applies = (
            (not oauth) if paths is None else ("**" in paths or path in paths or (not oauth and "*" in paths))
        )
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

    def _take_fault(self, path: str, oauth: bool, user_id: str | None = None) -> _Fault | None:
        for fault in list(self._faults):
            if fault.path == "**" or fault.path == path or (fault.path == "*" and not oauth):
                if fault.user_id is not None and fault.user_id != user_id:
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                self.stats["injected"] += 1
                return fault
        return None

    def _apply_faults(self, path: str, body: Any) -> None:
        user_id = None
        if isinstance(body, dict) and isinstance(body.get("recipient"), dict):
            raw_uid = body["recipient"].get("user_id")
            user_id = None if raw_uid is None else str(raw_uid)
        fault = self._take_fault(path, oauth=False, user_id=user_id)
        if fault is None:
            return
        if fault.http_status >= 500 and fault.message is None:
            raise _RawReply(fault.http_status, _nginx_page(fault.http_status))
        raise ZaloOAError(fault.code, fault.message, http_status=fault.http_status)

    def _apply_oauth_faults(self, path: str) -> None:
        fault = self._take_fault(path, oauth=True)
        if fault is None:
            return
        if fault.http_status >= 500:
            raise _RawReply(fault.http_status, _nginx_page(fault.http_status))
        raise _OAuthError(fault.code, "Injected error", fault.message or "Injected error")

    def _check_rate_limit(self, path: str) -> None:
        limit = self._rate_limit
        if limit is None or path not in limit.paths:
            return
        now = time.monotonic()
        waits = []
        if limit.per_second:
            waits.append(_window_wait(limit.second_window, now, 1.0, limit.per_second))
        if limit.per_minute:
            waits.append(_window_wait(limit.minute_window, now, 60.0, limit.per_minute))
        if max(waits, default=0.0) > 0:
            self.stats["rate_limited"] += 1
            raise ZaloOAError(ERR_RATE_LIMIT)
        limit.second_window.append(now)
        limit.minute_window.append(now)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _notify_sent(self) -> None:
        event, self._sent_event = self._sent_event, asyncio.Event()
        event.set()

    # ---------------------------------------------------------------- OAuth

    def _token_grant(self, request: web.Request, form: JSON) -> JSON:
        if request.headers.get("secret_key") != self.app_secret:
            raise _OAuthError(OAUTH_ERR_INVALID_SECRET, "Invalid parameter", "Invalid secret key")
        if form.get("app_id") != self.app_id:
            raise _OAuthError(OAUTH_ERR_INVALID_PARAM, "Invalid parameter", "Invalid app_id")
        grant = form.get("grant_type")
        old_refresh: str | None = None
        if grant == "refresh_token":
            old_refresh = form.get("refresh_token") or ""
            if not old_refresh:
                raise _OAuthError(OAUTH_ERR_INVALID_PARAM, "Invalid parameter", "Missing refresh_token")
            if old_refresh != self._refresh_token or old_refresh in self._used_refresh_tokens:
                raise _OAuthError(
                    OAUTH_ERR_INVALID_REFRESH_TOKEN,
                    "Invalid parameter",
                    "Invalid refresh token",
                    "Refresh token is invalid, expired or already used",
                )
            self._used_refresh_tokens.add(old_refresh)
        elif grant == "authorization_code":
            code = form.get("code") or ""
            if code not in self._auth_codes:
                raise _OAuthError(OAUTH_ERR_INVALID_CODE, "Invalid parameter", "Invalid authorization code")
            verifier = self._auth_codes.pop(code)
            if verifier is not None and form.get("code_verifier") != verifier:
                raise _OAuthError(OAUTH_ERR_INVALID_CODE, "Invalid parameter", "Invalid code verifier")
            self._used_refresh_tokens.add(self._refresh_token)
        else:
            raise _OAuthError(OAUTH_ERR_INVALID_PARAM, "Invalid parameter", "Invalid grant_type")
        access, refresh = self._issue_tokens()
        self.refreshes.append(
            TokenRefresh(
                grant_type=str(grant),
                old_refresh_token=old_refresh,
                access_token=access,
                refresh_token=refresh,
                expires_in=self.expires_in,
                time=time.time(),
            )
        )
        self.stats["refreshes"] += 1
        return {"access_token": access, "refresh_token": refresh, "expires_in": str(self.expires_in)}

    # ---------------------------------------------------------------- API endpoints

    async def _dispatch(self, request: web.Request, path: str, body: Any) -> JSON | None:
        if path == PATH_V2_MESSAGE:
            raise ZaloOAError(ERR_V2_SHUT_DOWN)
        if path == PATH_GET_OA:
            return self._oa_info()
        if path == PATH_USER_DETAIL:
            return self._user_detail_endpoint(request)
        return self._send(path, body)

    def _oa_info(self) -> JSON:
        return {
            "oa_id": self.oa_id,
            "name": self.oa_name,
            "description": "Fake OA for tests",
            "oa_alias": "",
            "is_verified": True,
            "oa_type": 2,
            "cate_name": "Dịch vụ công",
            "num_follower": sum(1 for u in self._users.values() if u.follower),
            "avatar": "https://s160-ava-talk.zadn.vn/fake/oa.jpg",
            "cover": "https://cover-talk.zadn.vn/fake/oa.jpg",
            "package_name": "Gói Nâng cao",
        }

    def _user_detail_endpoint(self, request: web.Request) -> JSON:
        raw = request.query.get("data")
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or not data.get("user_id"):
            raise _invalid("user_id")
        user = self._users.get(str(data["user_id"]))
        if user is None:
            raise _invalid("user_id")
        return self._user_detail(user)

    def _user_detail(self, user: _User) -> JSON:
        last = user.last_interaction.astimezone().strftime("%d/%m/%Y") if user.last_interaction else ""
        detail: JSON = {
            "user_id": user.user_id,
            "user_id_by_app": user.user_id_by_app,
            "user_external_id": "",
            "display_name": user.display_name,
            "user_alias": "",
            "is_sensitive": False,
            "user_last_interaction_date": last,
            "user_is_follower": user.follower,
            "avatar": user.avatar,
            "avatars": {"120": user.avatar, "240": user.avatar},
            "tags_and_notes_info": {"notes": [], "tag_names": []},
        }
        if user.shared_info is not None:
            detail["shared_info"] = dict(user.shared_info)
        return detail

    def _send(self, path: str, body: Any) -> JSON:
        kind = KIND_BY_PATH[path]
        if not isinstance(body, dict):
            raise ZaloOAError(ERR_INVALID_PARAM, "body is invalid!")
        recipient = body.get("recipient")
        message = body.get("message")
        if not isinstance(recipient, dict):
            raise _invalid("recipient")
        if not isinstance(message, dict):
            raise _invalid("message")
        reply_to: str | None = None
        raw_uid = recipient.get("user_id")
        if raw_uid is None and recipient.get("message_id") is not None:
            reply_to = str(recipient["message_id"])
            raw_uid = self._inbound_msg_ids.get(reply_to)
            if raw_uid is None:
                raise _invalid("message_id")
        if raw_uid is None or isinstance(raw_uid, bool) or str(raw_uid).strip() == "":
            raise _invalid("user_id")
        user = self._users.get(str(raw_uid))
        if user is None:
            raise _invalid("user_id")
        text = message.get("text")
        attachment = message.get("attachment")
        if text is not None and not isinstance(text, str):
            raise _invalid("text")
        if attachment is None:
            if kind != "cs":
                raise _invalid("attachment")
            if text is None or not text.strip():
                raise ZaloOAError(
                    ERR_INVALID_PARAM, "text is invalid!" if text is not None else "message is invalid!"
                )
        else:
            self._check_attachment(attachment, kind)
        if text is not None and len(text) > self.max_text_length:
            raise ZaloOAError(ERR_PARAM_LIMIT, f"text length exceeds {self.max_text_length} characters")
        if message.get("quote_message_id") is not None:
            reply_to = str(message["quote_message_id"])

        free: bool | None = None
        if kind == "cs":
            if self.cs_requires_follower and not user.follower:
                raise ZaloOAError(ERR_NOT_FOLLOWER)
            last = user.last_interaction
            if last is None or self._now() - last > self.cs_window:
                raise ZaloOAError(ERR_OUTSIDE_WINDOW)
            free = self._now() - last <= FREE_WINDOW and user.replies_since_interaction < FREE_REPLIES
            user.replies_since_interaction += 1
        elif kind == "promotion" and not user.follower:
            raise ZaloOAError(ERR_NOT_FOLLOWER)

        message_id = secrets.token_hex(16)
        self.sent.append(
            SentMessage(
                user_id=user.user_id,
                text=text,
                attachment=copy.deepcopy(attachment) if attachment is not None else None,
                raw=copy.deepcopy(body),
                time=time.time(),
                kind=kind,
                message_id=message_id,
                reply_to=reply_to,
                free=free,
            )
        )
        self.stats[f"sent_{kind}"] += 1
        self._notify_sent()
        return {"message_id": message_id, "user_id": user.user_id}

    @staticmethod
    def _check_attachment(attachment: Any, kind: str) -> None:
        if not isinstance(attachment, dict):
            raise _invalid("attachment")
        a_type = attachment.get("type")
        payload = attachment.get("payload")
        if a_type not in ("template", "file") or not isinstance(payload, dict):
            raise _invalid("attachment.type" if a_type not in ("template", "file") else "attachment.payload")
        if a_type == "file":
            if not payload.get("token"):
                raise _invalid("attachment.payload.token")
            return
        template_type = payload.get("template_type")
        if not isinstance(template_type, str):
            raise _invalid("template_type")
        if kind == "transaction":
            if not template_type.startswith("transaction"):
                raise _invalid("template_type")
            return
        if kind == "promotion":
            if template_type != "promotion":
                raise _invalid("template_type")
            return
        if template_type not in TEMPLATE_TYPES:
            raise _invalid("template_type")
        if template_type == "button":
            if not isinstance(payload.get("text"), str) or not payload["text"].strip():
                raise _invalid("payload.text")
            FakeZaloOA._check_buttons(payload.get("buttons"), required=True)
        elif template_type == "media":
            elements = payload.get("elements")
            if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
                raise _invalid("elements")
            element = elements[0]
            if element.get("media_type") not in MEDIA_TYPES:
                raise _invalid("media_type")
            if not (element.get("url") or element.get("attachment_id")):
                raise _invalid("url")
            FakeZaloOA._check_buttons(payload.get("buttons"), required=False)
        elif template_type == "list":
            elements = payload.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 5:
                raise _invalid("elements")
            for element in elements:
                if not isinstance(element, dict) or not element.get("title"):
                    raise _invalid("elements.title")
            FakeZaloOA._check_buttons(payload.get("buttons"), required=False)

    @staticmethod
    def _check_buttons(buttons: Any, *, required: bool) -> None:
        if buttons is None and not required:
            return
        if not isinstance(buttons, list) or (required and not buttons) or len(buttons) > 5:
            raise _invalid("buttons")
        for button in buttons:
            if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
                raise _invalid("buttons.type")
            if not isinstance(button.get("title"), str) or not button["title"].strip():
                raise _invalid("buttons.title")
            if button.get("payload") in (None, "", {}):
                raise _invalid("buttons.payload")
            if button["type"] == "oa.open.url":
                url = (button["payload"] or {}).get("url") if isinstance(button["payload"], dict) else None
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise _invalid("buttons.payload.url")
