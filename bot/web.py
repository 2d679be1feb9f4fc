"""The aiohttp application: health check and the JSON ask endpoint (channels add routes)."""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import json
import logging
import secrets

from aiohttp import web

from bot import json_body
from bot.contracts.messages import IncomingMessage
from bot.ops import metrics as exposition
from bot.runtime import Runtime, ServiceRuntime
from bot.storage.errors import DATABASE_ERRORS
from handlers.conversation import FloodGuard

log = logging.getLogger(__name__)

RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
ASK_GUARD_KEY: web.AppKey[FloodGuard] = web.AppKey("ask_guard", FloodGuard)
ASK_LIMITED = ("Bạn đã gửi quá nhiều câu hỏi trong thời gian ngắn. Bạn vui lòng đợi khoảng một phút "
               "rồi thử lại.")
MAX_BODY_BYTES = 64 * 1024
MAX_ASK_CHARS = 10_000


_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


async def healthz(request: web.Request) -> web.Response:
    """200 "ok"; 200 "degraded" when a channel is down or its sends fail; 503 "down" when the
    database is unreachable (questions are still answered, but nothing can be stored).

    Channel states are live: "on", "off: why", "degraded: why" (sends failing) or "down: why"
    (start-up or the periodic API check failing); see bot/channels/health.py.
    """
    runtime = request.app[RUNTIME_KEY]
    database = await runtime.database_state()
    states = runtime.channels.health.merged(runtime.channel_states)
    status = "ok"
    if any(state.startswith(("down", "degraded")) for state in states.values()):
        status = "degraded"
    if database.startswith("down"):
        status = "down"
    return _json(
        {
            "status": status,
            "database": database,
            "knowledge_entries": len(runtime.knowledge.kb),
            "channels": states,
            "enabled_channels": [name for name, state in states.items() if not state.startswith("off")],
        },
        status=503 if status == "down" else 200,
    )


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text format; needs `Authorization: Bearer <METRICS_TOKEN>` when that is set."""
    runtime = request.app[RUNTIME_KEY]
    token = runtime.settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return web.Response(status=401, text="unauthorized", headers={"WWW-Authenticate": "Bearer"})
    if isinstance(runtime, ServiceRuntime):  # a process without a database has no gauges to read
        try:
            await exposition.refresh_gauges(runtime.store.sessions)
        except Exception:
            log.warning("metrics: database gauges unavailable", exc_info=True)
    return web.Response(body=exposition.render(), content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def ask(request: web.Request) -> web.Response:
    """POST {"text": ...} -> the reply the bot would give (decision, answer text, choices).

    Open without login (ward portals and integrations call it), so each client address may
    ask three times FLOOD_LIMIT_PER_MINUTE per minute (like the web chat); beyond, 429."""
    from bot.dashboard.auth import client_address

    runtime = request.app[RUNTIME_KEY]
    address = client_address(request, runtime.settings.trust_proxy_headers)
    if request.app[ASK_GUARD_KEY].check(address) != "ok":
        response = _error(429, ASK_LIMITED)
        response.headers["Retry-After"] = "60"
        return response
    try:
        payload = json_body.parse(await request.read())
    except json_body.BadJson:
        return _error(400, "Nội dung gửi lên phải là JSON, ví dụ {\"text\": \"câu hỏi\"}.")
    if not isinstance(payload, dict):
        return _error(400, "Nội dung gửi lên phải là một đối tượng JSON có trường \"text\".")
    text = payload.get("text")
    if not isinstance(text, str):
        return _error(400, "Thiếu trường \"text\" (chuỗi ký tự) chứa câu hỏi.")
    if len(text) > MAX_ASK_CHARS:
        return _error(413, f"Câu hỏi quá dài (tối đa {MAX_ASK_CHARS} ký tự).")
    user = payload.get("user") if isinstance(payload.get("user"), str) else secrets.token_hex(8)
    message = IncomingMessage(channel="api", user_id=user[:64], text=text)
    outcome = await runtime.preview.respond(message)
    verdict = outcome.verdict
    body = outcome.match.as_dict() if outcome.match else {  # small talk, a command: no match
        "decision": None, "faq_id": verdict.faq_id if verdict else None, "score": None, "alternatives": []
    }
    body["kind"] = verdict.kind.value if verdict else None  # what the reply is, as the dashboard counts it
    body["replies"] = [reply.as_dict() for reply in outcome.replies]
    return _json(body)


@web.middleware
async def json_errors(request: web.Request, handler):
    """Unexpected errors become a short JSON message, never a stack trace. A database that is
    unreachable or out of connections (a flood of requests) is a 503 to retry, not a fault."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except DATABASE_ERRORS as exc:
        log.warning("database busy or unreachable on %s: %s", request.path, type(exc).__name__)
        response = _error(503, "Hệ thống đang bận, bạn vui lòng thử lại sau ít phút.")
        response.headers["Retry-After"] = "5"
        return response
    except Exception:
        log.exception("unhandled error on %s", request.path)
        return _error(500, "Hệ thống đang gặp sự cố, bạn vui lòng thử lại sau.")


def listens_beyond_loopback(host: str) -> bool:
    """Whether WEB_HOST lets other machines connect ("0.0.0.0", a LAN address, a name)."""
    if host in ("localhost", "ip6-localhost"):
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return True


def warn_open_metrics(settings) -> bool:
    """At start-up: /metrics answers anyone who can connect when METRICS_TOKEN is empty, which is
    fine on loopback (nginx in front) but not when the service listens beyond it. True if warned."""
    if settings.metrics_token or not listens_beyond_loopback(settings.web_host):
        return False
    log.warning("GET /metrics is open to anyone who can reach %s:%s: set METRICS_TOKEN (or listen on "
                "127.0.0.1 behind nginx)", settings.web_host, settings.web_port)
    return True


def body_deadline(seconds: float):
    """Disconnect a client that has not sent its whole request body `seconds` after its
    headers (e.g. declares 10 MB and sends nothing): its handler would wait for it forever."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if not request.body_exists or request.content.is_eof():
            return await handler(request)
        expired = False

        def expire() -> None:
            nonlocal expired
            transport = request.transport
            if not request.content.is_eof() and transport is not None and not transport.is_closing():
                expired = True
                log.info("closed a connection whose request body did not arrive within %.0f s", seconds)
                transport.close()  # the handler's read now fails and it ends

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        except Exception:
            if expired:  # nobody is left to answer
                raise web.HTTPRequestTimeout() from None
            raise
        finally:
            timer.cancel()

    return middleware


def create_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[json_errors, body_deadline(runtime.settings.web_body_timeout)])
    app[RUNTIME_KEY] = runtime
    app[ASK_GUARD_KEY] = FloodGuard(runtime.settings.flood_limit_per_minute * 3)
    warn_open_metrics(runtime.settings)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_post("/api/ask", ask)
    for channel in runtime.channels.adapters.values():  # the platforms' webhooks
        for route in channel.routes():
            app.router.add_route(route.method, route.path, route.handler)
    if isinstance(runtime, ServiceRuntime):  # without a database there is no dashboard to mount
        from bot.dashboard import setup_dashboard

        setup_dashboard(app, runtime)  # staff dashboard (/dashboard) and web chat (/chat)
    return app
