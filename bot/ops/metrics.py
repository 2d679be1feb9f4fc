"""Prometheus metrics. Counters are bumped where things happen; database-derived gauges
(campaign deliveries, open hand-offs) are computed when /metrics is scraped."""

from __future__ import annotations

import datetime as dt
import functools
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.channels.errors import OutsideWindow, RateLimited, RecipientGone, Rejected, Transient

REGISTRY = CollectorRegistry()

QUESTIONS = Counter("bot_questions_total", "Citizen questions by channel and decision",
                    ["channel", "decision"], registry=REGISTRY)
MATCH_SECONDS = Histogram("bot_match_seconds", "Time to match a question against the knowledge base",
                          buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1), registry=REGISTRY)
SENT = Counter("bot_messages_sent_total", "Messages delivered by channel and purpose",
               ["channel", "purpose"], registry=REGISTRY)
SEND_ERRORS = Counter("bot_send_errors_total", "Failed sends by channel and error kind",
                      ["channel", "error"], registry=REGISTRY)
RATE_LIMITED = Counter("bot_rate_limited_total", "429 / rate-limit answers by channel", ["channel"],
                       registry=REGISTRY)
WEBHOOK_REJECTED = Counter("bot_webhook_rejected_total", "Webhook requests rejected by channel and reason",
                           ["channel", "reason"], registry=REGISTRY)
CAMPAIGN_DELIVERIES = Gauge("bot_campaign_deliveries", "Campaign deliveries by state (all campaigns)",
                            ["state"], registry=REGISTRY)
HANDOFFS_OPEN = Gauge("bot_handoffs_open", "Hand-off threads waiting for the team", registry=REGISTRY)
HANDOFF_OLDEST_SECONDS = Gauge("bot_handoff_oldest_open_seconds", "Age of the oldest open hand-off",
                               registry=REGISTRY)

_ERROR_KINDS = ((RateLimited, "rate_limited"), (RecipientGone, "recipient_gone"), (Rejected, "rejected"),
                (OutsideWindow, "outside_window"), (Transient, "transient"))


def instrument_deliver(channel: str, deliver):
    """Wrap an adapter's deliver() so every channel reports sends and errors the same way."""

    @functools.wraps(deliver)
    async def wrapped(*args, **kwargs):
        purpose = "broadcast" if kwargs.get("broadcast") else "reply"
        try:
            result = await deliver(*args, **kwargs)
        except Exception as exc:
            kind = next((name for cls, name in _ERROR_KINDS if isinstance(exc, cls)), "other")
            SEND_ERRORS.labels(channel, kind).inc()
            if kind == "rate_limited":
                RATE_LIMITED.labels(channel).inc()
            raise
        SENT.labels(channel, purpose).inc()
        return result

    return wrapped


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_exc):
        self.seconds = time.perf_counter() - self.start


async def refresh_gauges(sessions) -> None:
    from sqlalchemy import func, select

    from bot.storage.models import Delivery, Handoff, utcnow

    async with sessions() as s:
        for state, count in await s.execute(select(Delivery.state, func.count()).group_by(Delivery.state)):
            CAMPAIGN_DELIVERIES.labels(state).set(count)
        count, oldest = (await s.execute(select(func.count(), func.min(Handoff.created_at))
                                         .where(Handoff.state == "open"))).one()
        HANDOFFS_OPEN.set(count or 0)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        HANDOFF_OLDEST_SECONDS.set((utcnow() - oldest).total_seconds() if oldest else 0)


def render() -> bytes:
    return generate_latest(REGISTRY)
