"""A protocol-faithful fake of the Zalo Official Account (OA) Open API + OAuth v4, for tests.

Two real HTTP servers on 127.0.0.1 (random ports) stand for the two Zalo hosts, so the app is
pointed at separate base URLs exactly as in production::

    async with FakeZaloOA() as fake:
        fake.add_user("8123456789012345678")
        ...  # settings: ZALO_OA_API_BASE_URL=fake.api_base_url, ZALO_OA_OAUTH_BASE_URL=fake.oauth_base_url,
        ...  # ZALO_OA_ACCESS_TOKEN=fake.access_token, ZALO_OA_REFRESH_TOKEN=fake.refresh_token, ...
        await fake.deliver_webhook(app_url, fake.make_event("user_send_text", "8123...", "xin chào"))
        [sent] = await fake.wait_for_sent(user_id="8123456789012345678")

It models what the product calls (sources: /work/shared/notes/platforms.md section 3; "3p" =
third-party only):

* API host: ``POST /v3.0/oa/message/cs`` with header ``access_token``, JSON
  ``{"recipient": {"user_id"}, "message": {"text"} | {"attachment": template}}`` (Zalo Java SDK,
  Chatwoot). Every answer is HTTP 200 ``{"error": <int>, "message": <str>, "data"?: {...}}``,
  ``error == 0`` = success (Chatwoot). Templates: ``button`` (text + 1-5 buttons, 3p shape) and
  ``media`` (one image). Text limit 2000 characters (UNCONFIRMED, reseller docs), button
  titles 100; both counted in UTF-16 units (``_base.utf16_len``: the stricter reading).
  ``GET /v2.0/oa/getoa`` (same header) answers the OA's profile in ``data`` (Chatwoot
  ``official_account.rb``): what ``python -m bot doctor`` checks the token with.
* OAuth host: ``POST /v4/oa/access_token``, form ``app_id``, ``grant_type=refresh_token``,
  ``refresh_token``, header ``secret_key: <app secret>`` (Java/PHP SDK). Success
  ``{"access_token", "refresh_token", "expires_in": "90000"}`` (a STRING). Refresh tokens are
  single-use (3p, consistent): a spent one is refused, as is any but the newest. Refusals
  carry ``error_name``/``error_reason``/``error_description`` with HTTP 200 (3p).
* OAuth host, first authorisation (OAuth v4 with PKCE; Zalo PHP SDK ``OAuth2Client``, 3p
  integrations): ``GET /v4/oa/permission?app_id&redirect_uri&code_challenge&state`` is the page
  where the OA's admin allows the app; the fake allows at once and answers 302 to
  ``redirect_uri?oa_id&code&state`` (the real page asks first). ``POST /v4/oa/access_token``
  with form ``code``, ``app_id``, ``grant_type=authorization_code``, ``code_verifier`` and header
  ``secret_key`` answers a token pair like a refresh. The code is single-use and valid
  CODE_LIFETIME (UNCONFIRMED); the verifier must satisfy
  ``code_challenge == base64url(sha256(code_verifier))`` without padding (S256, RFC 7636), and
  ``redirect_uri`` must be the app's registered callback URL when one is set.
* Error codes: -216 access token invalid/expired (Chatwoot); -230 user has not interacted in
  the past 7 days (3p). From a third-party table (UNCONFIRMED): -32 rate limit, -201 invalid
  parameter, -210 parameter exceeds limit, -213 user has not followed the OA, -220 expired token.
* Webhook: ``X-ZEvent-Signature: mac=<sha256 hex of app_id + raw body + timestamp + OA secret
  key>`` (plain SHA-256, not HMAC; Java SDK ``MacUtils.buildMac``); ``app_id`` and ``timestamp``
  come from the JSON body (Chatwoot). See :meth:`FakeZaloOA.make_event`.

Deliberate choices where the real service is unknown: a refresh invalidates the previous
access token at once; a consultation message to a user who unfollowed fails with -213; an
unknown ``user_id`` gives -201.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from tests.fakes._base import JSON, DropConnection, FakeServer, RawReply, abort, dumps, nginx_page, utf16_len

__all__ = ["ApiRequest", "FakeZaloOA", "SentMessage", "TokenRefresh", "zalo_signature"]

MAX_TEXT_LENGTH = 2000  # UNCONFIRMED (reseller docs); UTF-16 units
MAX_BUTTON_TITLE = 100
CS_WINDOW = timedelta(days=7)  # 3p; consistent with error -230
DEFAULT_EXPIRES_IN = 90_000  # seconds (25 h), as observed in refresh responses
SIGNATURE_HEADER = "X-ZEvent-Signature"

ERR_RATE_LIMIT = -32
ERR_SEND_FAILED = -200
ERR_INVALID_PARAM = -201
ERR_PARAM_LIMIT = -210
ERR_NOT_FOLLOWER = -213
ERR_TOKEN_INVALID = -216
ERR_TOKEN_EXPIRED = -220
ERR_OUTSIDE_WINDOW = -230

ERROR_MESSAGES = {
    ERR_RATE_LIMIT: "Your application reached limit call api",
    ERR_SEND_FAILED: "Send message failed",
    ERR_INVALID_PARAM: "Parameters invalid",
    ERR_PARAM_LIMIT: "Parameter exceeds allowable limit",
    ERR_NOT_FOLLOWER: "User has not followed OA",
    ERR_TOKEN_INVALID: "Access token is invalid",
    ERR_TOKEN_EXPIRED: "access_token is expired or removed",
    ERR_OUTSIDE_WINDOW: "User has not interacted with the OA in the past 7 days",
}

PATH_CS = "/v3.0/oa/message/cs"
PATH_GET_OA = "/v2.0/oa/getoa"
PATH_ACCESS_TOKEN = "/v4/oa/access_token"
PATH_PERMISSION = "/v4/oa/permission"
CODE_LIFETIME = 600.0  # seconds an authorisation code stays valid (UNCONFIRMED)
TARGETS = {"cs": PATH_CS, "refresh": PATH_ACCESS_TOKEN, "oauth": PATH_ACCESS_TOKEN}

BUTTON_TYPES = frozenset({"oa.open.url", "oa.query.show", "oa.query.hide", "oa.open.sms", "oa.open.phone"})
USER_MESSAGE_EVENTS = frozenset({
    "user_send_text", "user_send_image", "user_send_gif", "user_send_sticker", "user_send_link",
    "user_send_audio", "user_send_video", "user_send_file", "user_send_location", "anonymous_send_text",
})


def zalo_signature(app_id: str, body: bytes, timestamp: str, secret: str) -> str:
    """``X-ZEvent-Signature`` value: ``mac=`` + SHA-256 hex of app_id + raw body + timestamp + OA secret."""
    return "mac=" + hashlib.sha256(app_id.encode() + body + str(timestamp).encode() + secret.encode()).hexdigest()


@dataclass
class SentMessage:
    """One accepted consultation message."""

    user_id: str
    text: str | None
    attachment: JSON | None
    raw: JSON
    time: float
    message_id: str = ""

    @property
    def template_type(self) -> str | None:
        return ((self.attachment or {}).get("payload") or {}).get("template_type")

    @property
    def template_text(self) -> str | None:
        return ((self.attachment or {}).get("payload") or {}).get("text")

    @property
    def buttons(self) -> list[JSON]:
        return list(((self.attachment or {}).get("payload") or {}).get("buttons") or [])


@dataclass
class TokenRefresh:
    """One successful refresh."""

    old_refresh_token: str
    access_token: str
    refresh_token: str
    time: float


@dataclass
class ApiRequest:
    """Every HTTP call the fake received (both hosts), including refused ones."""

    host: str  # "api" | "oauth"
    path: str
    headers: JSON
    body: Any
    status: int
    response: Any
    time: float

    @property
    def ok(self) -> bool:
        if self.status != 200 or not isinstance(self.response, dict):
            return False
        return "access_token" in self.response if self.host == "oauth" else self.response.get("error") == 0


class ZaloOAError(Exception):
    """Raised inside a handler to answer ``{"error": code, "message": msg}`` (HTTP 200)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Unknown error")
        super().__init__(f"{code}: {self.message}")

    def payload(self) -> JSON:
        return {"error": self.code, "message": self.message}


