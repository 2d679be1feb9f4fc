"""Keeping knowledge entries fresh: the weekly review digest to admins, the review dates
recorded in the database as `kb validate` reads them, and `kb review|suspend|resume`.

Due dates and the uncertainty rule are in knowledge/freshness.py; recorded reviews and
suspensions are stored by bot/storage/kb_status.py and applied to the served knowledge by
bot/dashboard/overlay.py.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.contracts.messages import Reply
from bot.localtime import VN_TZ, vn_date, vn_today
from bot.settings import Settings
from bot.storage.kb_status import EntryStatus, KbStatusQueries, read_statuses_without_migrating
from bot.storage.urls import parse_database_url
from knowledge.freshness import Freshness, freshness, overdue, source_urls
from knowledge.loader import KnowledgeBase
from knowledge.schema import Entry

if TYPE_CHECKING:  # `kb validate` and `kb review` load this module without the runtime's imports
    from bot.runtime import ServiceRuntime

log = logging.getLogger(__name__)

DIGEST_JOB = "kb-digest"
DIGEST_DISLIKED_DAYS = 7
DIGEST_ITEMS = 10
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):([0-5]\d)$")


def recorded_days(statuses: Mapping[str, EntryStatus]) -> dict[str, dt.date]:
    return {i: vn_date(s.reviewed_at) for i, s in statuses.items() if s.reviewed_at is not None}


# --- the weekly digest -------------------------------------------------------------------------
def digest_period(now: dt.datetime, schedule: str) -> str | None:
    """The scheduled moment (Vietnam time) the digest due at `now` belongs to, as its ISO date;
    None when the digest is off. A digest missed while no process ran is sent late, once."""
    found = SCHEDULE.match(schedule.strip().lower())
    if found is None:
        return None
    day, hour, minute = WEEKDAYS.index(found[1]), int(found[2]), int(found[3])
    local = now.astimezone(VN_TZ)
    moment = (local - dt.timedelta(days=(local.weekday() - day) % 7)).replace(
        hour=hour, minute=minute, second=0, microsecond=0)
    if moment > local:
        moment -= dt.timedelta(days=7)
    return moment.date().isoformat()


@dataclass
class Digest:
    overdue: list[tuple[Entry, Freshness]] = field(default_factory=list)
    disliked: list[tuple[str, str, int]] = field(default_factory=list)  # (id, title, 👎 count)
    days: int = DIGEST_DISLIKED_DAYS

    @property
    def empty(self) -> bool:
        return not self.overdue and not self.disliked

    def text(self, today: dt.date) -> str:
        lines = [f"Bản tin rà soát kho kiến thức, tuần {today.strftime('%d/%m/%Y')}"]
        if self.overdue:
            lines += ["", f"Mục quá hạn rà soát ({len(self.overdue)}):"]
            lines += [f"• {e.title} ({e.id}): quá hạn {-f.days_left} ngày" for e, f in self.overdue[:DIGEST_ITEMS]]
            if len(self.overdue) > DIGEST_ITEMS:
                lines.append(f"… và {len(self.overdue) - DIGEST_ITEMS} mục khác")
        else:
            lines += ["", "Không có mục nào quá hạn rà soát."]
        if self.disliked:
            lines += ["", f"Câu trả lời bị đánh giá 👎 nhiều nhất {self.days} ngày qua:"]
            lines += [f"• {title} ({entry_id}): {n} 👎" for entry_id, title, n in self.disliked]
        lines += ["", "Xem và đánh dấu đã rà soát: Bảng điều khiển → Kho kiến thức → Cần rà soát."]
        return "\n".join(lines)


async def build_digest(kb: KnowledgeBase, queries: KbStatusQueries, now: dt.datetime | None = None) -> Digest:
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(VN_TZ).date()
    recorded = recorded_days(await queries.statuses())
    late = [(kb.by_id[f.entry_id], f) for f in overdue(kb.entries, today, recorded)]
    since = now - dt.timedelta(days=DIGEST_DISLIKED_DAYS)
    disliked = [(i, kb.by_id[i].title if i in kb.by_id else i, n)
                for i, n in await queries.most_disliked(since, DIGEST_ITEMS)]
    return Digest(late, disliked)


async def send_digest_if_due(runtime: ServiceRuntime, now: dt.datetime | None = None) -> bool:
    """Send this week's digest to admins with a Telegram account, once across processes and
    restarts (run from the periodic jobs); True if this call sent it."""
    store = runtime.store
    now = now or dt.datetime.now(dt.UTC)
    period = digest_period(now, runtime.settings.kb_digest_at)
    if period is None:
        return False
    queries = KbStatusQueries(store.sessions)
    if await queries.last_period(DIGEST_JOB) == period or "telegram" not in runtime.channels.adapters:
        return False
    chats = await queries.admin_chats("telegram")
    if not chats:
        return False
    digest = await build_digest(runtime.knowledge.kb, queries, now)
    if not await queries.claim_period(DIGEST_JOB, period):
        return False  # another process sent it
    if digest.empty:  # nothing to act on: no message, but the week counts as done
        return False
    reply = Reply(digest.text(now.astimezone(VN_TZ).date()), kind="notice")
    sent = 0
    for chat in chats:
        try:
            await runtime.channels.send("telegram", chat, reply)
            sent += 1
        except Exception as exc:  # one admin who blocked the bot must not stop the others
            log.warning("knowledge digest not delivered to an admin: %s", type(exc).__name__)
    await queries.audit("jobs", "kb.digest", period, {"overdue": len(digest.overdue),
                                                       "disliked": len(digest.disliked), "sent": sent})
    log.info("knowledge digest for %s sent to %d admin(s)", period, sent)
    return sent > 0


# --- kb validate: recorded reviews ------------------------------------------------------------
def read_recorded_reviews(database_url: str) -> dict[str, dt.date]:
    """Review dates recorded in the database, read without creating or migrating anything: an
    absent SQLite file or table means none."""
    url = parse_database_url(database_url)
    if url.backend == "sqlite" and (url.sqlite_file is None or not Path(url.sqlite_file).expanduser().exists()):
        return {}
    return recorded_days(asyncio.run(read_statuses_without_migrating(database_url)))


def overdue_warnings(kb: KnowledgeBase, settings: Settings, today: dt.date | None = None) -> list[str]:
    """One line per entry past its review date (file date, or a later review in the database)."""
    try:
        recorded = read_recorded_reviews(settings.database_url)
    except Exception as exc:
        print(f"note: review dates recorded in the database were not read ({type(exc).__name__}); "
              "using the files' dates", file=sys.stderr)
        recorded = {}
    return [f"warning: {f.entry_id}: review overdue by {-f.days_left} day(s) (reviewed {f.reviewed}, "
            f"every {f.interval} days, due {f.due}); check it and run `python -m bot kb review {f.entry_id} --by NAME`"
            for f in overdue(kb.entries, today or vn_today(), recorded)]


# --- kb review | suspend | resume -------------------------------------------------------------
def _known_ids(settings: Settings) -> tuple[KnowledgeBase, set[str]]:
    from bot.runtime import load_live_knowledge

    kb = load_live_knowledge(settings).kb
    return kb, set(kb.by_id)


def cmd_kb_review(settings: Settings, args: argparse.Namespace) -> int:
    return _record(settings, args, "review")


def cmd_kb_suspend(settings: Settings, args: argparse.Namespace) -> int:
    return _record(settings, args, "suspend")


def cmd_kb_resume(settings: Settings, args: argparse.Namespace) -> int:
    return _record(settings, args, "resume")


def _record(settings: Settings, args: argparse.Namespace, what: str) -> int:
    from bot.storage.dashboard_queries import DashboardQueries
    from bot.storage.store import open_store

    by = " ".join(args.by.split())[:64]
    if not by:
        print("error: --by must name who did it", file=sys.stderr)
        return 2
    source = getattr(args, "source", None)
    if source is not None and source_urls(source.strip()) != [source.strip()]:
        print(f"error: --source {source!r} must be one http(s) URL", file=sys.stderr)
        return 2
    kb, ids = _known_ids(settings)

    async def run() -> tuple[EntryStatus | None, bool]:
        engine, store = await open_store(settings)
        try:
            local = {r.entry_id for r in await DashboardQueries(store).published_overlays() if r.entry_id}
            if args.id not in ids | local:
                return None, False
            queries = KbStatusQueries(store.sessions)
            if what == "review":
                return await queries.record_review(args.id, by, source.strip() if source else None), True
            return await queries.set_suspended(args.id, by, what == "suspend"), True
        finally:
            await engine.dispose()

    status, found = asyncio.run(run())
    if not found or status is None:
        print(f"error: no knowledge entry {args.id!r}", file=sys.stderr)
        return 1
    if what == "review":
        entry = kb.get(args.id)
        due = f"; next review due {freshness(entry, vn_today(), vn_today()).due}" if entry else ""
        print(f"recorded review of {args.id} by {by}{due}")
    else:
        print(f"{args.id} {'suspended: the bot says it is being updated and offers the team' if what == 'suspend' else 'resumed'}"
              f" (all processes within KB_RELOAD_SECONDS)")
    return 0


def add_parsers(kb_sub: argparse._SubParsersAction) -> None:
    review = kb_sub.add_parser("review", help="record that an entry was checked (who, when, optional new source)")
    review.add_argument("id")
    review.add_argument("--by", required=True, help="who reviewed it (recorded in the audit log)")
    review.add_argument("--source", help="the http(s) URL the facts were checked against")
    review.set_defaults(func=cmd_kb_review)
    for name, func, text in (("suspend", cmd_kb_suspend, "stop giving an entry (its rule changed); the bot "
                                                           "says it is being updated and offers the team"),
                             ("resume", cmd_kb_resume, "give a suspended entry again")):
        parser = kb_sub.add_parser(name, help=text)
        parser.add_argument("id")
        parser.add_argument("--by", required=True, help="who did it (recorded in the audit log)")
        parser.set_defaults(func=func)
