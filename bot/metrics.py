"""Prometheus metrics: counters bumped where things happen (a leaf every layer may import);
the database-derived gauges and the /metrics text are in bot/ops/metrics.py."""

from __future__ import annotations

import re
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot.contracts.delivery import OutsideWindow, RateLimited, RecipientGone, Rejected, Transient

REGISTRY = CollectorRegistry()

PREVIEW_CHANNEL = "api"  # POST /api/ask: staff and integrations trying the matcher, not citizens
CITIZEN_QUESTIONS = Counter("bot_questions_total", "Citizen questions by channel and decision",
                            ["channel", "decision"], registry=REGISTRY)
API_PREVIEWS = Counter("bot_api_previews_total", "POST /api/ask previews by decision (not citizen questions)",
                       ["decision"], registry=REGISTRY)
MATCH_SECONDS = Histogram("bot_match_seconds", "Time to match a question against the knowledge base",
                          buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1), registry=REGISTRY)
SENT = Counter("bot_messages_sent_total", "Messages delivered by channel and purpose",
               ["channel", "purpose"], registry=REGISTRY)
SEND_ERRORS = Counter("bot_send_errors_total", "Failed send attempts by channel, error kind and platform code",
                      ["channel", "error", "code"], registry=REGISTRY)
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
# python-telegram-bot's exceptions carry no status code; their class says it.
_TELEGRAM_CODES = (("RetryAfter", "429"), ("Forbidden", "403"), ("InvalidToken", "401"), ("Conflict", "409"),
                   ("BadRequest", "400"), ("TimedOut", "timeout"), ("NetworkError", "network"))
_CODE_IN_TEXT = re.compile(r"\berror (-?\d+)\b|\bHTTP (\d{3})\b|\((\d{3})\)")


class _Questions:
    """bot_questions_total counts citizens' questions only: the storage-free preview of
    POST /api/ask (channel "api") is counted in bot_api_previews_total instead."""

    def labels(self, channel: str, decision: str):
        return API_PREVIEWS.labels(decision) if channel == PREVIEW_CHANNEL else CITIZEN_QUESTIONS.labels(channel, decision)


QUESTIONS = _Questions()


def _telegram_code(exc: BaseException, names: tuple[tuple[str, str], ...]) -> str | None:
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("telegram"):
            found = next((code for name, code in names if cls.__name__ == name), None)
            if found:
                return found
    return None


def error_code(exc: BaseException) -> str:
    """The platform's code for a failed send: HTTP-like for Telegram (400, 403, 429, 502,
    timeout, network), Zalo's own numbers (-216, -230...) for Zalo; "unknown" otherwise."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 5:  # the adapter's error, then the platform's it wraps
        chain.append(seen)
        seen = seen.__cause__
    for item in chain:
        code = getattr(item, "code", None)
        if isinstance(code, int):
            return str(code)
        found = _telegram_code(item, _TELEGRAM_CODES[:-1])  # the precise classes first
        if found:
            return found
        match = _CODE_IN_TEXT.search(str(item))
        if match:
            return next(group for group in match.groups() if group)
    return next((c for c in (_telegram_code(item, _TELEGRAM_CODES[-1:]) for item in chain) if c), "unknown")


def count_sent(channel: str, broadcast: bool) -> None:
    """A delivery went out (every channel counts through Channel.deliver, bot/channels/base.py)."""
    SENT.labels(channel, "broadcast" if broadcast else "reply").inc()


def count_send_error(channel: str, exc: BaseException) -> None:
    """A delivery attempt failed: its kind and the platform's code."""
    kind = next((name for cls, name in _ERROR_KINDS if isinstance(exc, cls)), "other")
    SEND_ERRORS.labels(channel, kind, error_code(exc)).inc()
    if kind == "rate_limited":
        RATE_LIMITED.labels(channel).inc()


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_exc):
        self.seconds = time.perf_counter() - self.start
