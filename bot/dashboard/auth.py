"""Staff login: scrypt password hashes, session cookies, CSRF tokens, throttling, headers.

Why this shape: a ward runs one small server, often without a separate identity system,
so accounts live in our database. Passwords use scrypt (stdlib, memory-hard). The cookie
holds a random token and the database only its SHA-256, so a copied table cannot be
replayed. Every form carries the session's CSRF token; login attempts are recorded in the
database before the password is checked, and only while the limit admits them, so the limit
holds across processes, restarts and concurrent guesses.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.dashboard.common import CSRF_KEY, VIEWER_KEY, dash, redirect, render, viewer
from bot.storage.dashboard_queries import StaffAccount
from bot.storage.models import utcnow

log = logging.getLogger(__name__)

SESSION_COOKIE = "dvc_staff"
LOGIN_CSRF_COOKIE = "dvc_login"
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32  # 16 MiB per hash
MIN_PASSWORD = 10
IP_FAILURE_FACTOR = 4  # one address may fail for a few accounts before it is paused too

# Password checks run by login_submit, per submitted user name: what the throttle bounds.
PASSWORD_CHECKS: Counter[str] = Counter()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def read_form(request: web.Request):
    """The posted form, or a plain 400: bytes that are not UTF-8, an unknown charset or a broken
    multipart body are the sender's mistake, not a server error with a traceback."""
    try:
        return await request.post()
    except web.HTTPException:
        raise
    except (ValueError, LookupError, AssertionError, aiohttp.ClientPayloadError, HttpProcessingError) as exc:
        log.info("dashboard: unreadable form on %s (%s)", request.path, type(exc).__name__)
        raise web.HTTPBadRequest(text="Biểu mẫu gửi lên không đọc được.") from None


# --- passwords -------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=SCRYPT_LEN, maxmem=64 * 1024 * 1024)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY_HASH = hash_password(secrets.token_hex(8))  # unknown users cost the same time as known ones


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"password must have at least {MIN_PASSWORD} characters"
    return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- request facts -------------------------------------------------------------------------------
def client_ip(request: web.Request) -> str:
    """The client's address; behind our proxy, the one the proxy saw.

    A proxy appends the address it was contacted from to X-Forwarded-For, so only the
    last entry is trustworthy: earlier ones are whatever the client chose to send.
    """
    return client_address(request, dash(request).settings.trust_proxy_headers)


def client_address(request: web.Request, trust_proxy_headers: bool) -> str:
    """client_ip for routes outside the dashboard (POST /api/ask), given TRUST_PROXY_HEADERS."""
    if trust_proxy_headers:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        entries = [part.strip() for value in forwarded for part in value.split(",") if part.strip()]
        if entries:
            return entries[-1][:64]
    return (request.remote or "unknown")[:64]


def is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    return dash(request).settings.trust_proxy_headers and request.headers.get("X-Forwarded-Proto") == "https"


def cookie_secure(request: web.Request) -> bool:
    mode = dash(request).settings.dashboard_cookie_secure
    return is_https(request) if mode == "auto" else mode == "true"


# --- sessions ----------------------------------------------------------------------------------------
async def load_viewer(request: web.Request) -> StaffAccount | None:
    if VIEWER_KEY in request:
        return request[VIEWER_KEY]
    token = request.cookies.get(SESSION_COOKIE, "")
    found = await dash(request).queries.session(token_hash(token)) if token else None
    account = None
    if found is not None:
        account, request[CSRF_KEY] = found
    request[VIEWER_KEY] = account
    return account


