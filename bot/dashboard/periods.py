"""Reporting periods of wards (Decree 09/2019/NĐ-CP, art. 12, on periodic reports).

Figures of a six-month report run from 15 December of the previous year to 14 June;
those of a yearly report from 15 December of the previous year to 14 December. These are
the periods the report page offers first; any date range can also be chosen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Period:
    key: str  # "6t-2026", "nam-2026"
    label: str
    start: dt.date
    end: dt.date  # inclusive


def half_year(year: int) -> Period:
    start, end = dt.date(year - 1, 12, 15), dt.date(year, 6, 14)
    return Period(f"6t-{year}", f"6 tháng đầu năm {year} ({start:%d/%m/%Y} – {end:%d/%m/%Y})", start, end)


def full_year(year: int) -> Period:
    start, end = dt.date(year - 1, 12, 15), dt.date(year, 12, 14)
    return Period(f"nam-{year}", f"Năm {year} ({start:%d/%m/%Y} – {end:%d/%m/%Y})", start, end)


def report_year(day: dt.date) -> int:
    """The year whose reports a day's figures belong to (from 15 December: the next year)."""
    return day.year + 1 if (day.month, day.day) >= (12, 15) else day.year


def choices(today: dt.date, years: int = 3) -> list[Period]:
    year = report_year(today)
    out = []
    for y in range(year, year - years, -1):
        out += [half_year(y), full_year(y)]
    return out


def default_period(today: dt.date) -> Period:
    """The report most likely being prepared today.

    Until a month after the six-month cut-off (14 July) that is the six-month report of
    the year; afterwards the yearly one. From 15 December to 14 January the yearly report
    that has just closed.
    """
    year = report_year(today)
    if (today.month, today.day) >= (12, 15) or (today.month, today.day) <= (1, 14):
        return full_year(year - 1)
    if (today.month, today.day) <= (7, 14):
        return half_year(year)
    return full_year(year)


def by_key(key: str, today: dt.date) -> Period | None:
    kind, _, year = key.partition("-")
    if not year.isdigit() or not 2000 <= int(year) <= today.year + 1:
        return None
    if kind == "6t":
        return half_year(int(year))
    if kind == "nam":
        return full_year(int(year))
    return None
