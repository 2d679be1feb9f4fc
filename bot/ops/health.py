"""Channel health over time: start-up retried with back-off, and a periodic API check.

Send results are recorded by every channel's `deliver` (bot/channels/base.py); this module
adds what sends cannot show: a channel that never started, and an API that stopped answering while
nobody writes (polling or webhook registration broken). /healthz shows the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from bot.channels.base import Channel
from bot.channels.health import short_reason
from bot.runtime import Runtime

log = logging.getLogger(__name__)

START_BACKOFF = (1, 2, 5, 10, 30, 60)  # seconds; the last value repeats
CHECK_TIMEOUT = 10.0


def _describe(exc: BaseException) -> str:
    text = short_reason(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _start(runtime: Runtime, name: str, adapter: Channel) -> bool:
    try:
        await adapter.start()
    except Exception as exc:
        log.error("channel %s failed to start: %s", name, _describe(exc))
        runtime.channels.health.report(name, "start", f"start failed: {_describe(exc)}")
        return False
    runtime.channels.health.report(name, "start", None)
    return True


async def _retry_start(runtime: Runtime, name: str, adapter: Channel, stop: asyncio.Event) -> None:
    """Try again with growing pauses until the channel starts or the process stops."""
    for attempt in itertools.count():
        delay = START_BACKOFF[min(attempt, len(START_BACKOFF) - 1)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            return
        with contextlib.suppress(Exception):  # a half-started adapter must stop before a new start
            await adapter.stop()
        if await _start(runtime, name, adapter):
            log.info("channel %s started after %d retries", name, attempt + 1)
            return


async def start_channels(runtime: Runtime, stop: asyncio.Event) -> list[asyncio.Task]:
    """Start every adapter; one that fails is "down" and retried in the background."""
    retries = []
    for name, adapter in runtime.channels.adapters.items():
        if not await _start(runtime, name, adapter):
            retries.append(asyncio.create_task(_retry_start(runtime, name, adapter, stop), name=f"start-{name}"))
    return retries


async def check_channels(runtime: Runtime) -> None:
    """One round of API checks (`Channel.probe`: a read-only call proving the platform
    answers with our credentials) on the channels that are running."""
    health = runtime.channels.health
    for name, adapter in runtime.channels.adapters.items():
        if (health.state(name) or "").startswith("down: start"):
            continue
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await adapter.probe()
        except Exception as exc:
            health.report(name, "check", f"API check failed: {_describe(exc)}")
        else:
            health.report(name, "check", None)


async def watch_channels(runtime: Runtime, stop: asyncio.Event, interval: float) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            await check_channels(runtime)
        except Exception:
            log.exception("channel check failed; will retry")
