"""Turn rows from the question log, feedback, hand-offs and deliveries into the reported figures.

Pure functions over plain rows, so the statistics page, the report and its CSV/XLSX
downloads compute every figure the same way, per ward or in total.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.localtime import VN_TZ
from bot.storage.dashboard_queries import QuestionRow
from knowledge.loader import KnowledgeBase
from knowledge.schema import CATEGORIES

DECISIONS = ("answer", "suggest", "fallback")
SMALLTALK = "smalltalk"  # greetings, thanks...: logged, counted apart, never a question nor unanswered
SENT_STATES = ("sent",)
FAILED_STATES = ("failed", "blocked")


def local_day(value: dt.datetime) -> dt.date:
    return value.astimezone(VN_TZ).date()


@dataclass
class Totals:
    """Figures of one ward (or all wards) over one period."""

    questions: int = 0
    answer: int = 0
    suggest: int = 0
    fallback: int = 0
    smalltalk: int = 0  # not in `questions`: the rates are about questions
    helpful: int = 0
    unhelpful: int = 0
    handoffs_opened: int = 0
    handoffs_answered: int = 0
    median_answer_hours: float | None = None
    subscribers: int = 0
    campaign_sent: int = 0
    campaign_failed: int = 0
    campaign_total: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def rate(self, decision: str) -> float | None:
        return getattr(self, decision) / self.questions if self.questions else None

    @property
    def feedback_ratio(self) -> float | None:
        votes = self.helpful + self.unhelpful
        return self.helpful / votes if votes else None


def totals(questions: Iterable[QuestionRow], feedback: Iterable[tuple], handoffs: Iterable[tuple],
           subscribers: int = 0, deliveries: Iterable[tuple] = ()) -> Totals:
    t = Totals(subscribers=subscribers)
    for q in questions:
        if q.decision in DECISIONS:
            t.questions += 1
            setattr(t, q.decision, getattr(t, q.decision) + 1)
        elif q.decision == SMALLTALK:
            t.smalltalk += 1
    for _at, helpful, _faq, _ward in feedback:
        if helpful:
            t.helpful += 1
        else:
            t.unhelpful += 1
    waits = []
    for opened, answered, _state, _ward in handoffs:
        t.handoffs_opened += 1
        if answered is not None:
            t.handoffs_answered += 1
            waits.append((answered - opened).total_seconds() / 3600)
    t.median_answer_hours = statistics.median(waits) if waits else None
    for state, _ward, n in deliveries:
        t.campaign_total += n
        if state in SENT_STATES:
            t.campaign_sent += n
        elif state in FAILED_STATES:
            t.campaign_failed += n
    return t


def by_ward(questions: Sequence[QuestionRow], feedback: Sequence[tuple], handoffs: Sequence[tuple],
            subscribers: dict[str | None, int], deliveries: Sequence[tuple],
            wards: Iterable[str]) -> dict[str | None, Totals]:
    """Totals per ward slug (None = citizens who never chose a ward); configured wards always listed."""
    groups: dict[str | None, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for q in questions:
        groups[q.ward]["q"].append(q)
    for f in feedback:
        groups[f[3]]["f"].append(f)
    for h in handoffs:
        groups[h[3]]["h"].append(h)
    for d in deliveries:
        groups[d[1]]["d"].append(d)
    keys: list[str | None] = list(wards)
    keys += sorted(k for k in set(groups) | set(subscribers) if k not in keys and k is not None)
    if None in groups or None in subscribers:
        keys.append(None)
    return {k: totals(groups[k]["q"], groups[k]["f"], groups[k]["h"], subscribers.get(k, 0), groups[k]["d"])
            for k in keys}


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def per_day(questions: Iterable[QuestionRow], start: dt.date, end: dt.date) -> list[tuple[dt.date, int]]:
    counts = Counter(local_day(q.created_at) for q in questions if q.decision in DECISIONS)
    return [(day, counts.get(day, 0)) for day in days_between(start, end)]


def time_buckets(start: dt.date, end: dt.date):
    """(buckets, "day"|"week", day -> bucket): days, or weeks from Monday when the period is long."""
    weekly = (end - start).days > 62

    def bucket(day: dt.date) -> dt.date:
        return day - dt.timedelta(days=day.weekday()) if weekly else day

    return sorted({bucket(d) for d in days_between(start, end)}), "week" if weekly else "day", bucket


def rates_over_time(questions: Iterable[QuestionRow], start: dt.date,
                    end: dt.date) -> tuple[list[dt.date], str, dict[str, list[float | None]]]:
    """Daily shares of each decision (weekly when the period is long); None where nothing was asked."""
    buckets, unit, bucket = time_buckets(start, end)
    counts: dict[dt.date, Counter] = defaultdict(Counter)
    for q in questions:
        if q.decision in DECISIONS:
            counts[bucket(local_day(q.created_at))][q.decision] += 1
    series: dict[str, list[float | None]] = {d: [] for d in DECISIONS}
    for b in buckets:
        total = sum(counts[b].values())
        for d in DECISIONS:
            series[d].append(100 * counts[b][d] / total if total else None)
    return buckets, unit, series


def handoffs_over_time(handoffs: Iterable[tuple], start: dt.date,
                       end: dt.date) -> tuple[list[dt.date], str, list[int], list[int]]:
    """Hand-offs opened per day (or week), and team answers given per day among them."""
    buckets, unit, bucket = time_buckets(start, end)
    opened: Counter = Counter()
    answered: Counter = Counter()
    for opened_at, answered_at, _state, _ward in handoffs:
        opened[bucket(local_day(opened_at))] += 1
        if answered_at is not None and start <= local_day(answered_at) <= end:
            answered[bucket(local_day(answered_at))] += 1
    return buckets, unit, [opened[b] for b in buckets], [answered[b] for b in buckets]


def delivery_states(deliveries: Iterable[tuple]) -> Counter:
    """Campaign messages by delivery state, from (state, ward, count) rows."""
    states: Counter = Counter()
    for state, _ward, n in deliveries:
        states[state] += n
    return states


@dataclass
class Topics:
    entries: list[tuple[str, str, int]]  # (id, title, count)
    categories: list[tuple[str, int]]  # (label, count)


def top_topics(questions: Iterable[QuestionRow], kb: KnowledgeBase, limit: int = 10) -> Topics:
    """What citizens got answers about: answered entries and picked suggestions."""
    counts: Counter[str] = Counter()
    for q in questions:
        if q.decision == "answer" and q.faq_id:
            counts[q.faq_id] += 1
        elif q.outcome == "picked" and q.outcome_faq_id:
            counts[q.outcome_faq_id] += 1
    cats: Counter[str] = Counter()
    entries = []
    for faq_id, n in counts.most_common():
        entry = kb.get(faq_id)
        cats[CATEGORIES.get(entry.category, entry.category) if entry else "Khác"] += n
        if len(entries) < limit:
            entries.append((faq_id, entry.title if entry else faq_id, n))
    return Topics(entries, cats.most_common())
