"""Periodic work of a serving process: hand-off reminders and auto-close, redelivery of team
replies, purge of old logs, the weekly knowledge-review digest to admins, and flushing
question logs queued while the database was down.

With several processes on one database, a lease (bot/storage/locks.py) makes each round run
in one process only, so reminders and redeliveries are not doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket

from bot.freshness import send_digest_if_due
from bot.runtime import ServiceRuntime
from bot.storage import locks

log = logging.getLogger(__name__)

TICK_SECONDS = 60
PURGE_EVERY = dt.timedelta(hours=24)
JOBS_LOCK = "periodic-jobs"


async def run_round(runtime: ServiceRuntime, owner: str, tick: float, state: dict) -> bool:
    """One round of jobs if this process holds the lease; True if it ran."""
    store = runtime.store
    if runtime.conversation.pending.items:
        await runtime.conversation.pending.flush(store)
    if not await locks.acquire(store.sessions, JOBS_LOCK, owner, dt.timedelta(seconds=max(2 * tick, 5))):
        return False
    settings = runtime.settings
    await runtime.handoffs.redeliver()
    await runtime.handoffs.remind_and_close(dt.timedelta(minutes=settings.handoff_reminder_minutes),
                                            dt.timedelta(hours=settings.handoff_auto_close_hours))
    now = dt.datetime.now(dt.UTC)
    if state.get("last_purge") is None or now - state["last_purge"] > PURGE_EVERY:
        counts = await store.purge(dt.timedelta(days=settings.log_retention_days))
        state["last_purge"] = now
        if any(counts.values()):
            log.info("purged old records: %s", counts)
    await send_digest_if_due(runtime, now)  # weekly knowledge-review digest to admins (KB_DIGEST_AT)
    return True


async def run_jobs(runtime: ServiceRuntime, stop: asyncio.Event, tick: float = TICK_SECONDS) -> None:
    owner = f"{socket.gethostname()}:{os.getpid()}"
    state: dict = {}
    while not stop.is_set():
        try:
            await run_round(runtime, owner, tick, state)
        except Exception:
            log.exception("periodic job failed; will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick)
