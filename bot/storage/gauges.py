"""The figures behind the /metrics gauges that come from the database (bot/ops/metrics.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage.models import Delivery, Handoff


@dataclass(frozen=True)
class GaugeReadings:
    deliveries_by_state: dict[str, int]  # only the states some row has
    open_handoffs: int
    oldest_open_handoff: dt.datetime | None  # aware (UTC)


async def read_gauges(sessions: async_sessionmaker) -> GaugeReadings:
    async with sessions() as s:
        deliveries = dict((await s.execute(select(Delivery.state, func.count()).group_by(Delivery.state))).all())
        count, oldest = (await s.execute(select(func.count(), func.min(Handoff.created_at))
                                         .where(Handoff.state == "open"))).one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite keeps no time zone
        oldest = oldest.replace(tzinfo=dt.UTC)
    return GaugeReadings(deliveries, count or 0, oldest)
