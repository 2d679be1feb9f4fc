"""`python -m bot zalo authorize`: the Zalo OA's first token pair, by Zalo's OAuth v4 flow with PKCE.

1. A code verifier (random, 64 characters) and its S256 challenge are made here; the
   permission URL carries the challenge, the app id, the app's registered callback URL and a
   random state.
2. The OA's admin opens the URL, logs in to Zalo and allows the app; Zalo sends the browser to
   the callback URL with `code` and `state` in the query. The code reaches us either pasted
   by hand (the whole address or just the code: works whatever page the callback URL shows)
   or, with `--listen PORT`, through a one-off local web server on that port.
3. The code and the verifier are exchanged for the first access/refresh pair, which is stored
   in `channel_tokens` (bot/storage/tokens.py), where the running service picks it up.

The verifier never leaves this process except in the exchange, so a code seen by someone else
(browser history, a proxy log) is worthless to them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from aiohttp import web

from bot.settings import Settings

PATH_PERMISSION = "/v4/oa/permission"
PATH_TOKEN = "/v4/oa/access_token"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=20)
CALLBACK_PATH = "/zalo/callback"
DONE_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Zalo OA</title>"
    "<p>Đã nhận mã cấp quyền. Bạn có thể đóng trang này và quay lại cửa sổ dòng lệnh.</p>"
    "<p>The authorisation code was received; you can close this page.</p>"
)


class AuthorizeError(Exception):
    """The flow cannot finish; the message says why, for the operator."""


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str
    state: str

    @classmethod
    def new(cls) -> Pkce:
        # 48 random bytes -> 64 URL-safe characters, inside RFC 7636's 43-128.
        verifier = secrets.token_urlsafe(48)
        return cls(verifier, challenge_for(verifier), secrets.token_urlsafe(16))


def challenge_for(verifier: str) -> str:
    """S256: base64url(sha256(verifier)) without padding (RFC 7636, as Zalo's v4 flow uses it)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def permission_url(settings: Settings, redirect_uri: str, pkce: Pkce) -> str:
    query = urlencode({"app_id": settings.zalo_oa_app_id, "redirect_uri": redirect_uri,
                       "code_challenge": pkce.challenge, "state": pkce.state})
    return f"{settings.zalo_oa_oauth_base_url.rstrip('/')}{PATH_PERMISSION}?{query}"


def code_from(pasted: str, state: str) -> str:
    """The code from what the operator pasted: the callback address, its query, or the code."""
    text = pasted.strip()
    if not text:
        raise AuthorizeError("không có gì được dán vào / nothing was pasted")
    if "code=" not in text:
        if any(ch.isspace() for ch in text) or "/" in text:
            raise AuthorizeError("không thấy mã code trong nội dung đã dán / no code found in what was pasted")
        return text
    query = parse_qs(urlsplit(text).query if "?" in text else text)
    code = (query.get("code") or [""])[0]
    returned = (query.get("state") or [None])[0]
    if returned is not None and returned != state:
        raise AuthorizeError("state không khớp: địa chỉ này không thuộc lần cấp quyền này, hãy chạy lại lệnh / "
                             "state mismatch: that address belongs to another attempt; run the command again")
    if not code:
        raise AuthorizeError("không thấy mã code trong địa chỉ đã dán / no code in the pasted address")
    return code


async def code_by_callback(port: int, state: str, wait_seconds: float, host: str = "127.0.0.1",
                           on_ready: Callable[[], None] | None = None) -> str:
    """Serve one callback on host:port and return its code (requests with a wrong state are
    answered 400 and the wait goes on)."""
    received: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.Response:
        code = request.query.get("code", "")
        if request.query.get("state") != state or not code:
            return web.Response(status=400, text="state or code missing or wrong / thiếu hoặc sai state, code")
        if not received.done():
            received.set_result(code)
        return web.Response(text=DONE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise AuthorizeError(f"không mở được cổng {port} / cannot listen on port {port}: {exc}") from exc
        if on_ready is not None:
            on_ready()
        try:
            async with asyncio.timeout(wait_seconds):
                return await received
        except TimeoutError:
            raise AuthorizeError(f"hết {wait_seconds:.0f} giây mà chưa nhận được mã / no code within "
                                 f"{wait_seconds:.0f} s") from None
    finally:
        await runner.cleanup()


async def exchange(settings: Settings, code: str, verifier: str) -> tuple[str, str, int]:
    """POST the code and the verifier: (access token, refresh token, lifetime in seconds)."""
    url = settings.zalo_oa_oauth_base_url.rstrip("/") + PATH_TOKEN
    form = {"code": code, "app_id": settings.zalo_oa_app_id, "grant_type": "authorization_code",
            "code_verifier": verifier}
    headers = {"secret_key": settings.zalo_oa_app_secret or settings.zalo_oa_secret_key}
    try:
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, \
                http.post(url, data=form, headers=headers) as response:
            status = response.status
            body = await response.json(content_type=None) if status < 500 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise AuthorizeError(f"không gọi được máy chủ OAuth của Zalo / the OAuth host did not answer: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
        detail = body.get("error_description") or body.get("error_reason") or body.get("message") or body \
            if isinstance(body, dict) else f"HTTP {status}"
        raise AuthorizeError(f"Zalo từ chối đổi mã / Zalo refused the code: {str(detail)[:300]}")
    try:
        lifetime = int(str(body.get("expires_in", "3600")))  # a string in Zalo's answers
    except ValueError:
        lifetime = 3600
    return str(body["access_token"]), str(body["refresh_token"]), max(60, lifetime)


async def oa_name(settings: Settings, access: str) -> str:
    """The OA's name, to show which OA was connected ("" when it cannot be read)."""
    url = settings.zalo_oa_api_base_url.rstrip("/") + "/v2.0/oa/getoa"
    try:
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, \
                http.get(url, headers={"access_token": access}) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return ""
    data = body.get("data") if isinstance(body, dict) else None
    return str(data.get("name") or "") if isinstance(data, dict) else ""


async def save(settings: Settings, access: str, refresh: str, lifetime: int) -> None:
    from bot.storage.store import open_store
    from bot.storage.tokens import store_authorized_pair

    engine, store = await open_store(settings)
    try:
        await store_authorized_pair(store.sessions, f"zalo_oa:{settings.zalo_oa_app_id}", access, refresh,
                                    lifetime, seed_access=settings.zalo_oa_access_token,
                                    seed_refresh=settings.zalo_oa_refresh_token)
    finally:
        await engine.dispose()


def run(settings: Settings, redirect_uri: str | None, listen: int | None, timeout: float,
        read_line: Callable[[], str] = input) -> int:
    """The whole command; returns the exit code (0 stored, 1 failed, 2 not configured)."""
    missing = settings.zalo_oa_missing
    if missing:
        print(f"error: {', '.join(missing)} not set (see the README, Zalo OA)", file=sys.stderr)
        return 2
    if listen is not None and not redirect_uri:
        redirect_uri = f"http://localhost:{listen}{CALLBACK_PATH}"
    if not redirect_uri:
        print("error: give --redirect-uri (the Official Account callback URL registered for the app in the "
              "Zalo developer console), or --listen PORT", file=sys.stderr)
        return 2
    pkce = Pkce.new()
    url = permission_url(settings, redirect_uri, pkce)
    print("Cấp quyền cho ứng dụng gửi tin qua Zalo OA / Authorise the app for the Zalo OA\n")
    print(f"1. Địa chỉ quay về (callback) phải đúng như đã khai cho ứng dụng trên trang Zalo for Developers:\n"
          f"   {redirect_uri}\n   (The callback URL registered for the app must be exactly this.)")
    print("2. Quản trị viên của OA mở địa chỉ sau trong trình duyệt, đăng nhập Zalo và bấm cho phép:\n"
          "   (The OA's admin opens this address, logs in to Zalo and allows the app:)\n")
    print(f"   {url}\n", flush=True)
    try:
        if listen is not None:
            def ready() -> None:
                print(f"3. Đang chờ Zalo chuyển trình duyệt về cổng {listen} (tối đa {timeout:.0f} giây)...\n"
                      f"   (Waiting for the browser to come back to port {listen}; on a remote server use "
                      f"`ssh -L {listen}:localhost:{listen}`.)", flush=True)

            code = asyncio.run(code_by_callback(listen, pkce.state, timeout, on_ready=ready))
        else:
            print("3. Sau khi cho phép, trình duyệt chuyển tới địa chỉ quay về (trang đó có thể báo lỗi, không sao).\n"
                  "   Sao chép toàn bộ địa chỉ trên thanh địa chỉ và dán vào đây, rồi nhấn Enter:\n"
                  "   (After allowing, copy the whole address from the browser's address bar, paste it here, "
                  "press Enter:)", flush=True)
            try:
                pasted = read_line()
            except EOFError:
                pasted = ""
            code = code_from(pasted, pkce.state)
        access, refresh, lifetime = asyncio.run(_exchange_and_save(settings, code, pkce.verifier))
    except AuthorizeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    name = asyncio.run(oa_name(settings, access))
    print(f"\nĐã lưu cặp token đầu tiên vào cơ sở dữ liệu{f' (OA: {name})' if name else ''}. "
          f"Token truy cập dùng được {lifetime // 3600} giờ; dịch vụ tự làm mới.\n"
          "Dịch vụ đang chạy sẽ tự dùng token mới; không cần ghi ZALO_OA_ACCESS_TOKEN/ZALO_OA_REFRESH_TOKEN.\n"
          f"(The first token pair is stored{f' for the OA {name}' if name else ''}; the running service "
          "picks it up and refreshes it. ZALO_OA_ACCESS_TOKEN/ZALO_OA_REFRESH_TOKEN are not needed.)")
    return 0


async def _exchange_and_save(settings: Settings, code: str, verifier: str) -> tuple[str, str, int]:
    access, refresh, lifetime = await exchange(settings, code, verifier)
    # Zalo has just spent the code and issued a single-use refresh token: store it before
    # anything else can fail.
    try:
        await save(settings, access, refresh, lifetime)
    except Exception as exc:
        raise AuthorizeError(f"không lưu được token vào cơ sở dữ liệu / could not store the tokens: {exc}. "
                             f"Ghi tạm vào file cấu hình / put them in the settings file instead:\n"
                             f"ZALO_OA_ACCESS_TOKEN={access}\nZALO_OA_REFRESH_TOKEN={refresh}") from exc
    return access, refresh, lifetime