def csrf_ok(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def requires(role: str = "viewer") -> Callable[[Handler], Handler]:
    """Logged in with at least `role`; POSTs must carry the session's CSRF token."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            account = await load_viewer(request)
            if account is None:
                if request.method == "GET":
                    raise redirect("/dashboard/login", next=request.path_qs)
                raise redirect("/dashboard/login")
            if request.method not in ("GET", "HEAD", "OPTIONS"):  # PUT and DELETE need the token too
                form = await read_form(request)
                given = str(form.get("csrf_token", "")) or request.headers.get("X-CSRF-Token", "")
                if not csrf_ok(given, request.get(CSRF_KEY, "")):
                    log.warning("dashboard: CSRF check failed for %s on %s", account.username, request.path)
                    return render(request, "error.html", status=403, title="Biểu mẫu không hợp lệ",
                                  message="Biểu mẫu đã hết hạn hoặc không hợp lệ. Bạn vui lòng tải lại trang "
                                          "rồi thử lại.")
            if not account.can(role):
                return render(request, "error.html", status=403, title="Không có quyền",
                              message="Tài khoản của bạn không có quyền thực hiện thao tác này.")
            return await handler(request)

        return wrapper

    return decorate


# --- login and logout ---------------------------------------------------------------------------------
def _safe_next(value: str | None) -> str:
    if value and value.startswith("/dashboard") and not value.startswith("//") and "\\" not in value:
        return value
    return "/dashboard/unanswered"


async def login_page(request: web.Request) -> web.Response:
    if await load_viewer(request) is not None:
        raise redirect(_safe_next(request.query.get("next")))
    return _login_form(request)


def _login_form(request: web.Request, message: str = "", status: int = 200, username: str = "") -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, login_csrf=token, message=message, username=username,
                      next=_safe_next(request.query.get("next")))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, path="/dashboard/login", httponly=True, samesite="Lax",
                        secure=cookie_secure(request), max_age=3600)
    return response


async def login_submit(request: web.Request) -> web.Response:
    d = dash(request)
    form = await read_form(request)
    if not csrf_ok(str(form.get("csrf_token", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        return _login_form(request, "Phiên đăng nhập đã hết hạn, bạn vui lòng thử lại.", status=403)
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    ip = client_ip(request)
    settings = d.settings
    window = dt.timedelta(minutes=settings.dashboard_login_lock_minutes)
    limit = settings.dashboard_login_max_failures
    # The attempt is recorded (and counted) before the password is checked: see admit_login.
    attempt = await d.queries.admit_login(username, ip, utcnow() - window, limit, limit * IP_FAILURE_FACTOR)
    if attempt is None:
        await d.runtime.store.audit_trail.record(f"login:{username}", "login.throttled", ip)
        return _login_form(request, f"Bạn đã đăng nhập sai quá nhiều lần. Vui lòng thử lại sau "
                                    f"{settings.dashboard_login_lock_minutes} phút.", status=429, username=username)
    found = await d.queries.login_account(username) if username else None
    stored = found[1] if found else _DUMMY_HASH
    PASSWORD_CHECKS[username] += 1
    good = await asyncio.to_thread(verify_password, password, stored) and found is not None
    await d.queries.finish_login(attempt, good)
    if not good or found is None:
        return _login_form(request, "Tên đăng nhập hoặc mật khẩu không đúng.", status=401, username=username)
    account = found[0]
    token = secrets.token_urlsafe(32)
    lifetime = dt.timedelta(hours=settings.dashboard_session_hours)
    await d.queries.create_session(account.id, token_hash(token), secrets.token_urlsafe(32), lifetime)
    await d.runtime.store.audit_trail.record(account.actor, "login", ip)
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="Lax",
                        secure=cookie_secure(request), max_age=int(lifetime.total_seconds()))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/dashboard/login")
    raise response


@requires("viewer")
async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await dash(request).queries.end_session(token_hash(token))
    await dash(request).runtime.store.audit_trail.record(viewer(request).actor, "logout")
    response = redirect("/dashboard/login", ok="Bạn đã đăng xuất.")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# --- security headers ---------------------------------------------------------------------------------
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CSP without inline script everywhere; only /chat may be framed (by WEBCHAT_FRAME_ANCESTORS).

    Also marks every cookie of the response Secure when DASHBOARD_COOKIE_SECURE says so,
    so no handler (flash messages, login form token) can forget the flag.
    """
    headers = response.headers
    if "Set-Cookie" in headers and cookie_secure(request):  # already serialised when this hook runs
        cookies = headers.popall("Set-Cookie")
        for cookie in cookies:
            secure = any(part.strip().lower() == "secure" for part in cookie.split(";"))
            headers.add("Set-Cookie", cookie if secure else f"{cookie}; Secure")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    path = request.path
    if path == "/chat" or path.startswith("/chat/"):
        ancestors = dash(request).settings.webchat_frame_ancestors
        headers["Content-Security-Policy"] = f"{CSP}; frame-ancestors {ancestors}"
        headers["Cache-Control"] = "no-store"
        return
    csp = CSP
    if path.startswith("/dashboard/campaigns/"):  # the preview shows the campaign's image from its https address
        csp = csp.replace("img-src 'self' data:", "img-src 'self' data: https:")
    headers["Content-Security-Policy"] = f"{csp}; frame-ancestors 'none'"
    headers["X-Frame-Options"] = "DENY"
    if path.startswith("/static/"):
        headers.setdefault("Cache-Control", "public, max-age=3600")
    elif path.startswith("/dashboard"):
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"

