"""/metrics: the gauges read from the database when it is scraped (campaign deliveries,
open hand-offs), and the exposition text of every metric (counters: bot/metrics.py)."""

from __future__ import annotations

from prometheus_client import generate_latest

from bot.campaigns.service import DELIVERY_STATES
from bot.metrics import CAMPAIGN_DELIVERIES, HANDOFF_OLDEST_SECONDS, HANDOFFS_OPEN, REGISTRY
from bot.storage.gauges import read_gauges
from bot.storage.models import utcnow

_seen_states: set[str] = set()


async def refresh_gauges(sessions) -> None:
    """Read the gauges from the database. Every delivery state is set, to 0 when no row has
    it any more: a state left out would keep its last value for ever."""
    readings = await read_gauges(sessions)
    counts = dict.fromkeys([*DELIVERY_STATES, *_seen_states], 0)
    counts.update(readings.deliveries_by_state)
    for state, count in counts.items():
        CAMPAIGN_DELIVERIES.labels(state).set(count)
    _seen_states.update(counts)
    HANDOFFS_OPEN.set(readings.open_handoffs)
    oldest = readings.oldest_open_handoff
    HANDOFF_OLDEST_SECONDS.set((utcnow() - oldest).total_seconds() if oldest else 0)


def render() -> bytes:
    return generate_latest(REGISTRY)