class _OAuthError(Exception):
    def __init__(self, reason: str, description: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.description = description or reason

    def payload(self) -> JSON:
        return {"error_name": "Invalid parameter", "error_reason": self.reason,
                "error_description": self.description}


@dataclass
class _User:
    user_id: str
    follower: bool
    last_interaction: datetime | None
    user_id_by_app: str


def _invalid(field_name: str) -> ZaloOAError:
    return ZaloOAError(ERR_INVALID_PARAM, f"{field_name} is invalid!")


class FakeZaloOA(FakeServer):
    """In-process fake of openapi.zalo.me + oauth.zaloapp.com. See the module docstring."""

    def __init__(self, *, host: str = "127.0.0.1", app_id: str = "1357924680135792468",
                 app_secret: str = "fake-app-secret-key", oa_id: str = "2468013579246801357",
                 oa_secret_key: str = "fake-oa-secret-key", expires_in: int = DEFAULT_EXPIRES_IN,
                 cs_window: timedelta = CS_WINDOW, expired_token_code: int = ERR_TOKEN_INVALID,
                 oa_name: str = "Trợ lý Dịch vụ công (test)") -> None:
        super().__init__(host)
        self.app_id = app_id
        self.oa_name = oa_name
        self.app_secret = app_secret
        self.oa_id = oa_id
        self.oa_secret_key = oa_secret_key
        self.expires_in = expires_in  # lifetime of issued access tokens (0 = expired at once)
        self.cs_window = cs_window
        self.expired_token_code = expired_token_code

        self.sent: list[SentMessage] = []
        self.requests: list[ApiRequest] = []
        self.refreshes: list[TokenRefresh] = []

        self._serial = itertools.count(1)
        self._access_token = self._new_token("oa-access")
        self._refresh_token = self._new_token("oa-refresh")
        self._token_issued = time.monotonic()
        self._token_expired = False
        self._old_access_tokens: set[str] = set()
        self._used_refresh_tokens: set[str] = set()
        self._users: dict[str, _User] = {}
        self._api_port = self._oauth_port = 0
        # Authorisation: the app's registered callback URL (None = any), codes not yet spent
        # (code -> (code_challenge, issued at)), and each successful code exchange.
        self.callback_url: str | None = None
        self._codes: dict[str, tuple[str, float]] = {}
        self.authorizations: list[TokenRefresh] = []

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeZaloOA:
        if self.started:
            return self
        api = web.Application()
        api.router.add_route("POST", PATH_CS, self._handle_api)
        api.router.add_route("GET", PATH_GET_OA, self._handle_get_oa)
        api.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        oauth = web.Application()
        oauth.router.add_route("POST", PATH_ACCESS_TOKEN, self._handle_oauth)
        oauth.router.add_route("GET", PATH_PERMISSION, self._handle_permission)
        oauth.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._api_port = await self._serve(api)
        self._oauth_port = await self._serve(oauth)
        return self

    @property
    def api_base_url(self) -> str:
        """Stands for ``https://openapi.zalo.me``."""
        return f"http://{self.host}:{self._api_port}"

    @property
    def oauth_base_url(self) -> str:
        """Stands for ``https://oauth.zaloapp.com``."""
        return f"http://{self.host}:{self._oauth_port}"

    @property
    def cs_url(self) -> str:
        return self.api_base_url + PATH_CS

    @property
    def token_url(self) -> str:
        return self.oauth_base_url + PATH_ACCESS_TOKEN

    def _target(self, name: str) -> str:
        return TARGETS.get(name, name)

    def _outage_by_default(self, target: str) -> bool:
        return target != PATH_ACCESS_TOKEN  # a default outage hits the API host only

    # ---------------------------------------------------------------- tokens

    @property
    def access_token(self) -> str:
        """The newest access token (after ``expire_token`` it is expired)."""
        return self._access_token

    @property
    def refresh_token(self) -> str:
        """The newest, unspent refresh token."""
        return self._refresh_token

    def expire_token(self) -> None:
        """The newest access token expires now: the next API call answers ``expired_token_code``."""
        self._token_expired = True

    def revoke_refresh_token(self) -> None:
        """The newest refresh token becomes unusable (as after its 3 months)."""
        self._used_refresh_tokens.add(self._refresh_token)

    def _new_token(self, kind: str) -> str:
        return f"{kind}-{next(self._serial)}-{secrets.token_urlsafe(12)}"

    def _token_state(self, token: str | None) -> str:
        if not token:
            return "missing"
        if token == self._access_token:
            if self._token_expired or time.monotonic() >= self._token_issued + self.expires_in:
                return "expired"
            return "valid"
        return "expired" if token in self._old_access_tokens else "invalid"

    # ---------------------------------------------------------------- users

    def add_user(self, user_id: str | int, *, follower: bool = True,
                 last_interaction: datetime | None | str = "now") -> str:
        """Register a user (scoped OA user id, a string). ``last_interaction=None`` = never wrote."""
        uid = str(user_id)
        when = self._now() if last_interaction == "now" else last_interaction
        digest = int(hashlib.sha256(f"{self.app_id}:{uid}".encode()).hexdigest(), 16)
        self._users[uid] = _User(uid, follower, when if isinstance(when, datetime) else None,
                                 str(10**18 + digest % (9 * 10**18)))
        return uid

    def _ensure_user(self, user_id: str) -> _User:
        if user_id not in self._users:
            self.add_user(user_id, last_interaction=None)
        return self._users[user_id]

    def set_last_interaction(self, user_id: str | int, when: datetime | None) -> None:
        """When the user last wrote to the OA (aware datetime; None = never): the -230 window."""
        self._ensure_user(str(user_id)).last_interaction = when

    def set_follower(self, user_id: str | int, follower: bool) -> None:
        self._ensure_user(str(user_id)).follower = follower

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    # ---------------------------------------------------------------- fault injection

    def fail_next(self, target: str = "cs", error_code: int = ERR_SEND_FAILED, message: str | None = None,
                  count: int = 1, *, user_id: str | int | None = None, http_status: int = 200) -> None:
        """The next ``count`` calls to ``target`` ("cs", "refresh" or "*") fail.

        On the API host: ``{"error": error_code, "message": ...}`` with HTTP ``http_status``
        (200 as Zalo does), or an nginx page for ``http_status >= 500``. On the OAuth host: an
        OAuth refusal (or the nginx page). ``user_id`` restricts it to sends to that user.
        """
        self._add_fault(target, error_code, message, count, user_id, http_status)

    def enforce_rate_limit(self, per_second: int = 20, targets=("cs",)) -> None:
        """Answer -32 beyond ``per_second`` sends (20/s is a third-party figure; UNCONFIRMED)."""
        super().enforce_rate_limit(per_second, targets)

    # ---------------------------------------------------------------- webhook helpers (Zalo -> app)

    def make_event(self, event_name: str, user_id: str | int, text: str | None = None, *,
                   msg_id: str | None = None, timestamp: int | str | None = None, **extra: Any) -> JSON:
        """An OA webhook body (a dict; ``webhook_request`` serialises and signs it).

        * ``user_send_*`` / ``anonymous_send_text``: ``app_id``, ``user_id_by_app``, ``event_name``,
          ``sender.id`` (user), ``recipient.id`` (OA), ``message`` {``msg_id``, ``text`` |
          ``attachments``}, ``timestamp`` (string of epoch ms). It also records that the user wrote
          (the 7-day window reopens, as on Zalo).
        * ``follow`` / ``unfollow``: ``follower.id`` and ``oa_id`` instead (UNCONFIRMED field set);
          the fake's follower flag follows.
        * ``user_received_message`` / ``user_seen_message``: sender = OA, recipient = user.

        ``extra`` keys are merged at the top level.
        """
        uid = str(user_id)
        user = self._ensure_user(uid)
        body: JSON = {"app_id": self.app_id, "user_id_by_app": user.user_id_by_app, "event_name": event_name}
        if event_name in ("follow", "unfollow"):
            body["oa_id"] = self.oa_id
            body["follower"] = {"id": uid}
            user.follower = event_name == "follow"
            if user.follower:
                user.last_interaction = self._now()
        elif event_name in ("user_received_message", "user_seen_message"):
            body["sender"] = {"id": self.oa_id}
            body["recipient"] = {"id": uid}
            body["message"] = {"msg_id": msg_id or secrets.token_hex(16)}
        else:
            message: JSON = {"msg_id": msg_id or secrets.token_hex(16)}
            if text is not None:
                message["text"] = text
            kind = event_name.removeprefix("user_send_")
            if event_name not in ("user_send_text", "anonymous_send_text"):
                message["attachments"] = [{"type": kind, "payload": {"url": f"https://fake-zalo-cdn.example/{kind}"}}]
            body["sender"] = {"id": uid}
            body["recipient"] = {"id": self.oa_id}
            body["message"] = message
            if event_name in USER_MESSAGE_EVENTS:
                user.last_interaction = self._now()
        body["timestamp"] = str(timestamp if timestamp is not None else int(time.time() * 1000))
        body.update(extra)
        return body

    def sign(self, body: bytes, timestamp: str | int, secret: str | None = None) -> str:
        """``X-ZEvent-Signature`` for ``body`` (default: this fake's app id and OA secret key)."""
        return zalo_signature(self.app_id, body, str(timestamp), self.oa_secret_key if secret is None else secret)

    def webhook_request(self, event: JSON, *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """(raw body, headers) as Zalo would POST them."""
        raw = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: self.sign(raw, event.get("timestamp", ""),
                                                                                      secret)}

    async def deliver_webhook(self, url: str, event: JSON | bytes, *, secret: str | None = None,
                              signature: str | None = None, timestamp: str = "") -> tuple[int, str]:
        """POST ``event`` to the app like Zalo does; returns (HTTP status, response text).

        ``secret`` signs with another key, ``signature`` overrides the header ("" = none). Raw
        ``bytes`` are posted as they are, signed with ``timestamp``.
        """
        if isinstance(event, bytes):
            raw, headers = event, {"Content-Type": "application/json", SIGNATURE_HEADER: self.sign(event, timestamp)}
        else:
            raw, headers = self.webhook_request(event, secret=secret)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
            if not signature:
                del headers[SIGNATURE_HEADER]
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                    session.post(url, data=raw, headers=headers) as resp):
            return resp.status, await resp.text()

    # ---------------------------------------------------------------- inspection

    def sent_to(self, user_id: str | int) -> list[SentMessage]:
        return [s for s in self.sent if s.user_id == str(user_id)]

    def texts_to(self, user_id: str | int) -> list[str]:
        """What a user was shown, in order: message texts and template texts."""
        return [s.text if s.text is not None else s.template_text or "" for s in self.sent_to(user_id)]

    def calls(self, target: str) -> list[ApiRequest]:
        """All requests (accepted or not) to "cs", "refresh" or a path."""
        path = self._target(target)
        return [r for r in self.requests if r.path == path]

    async def wait_for_sent(self, what: int | Callable[[SentMessage], bool] = 1,
                            timeout: float = 5.0, *, user_id: str | int | None = None) -> list[SentMessage]:  # noqa: ASYNC109
        """Wait until ``sent`` holds ``what`` records (int) or one matching ``what`` (predicate)."""
        uid = None if user_id is None else str(user_id)

        def describe(need: int, got: int) -> str:
            lines = [f"wait_for_sent: wanted {need} send(s){'' if uid is None else f' to {uid}'}, got {got} "
                     f"within {timeout}s. Sent so far:"]
            lines += [f"  user={s.user_id} text={(s.text or s.template_text or '')[:80]!r}" for s in self.sent[-20:]]
            lines += [f"  failed: {r.path} -> {r.status} {r.response!r:.120}" for r in self.requests if not r.ok][-10:]
            return "\n".join(lines)

        return await self._wait_for(what, timeout, lambda s: uid is None or s.user_id == uid, describe)

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        self.stats["status_404"] += 1
        return web.json_response({"error": 404, "message": "Not Found"}, status=404)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        body: Any = None
        status = 200
        try:
            await self._apply_delay(PATH_CS)
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                raise ZaloOAError(ERR_INVALID_PARAM, "body is invalid!") from None
            self._apply_outage(PATH_CS)
            self._check_token(request)
            recipient = body.get("recipient") if isinstance(body, dict) else None
            fault = self._take_fault(PATH_CS, str((recipient or {}).get("user_id")) if recipient else None)
            if fault is not None:
                if fault.http_status >= 500:
                    raise RawReply(fault.http_status, nginx_page(fault.http_status))
                raise ZaloOAError(fault.code, fault.description)
            if self._rate_limited(PATH_CS):
                raise ZaloOAError(ERR_RATE_LIMIT)
            payload: Any = {"error": 0, "message": "Success", "data": self._send(body)}
            response: web.StreamResponse = web.json_response(payload, dumps=dumps)
        except ZaloOAError as exc:
            payload = exc.payload()
            self.stats[f"error_{exc.code}"] += 1
            response = web.json_response(payload, dumps=dumps)
        except RawReply as reply:
            status, payload = reply.status, reply.body
            response = web.Response(status=status, text=reply.body, content_type=reply.content_type)
        except DropConnection:
            self._log("api", request, body, 0, None, started)
            abort(request)
        self._log("api", request, body, status, payload, started)
        return response

    async def _handle_get_oa(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        try:
            self._apply_outage(PATH_GET_OA)
            self._check_token(request)
            payload: Any = {"error": 0, "message": "Success", "data": {
                "oa_id": self.oa_id, "name": self.oa_name, "description": "Fake OA for tests", "is_verified": True,
                "num_follower": sum(1 for u in self._users.values() if u.follower)}}
        except ZaloOAError as exc:
            payload = exc.payload()
        except RawReply as reply:
            self._log("api", request, None, reply.status, reply.body, started)
            return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)
        except DropConnection:
            self._log("api", request, None, 0, None, started)
            abort(request)
        self._log("api", request, None, 200, payload, started)
        return web.json_response(payload, dumps=dumps)

    async def _handle_oauth(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        form: JSON = {}
        status = 200
        try:
            await self._apply_delay(PATH_ACCESS_TOKEN)
            if request.content_type == "application/x-www-form-urlencoded":
                form = {k: str(v) for k, v in (await request.post()).items()}
            self._apply_outage(PATH_ACCESS_TOKEN)
            fault = self._take_fault(PATH_ACCESS_TOKEN, wildcard=False)
            if fault is not None:
                if fault.http_status >= 500:
                    raise RawReply(fault.http_status, nginx_page(fault.http_status))
                raise _OAuthError(fault.description or "Injected error")
            payload: Any = self._refresh(request, form)
            response: web.StreamResponse = web.json_response(payload, dumps=dumps)
        except _OAuthError as exc:
            payload = exc.payload()
            self.stats["refresh_refused"] += 1
            response = web.json_response(payload, dumps=dumps)
        except RawReply as reply:
            status, payload = reply.status, reply.body
            response = web.Response(status=status, text=reply.body, content_type=reply.content_type)
        except DropConnection:
            self._log("oauth", request, form, 0, None, started)
            abort(request)
        self._log("oauth", request, form, status, payload, started)
        return response

    def _log(self, host: str, request: web.Request, body: Any, status: int, payload: Any, started: float) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()
                   if k.lower() in ("access_token", "secret_key", "content-type")}
        self.requests.append(ApiRequest(host, request.path, headers, body, status, payload, started))

    def _check_token(self, request: web.Request) -> None:
        state = self._token_state(request.headers.get("access_token"))
        if state == "valid":
            return
        self.stats["token_rejected"] += 1
        raise ZaloOAError(self.expired_token_code if state == "expired" else ERR_TOKEN_INVALID)

    # ---------------------------------------------------------------- endpoints

    def _refresh(self, request: web.Request, form: JSON) -> JSON:
        if request.headers.get("secret_key") != self.app_secret:
            raise _OAuthError("Invalid secret key")
        if form.get("app_id") != self.app_id:
            raise _OAuthError("Invalid app_id")
        if form.get("grant_type") == "authorization_code":
            return self._exchange_code(form)
        if form.get("grant_type") != "refresh_token":
            raise _OAuthError("Invalid grant_type")
        old = form.get("refresh_token") or ""
        if old != self._refresh_token or old in self._used_refresh_tokens:
            raise _OAuthError("Invalid refresh token", "Refresh token is invalid, expired or already used")
        self._used_refresh_tokens.add(old)
        self._old_access_tokens.add(self._access_token)
        self._access_token = self._new_token("oa-access")
        self._refresh_token = self._new_token("oa-refresh")
        self._token_issued = time.monotonic()
        self._token_expired = False
        self.refreshes.append(TokenRefresh(old, self._access_token, self._refresh_token, time.time()))
        return {"access_token": self._access_token, "refresh_token": self._refresh_token,
                "expires_in": str(self.expires_in)}

    async def _handle_permission(self, request: web.Request) -> web.StreamResponse:
        """The permission page: the OA's admin allows the app (here at once) and the browser
        goes back to ``redirect_uri`` with a code. Bad requests get a plain 400 page."""
        query = request.query
        problem = None
        if query.get("app_id") != self.app_id:
            problem = "invalid app_id"
        elif not query.get("redirect_uri") or (self.callback_url is not None
                                               and query.get("redirect_uri") != self.callback_url):
            problem = "redirect_uri does not match the app's callback URL"
        elif not query.get("code_challenge"):
            problem = "missing code_challenge"
        if problem is not None:
            return web.Response(status=400, text=problem)
        code = self._new_token("oa-code")
        self._codes[code] = (query["code_challenge"], time.monotonic())
        target = URL(query["redirect_uri"]).update_query(
            {"oa_id": self.oa_id, "code": code, "state": query.get("state", "")})
        raise web.HTTPFound(str(target))

    def _exchange_code(self, form: JSON) -> JSON:
        code = form.get("code") or ""
        challenge, issued = self._codes.pop(code, ("", 0.0))  # single-use, even when refused
        if not challenge or time.monotonic() - issued > CODE_LIFETIME:
            raise _OAuthError("Invalid authorization code", "The authorization code is invalid or expired")
        verifier = form.get("code_verifier") or ""
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
        if digest.rstrip(b"=").decode() != challenge:
            raise _OAuthError("Invalid code verifier", "code_verifier does not match code_challenge")
        self._old_access_tokens.add(self._access_token)
        self._used_refresh_tokens.add(self._refresh_token)  # a new authorisation replaces the pair
        self._access_token = self._new_token("oa-access")
        self._refresh_token = self._new_token("oa-refresh")
        self._token_issued = time.monotonic()
        self._token_expired = False
        self.authorizations.append(TokenRefresh(code, self._access_token, self._refresh_token, time.time()))
        return {"access_token": self._access_token, "refresh_token": self._refresh_token,
                "expires_in": str(self.expires_in)}

    def _send(self, body: Any) -> JSON:
        if not isinstance(body, dict):
            raise ZaloOAError(ERR_INVALID_PARAM, "body is invalid!")
        recipient, message = body.get("recipient"), body.get("message")
        if not isinstance(recipient, dict):
            raise _invalid("recipient")
        if not isinstance(message, dict):
            raise _invalid("message")
        user = self._users.get(str(recipient.get("user_id")))
        if user is None:
            raise _invalid("user_id")
        text, attachment = message.get("text"), message.get("attachment")
        if attachment is None:
            if not isinstance(text, str) or not text.strip():
                raise _invalid("text")
        else:
            self._check_attachment(attachment)
        if isinstance(text, str) and utf16_len(text) > MAX_TEXT_LENGTH:
            raise ZaloOAError(ERR_PARAM_LIMIT, f"text length exceeds {MAX_TEXT_LENGTH} characters")
        if not user.follower:
            raise ZaloOAError(ERR_NOT_FOLLOWER)
        if user.last_interaction is None or self._now() - user.last_interaction > self.cs_window:
            raise ZaloOAError(ERR_OUTSIDE_WINDOW)
        message_id = secrets.token_hex(16)
        self.sent.append(SentMessage(user.user_id, text, copy.deepcopy(attachment), copy.deepcopy(body),
                                     time.time(), message_id))
        self.stats["sent"] += 1
        self._notify_sent()
        return {"message_id": message_id, "user_id": user.user_id}

    @staticmethod
    def _check_attachment(attachment: Any) -> None:
        if not isinstance(attachment, dict) or attachment.get("type") != "template":
            raise _invalid("attachment.type")
        payload = attachment.get("payload")
        if not isinstance(payload, dict):
            raise _invalid("attachment.payload")
        template_type = payload.get("template_type")
        if template_type == "button":
            text = payload.get("text")
            if not isinstance(text, str) or not text.strip() or utf16_len(text) > MAX_TEXT_LENGTH:
                raise _invalid("payload.text")
            buttons = payload.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 5:
                raise _invalid("buttons")
            for button in buttons:
                if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
                    raise _invalid("buttons.type")
                title = button.get("title")
                if not isinstance(title, str) or not title.strip() or utf16_len(title) > MAX_BUTTON_TITLE:
                    raise _invalid("buttons.title")
                if button.get("payload") in (None, "", {}):
                    raise _invalid("buttons.payload")
        elif template_type == "media":
            elements = payload.get("elements")
            if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
                raise _invalid("elements")
            if elements[0].get("media_type") not in ("image", "gif") or not elements[0].get("url"):
                raise _invalid("elements.media_type")
        else:
            raise _invalid("template_type")
