"""Vietnam time, defined once: staff's "today", review days, campaign times and report periods
are Vietnamese days and clock times, while everything stored is UTC.

A leaf module (standard library only), so any layer may import it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

# UTC+7 without daylight saving since 1975; the tz database also gets older dates right.
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def vn_now() -> dt.datetime:
    return dt.datetime.now(VN_TZ)


def vn_today() -> dt.date:
    return vn_now().date()


def vn_date(moment: dt.datetime) -> dt.date:
    """The Vietnamese calendar day of an aware moment."""
    return moment.astimezone(VN_TZ).date()


def vn_day_start_utc(day: dt.date) -> dt.datetime:
    """Midnight of a Vietnamese day, as UTC (the start of a report period)."""
    return dt.datetime.combine(day, dt.time(), VN_TZ).astimezone(dt.UTC)
