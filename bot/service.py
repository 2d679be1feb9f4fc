"""`python -m bot`: one asyncio process serving the web app and every configured channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from bot.jobs import run_jobs
from bot.ops import health
from bot.runtime import Runtime
from bot.settings import ConfigurationError, Settings
from bot.web import create_app

log = logging.getLogger(__name__)

# Pending connections the kernel queues for us (aiohttp's default, 128, dropped SYNs at 500
# concurrent clients); the kernel caps it at net.core.somaxconn (4096 on current Linux).
LISTEN_BACKLOG = 2048


def loop_factory(settings: Settings):
    """uvloop's event loop where it is installed (not on Windows): most of the service's CPU is
    the loop and aiohttp, and uvloop raised the sustainable load from 300/s to 400/s on SQLite
    (bench/load.py)."""
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    runtime = await Runtime.open(settings)
    app = create_app(runtime)
    # keepalive_timeout also bounds the headers of a connection's first request: a client
    # that connects and sends them slowly is closed after WEB_HEADER_TIMEOUT.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=settings.web_header_timeout)
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.web_port, backlog=LISTEN_BACKLOG)
    try:
        await site.start()
    except OSError as exc:
        await runtime.close()
        raise ConfigurationError(f"WEB_HOST/WEB_PORT: cannot listen on {settings.web_host}:{settings.web_port}: {exc}") from None
    stop = stop or asyncio.Event()
    restarts = await health.start_channels(runtime, stop)  # a channel that fails is retried
    log.info("knowledge base: %d entries", len(runtime.knowledge.kb))
    log.info("event loop: %s", type(asyncio.get_running_loop()).__module__.split(".")[0])
    for name, state in runtime.channels.health.merged(runtime.channel_states).items():
        log.info("channel %s: %s", name, state)
    log.info("listening on http://%s:%s (GET /healthz, POST /api/ask)", settings.web_host, settings.web_port)
    jobs = asyncio.create_task(run_jobs(runtime, stop, settings.jobs_tick_seconds))
    sender = asyncio.create_task(runtime.campaign_runner.run(stop))
    watcher = asyncio.create_task(health.watch_channels(runtime, stop, settings.channel_check_seconds))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        stop.set()
        await jobs
        await sender
        await watcher
        await asyncio.gather(*restarts, return_exceptions=True)
        await runner.cleanup()
        await runtime.close()
