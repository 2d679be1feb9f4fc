#!/usr/bin/env python3
"""Broadcast throughput, 429s, memory and live-reply latency of the campaign engine.

    .venv/bin/python bench/broadcast.py                       # 100,000 recipients, time-scaled x10
    .venv/bin/python bench/broadcast.py --recipients 3000     # a quick run
    .venv/bin/python bench/broadcast.py --real --seconds 120  # Telegram's real rates for 2 minutes
    BENCH_DATABASE_URL=postgresql+asyncpg://... bench/broadcast.py --backend postgres
                                                  # (PostgreSQL only when it is set: its schema is dropped)

The fake Bot API (tests/fakes/telegram_api.py) runs in a child process so its work and memory
are not ours. It enforces Telegram's limits (about 30 messages/s overall, 1 per second per
chat with short bursts, 429 + retry_after when exceeded) and a few percent of the recipients
have blocked the bot (403). This process runs the real service pieces (PTB Application,
storage, conversation, campaign engine) with TELEGRAM_RATE_PER_SECOND = 25, seeds the
subscribers, sends one campaign and, while it runs, a citizen asks a question every half
second (reply latency is measured by the fake: from the update being queued to the answer
arriving).

Time-scaled mode (default, --scale 10): the fake's limits and our rate are both multiplied,
so 100,000 messages take minutes, not hours; retry_after stays in whole real seconds (the
Bot API's unit), which only makes a 429 costlier. --real uses the real rates and sends for
--seconds, then cancels the campaign.

tracemalloc (on with --real, else --tracemalloc) roughly halves Python's speed, which only the
real-rate run can spare. Reported per sender: sustained sends/s (API sends answered 200 or 403, first to last) as a
fraction of the configured 25/s (scaled; live replies sent meanwhile count too: the limit is the bot's),
429s received, peak tracemalloc and peak RSS during
the broadcast (RSS also at 10/50/90 % of the recipients, to show it stays flat), and p50/p99
latency of the citizens' answers. Baselines in the same run, on the same fake, at a smaller
size: a naive unpaced sender (asyncio.gather, retry after sleeping retry_after) and PTB's
AIORateLimiter with its defaults (max_retries=0, so the sender retries a re-raised 429 itself).
Targets (ours): >= 95 % of the limit, at most one 429, p99 latency < 1 s. Exit code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "123456:BENCH-token"
RATE = 25.0  # TELEGRAM_RATE_PER_SECOND, the configured limit
FAKE_RATE = 30  # what the fake Bot API enforces
CITIZENS = range(1, 51)  # chats that ask questions (not subscribers)
FIRST_SUBSCRIBER = 1_000_000
BLOCKED_EVERY = 33  # ~3 % of the recipients blocked the bot
QUESTIONS = ("quên mật khẩu vneid", "làm căn cước cho con", "cách nộp hồ sơ trực tuyến",
             "bị lừa đảo qua điện thoại thì làm gì")
ASK_EVERY = 0.5


# ----------------------------------------------------------------------------- the fake (child)

async def serve_fake(args: argparse.Namespace) -> None:
    """Child process: the fake Bot API plus a small control API for the parent."""
    from aiohttp import web

    from tests.fakes.telegram_api import FakeTelegram

    fake = FakeTelegram(token=TOKEN, max_long_poll=10.0)
    await fake.start()
    for uid in CITIZENS:
        fake.add_private_chat(uid, first_name=f"Dân {uid}")
    for i in range(args.chats):
        uid = FIRST_SUBSCRIBER + i
        fake.add_private_chat(uid, first_name="Dân")
        if i % BLOCKED_EVERY == BLOCKED_EVERY - 1:
            fake.block(uid)
    fake.enforce_rate_limit(global_per_second=int(FAKE_RATE * args.scale), per_chat_per_second=args.scale, burst=3)
    citizens = set(CITIZENS)
    phase: dict = {}
    asked: dict[int, float] = {}

    def reset() -> None:
        phase.update(times=[], live=[], n429=0, n403=0, latencies=[])
        asked.clear()

    async def harvest() -> None:
        """Fold the fake's records into counters and drop them (memory stays bounded)."""
        while True:
            await asyncio.sleep(0.05)
            requests, fake.requests[:] = list(fake.requests), []
            fake.sent.clear()
            for request in requests:
                if not request.method.startswith("send") or request.method == "sendChatAction":
                    continue
                chat = request.params.get("chat_id")
                if request.status == 429:
                    phase["n429"] += 1
                elif chat in citizens:
                    if request.status == 200:
                        phase["live"].append(request.time)
                        if chat in asked:
                            phase["latencies"].append(request.time - asked.pop(chat))
                elif request.status in (200, 403):
                    phase["times"].append(request.time)
                    phase["n403"] += request.status == 403
            for key in [k for k in fake._messages if k[0] not in citizens]:  # noqa: SLF001 - bench only
                del fake._messages[key]  # noqa: SLF001

    async def ask(request: web.Request) -> web.Response:
        body = await request.json()
        asked[body["chat"]] = time.time()
        fake.user_sends_text(body["chat"], body["text"])
        return web.json_response({"ok": True})

    async def stats(_request: web.Request) -> web.Response:
        times = sorted(phase["times"])
        window = 0
        j = 0
        for i, t in enumerate(times):  # most sends in any one second
            while times[j] <= t - 1.0:
                j += 1
            window = max(window, i - j + 1)
        live = sum(1 for t in phase["live"] if times and times[0] <= t <= times[-1])
        return web.json_response({"sends": len(times), "first": times[0] if times else None,
                                  "last": times[-1] if times else None, "live": live, "n429": phase["n429"],
                                  "n403": phase["n403"], "latencies": phase["latencies"], "max_per_second": window})

    async def mark(_request: web.Request) -> web.Response:
        reset()
        return web.json_response({"ok": True})

    reset()
    app = web.Application()
    app.router.add_post("/ask", ask)
    app.router.add_get("/stats", stats)
    app.router.add_post("/mark", mark)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    task = asyncio.create_task(harvest())
    print(f"READY {fake.port} {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes it
    task.cancel()
    await fake.stop()


# ----------------------------------------------------------------------------- measuring (parent)

def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Control:
    def __init__(self, url: str):
        import aiohttp

        self.url = url
        self.http = aiohttp.ClientSession()

    async def post(self, path: str, body: dict | None = None) -> dict:
        async with self.http.post(self.url + path, json=body or {}) as resp:
            return await resp.json()

    async def stats(self) -> dict:
        async with self.http.get(self.url + "/stats") as resp:
            return await resp.json()


async def asking(control: Control, stop: asyncio.Event) -> None:
    """A citizen asks a question every ASK_EVERY seconds (each chat rests a while between)."""
    n = 0
    while not stop.is_set():
        await control.post("/ask", {"chat": CITIZENS[n % len(CITIZENS)], "text": QUESTIONS[n % len(QUESTIONS)]})
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ASK_EVERY)


class Sampler:
    """Peak RSS and tracemalloc during a phase, and RSS at a few points of progress."""

    def __init__(self, trace: bool):
        self.trace = trace
        self.peak_rss = 0.0
        self.points: dict[int, float] = {}

    def start(self) -> None:
        self.peak_rss = rss_mb()
        if self.trace:
            tracemalloc.reset_peak()

    def sample(self, fraction: float | None = None) -> None:
        rss = rss_mb()
        self.peak_rss = max(self.peak_rss, rss)
        if fraction is not None:
            for point in (10, 50, 90):
                if fraction * 100 >= point and point not in self.points:
                    self.points[point] = rss

    @property
    def peak_traced_mb(self) -> float | None:
        return tracemalloc.get_traced_memory()[1] / 2**20 if self.trace else None


def figures(name: str, recipients: int, stats: dict, sampler: Sampler, limit: float, elapsed: float) -> dict:
    span = (stats["last"] - stats["first"]) if stats["sends"] > 1 else 0.0
    rate = (stats["sends"] - 1) / span if span > 0 else 0.0
    total = rate + (stats["live"] / span if span > 0 else 0.0)  # the limit is the bot's, replies included
    lat = sorted(stats["latencies"])
    return {
        "sender": name, "recipients": recipients, "seconds": elapsed, "sends": stats["sends"],
        "rate": rate, "total": total, "of_limit": total / limit, "max_per_second": stats["max_per_second"],
        "n429": stats["n429"],
        "n403": stats["n403"], "traced_mb": sampler.peak_traced_mb, "rss_mb": sampler.peak_rss,
        "rss_points": sampler.points, "questions": len(lat),
        "p50": statistics.median(lat) if lat else None,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
    }


# ----------------------------------------------------------------------------- one backend

async def reset_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    if not url.startswith("postgresql"):
        return
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def seed(store, count: int) -> None:
    """Subscribers in bulk (as years of /dangky would leave them)."""
    from sqlalchemy import insert, select

    from bot.storage.models import Subscription, User, utcnow

    now = utcnow()
    chunk = 5000
    for start in range(0, count, chunk):
        ids = [FIRST_SUBSCRIBER + i for i in range(start, min(count, start + chunk))]
        async with store.sessions.begin() as s:
            await s.execute(insert(User), [
                {"channel": "telegram", "platform_id": str(uid), "user_key": store.users.key_for("telegram", uid),
                 "active": True, "fallback_streak": 0, "state": "", "created_at": now, "last_inbound_at": now}
                for uid in ids])
            user_ids = (await s.scalars(select(User.id).where(
                User.channel == "telegram", User.platform_id.in_([str(u) for u in ids])))).all()
            await s.execute(insert(Subscription), [
                {"user_id": uid, "ward": "phuong-a", "topics": [], "active": True, "created_at": now,
                 "updated_at": now} for uid in user_ids])


async def run_ours(runtime, control: Control, args, limit: float, sampler: Sampler) -> dict:
    from bot.campaigns.service import CampaignDraft

    svc = runtime.campaigns
    await control.post("/mark")
    sampler.start()
    campaign = await svc.create(CampaignDraft(
        title="Tuần lễ chuyển đổi số", created_by="bench",
        text="Mời bà con đến nhà văn hóa để được hướng dẫn cài đặt và dùng VNeID."))
    stop, asked = asyncio.Event(), asyncio.Event()
    runner = runtime.campaign_runner
    runner.scheduler.poll_seconds = 0.2
    sender = asyncio.create_task(runner.run(stop))
    questions = asyncio.create_task(asking(control, asked))
    started = time.monotonic()
    total = args.recipients
    while True:
        await asyncio.sleep(0.5)
        counts = await svc.delivery_counts(campaign.id)
        done = total - counts["pending"] - counts["sending"]
        sampler.sample(done / total if total else 1.0)
        elapsed = time.monotonic() - started
        state = (await svc.get(campaign.id)).state
        if state == "done" or (args.real and elapsed >= args.seconds):
            break
        if args.progress:
            print(f"  ... {done}/{total} in {elapsed:.0f}s, RSS {rss_mb():.0f} MB", file=sys.stderr)
    if state != "done":
        await svc.cancel(campaign.id, "bench")
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)  # answers still on their way
    asked.set()
    stop.set()
    await asyncio.gather(sender, questions)
    counts = await svc.delivery_counts(campaign.id)
    reached = sum(counts[s] for s in ("sent", "blocked", "failed", "uncertain"))
    result = figures("ours (paced engine)", reached, await control.stats(), sampler, limit, elapsed)
    result["deliveries"] = counts
    return result


async def run_baseline(kind: str, runtime, control: Control, fake_url: str, chats: list[int], limit: float,
                       scale: float, sampler: Sampler) -> dict:
    """A naive sender on its own Bot object, while our runtime keeps answering citizens."""
    from telegram import Bot
    from telegram.error import Forbidden, RetryAfter, TelegramError
    from telegram.ext import AIORateLimiter, ExtBot
    from telegram.request import HTTPXRequest

    from bot.channels.telegram import retry_after_seconds

    request = HTTPXRequest(connection_pool_size=256)
    base = {"base_url": f"{fake_url}/bot", "request": request}
    if kind == "gather":
        bot, name = Bot(TOKEN, **base), "naive asyncio.gather"
    else:  # AIORateLimiter's defaults, only its overall rate follows the time scale
        limiter = AIORateLimiter(overall_max_rate=FAKE_RATE * scale) if scale != 1 else AIORateLimiter()
        bot, name = ExtBot(TOKEN, rate_limiter=limiter, **base), "AIORateLimiter defaults"
    await control.post("/mark")
    sampler.start()
    stop = asyncio.Event()
    questions = asyncio.create_task(asking(control, stop))
    semaphore = asyncio.Semaphore(256)
    text = "Mời bà con đến nhà văn hóa để được hướng dẫn cài đặt và dùng VNeID."

    async def one(chat: int) -> None:
        async with semaphore:
            for _ in range(10):
                try:
                    await bot.send_message(chat, text)
                    return
                except RetryAfter as exc:  # what most hand-written senders do
                    await asyncio.sleep(retry_after_seconds(exc))
                except Forbidden:
                    return
                except TelegramError:
                    await asyncio.sleep(1.0)

    async with bot:
        started = time.monotonic()
        sending = asyncio.ensure_future(asyncio.gather(*(one(c) for c in chats)))  # all tasks at once
        while not sending.done():
            await asyncio.sleep(0.2)
            sampler.sample()
        await sending
        elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)
    stop.set()
    await questions
    return figures(name, len(chats), await control.stats(), sampler, limit, elapsed)


async def bench_backend(backend: str, url: str, args, fake_url: str, control: Control) -> list[dict]:
    import logging

    from bot.runtime import Runtime, open_store
    from bot.settings import load_settings

    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)  # logs each re-raised 429
    await reset_database(url)
    limit = RATE * args.scale
    settings = load_settings(
        _env_file=None, database_url=url, telegram_bot_token=TOKEN, telegram_api_base_url=fake_url,
        telegram_rate_per_second=limit, user_key_secret="bench", campaign_approval_threshold=10**9,
        flood_limit_per_minute=1000, wards="phuong-a:Phường A", log_level="ERROR")
    engine, store = await open_store(settings)
    seeded = time.monotonic()
    await seed(store, args.recipients)
    await engine.dispose()
    print(f"[{backend}] seeded {args.recipients} subscribers in {time.monotonic() - seeded:.0f}s", file=sys.stderr)
    runtime = await Runtime.open(settings)
    await runtime.start_channels()
    runtime.telegram.pacer.per_chat_interval = 1.0 / args.scale
    results = []
    try:
        results.append(await run_ours(runtime, control, args, limit, Sampler(args.tracemalloc)))
        chats = [FIRST_SUBSCRIBER + i for i in range(min(args.baseline_recipients, args.recipients))]
        for kind in ("gather", "aiolimiter"):
            results.append(await run_baseline(kind, runtime, control, fake_url, chats, limit, args.scale,
                                              Sampler(args.tracemalloc)))
    finally:
        await runtime.close()
    for r in results:
        r["backend"] = backend
    return results


# ----------------------------------------------------------------------------- report

def report(results: list[dict], args) -> None:
    mode = f"real rates, {args.seconds:.0f}s" if args.real else f"time-scaled x{args.scale:g}"
    limit = RATE * args.scale
    print(f"\nBroadcast benchmark ({mode}): configured {limit:g}/s, fake Bot API enforces "
          f"{FAKE_RATE * args.scale:g}/s overall and {args.scale:g}/s per chat; ~{100 / BLOCKED_EVERY:.0f}% blocked")
    head = (f"{'backend':9} {'sender':24} {'recipients':>10} {'secs':>7} {'bcast/s':>8} {'all/s':>6} {'of limit':>8} "
            f"{'max/1s':>6} {'429s':>5} {'403s':>5} {'traced MB':>9} {'RSS MB':>7} {'asks':>5} {'p50 s':>6} {'p99 s':>6}")
    print(head)
    print("-" * len(head))
    for r in results:
        traced = f"{r['traced_mb']:.1f}" if r["traced_mb"] is not None else "-"
        p50 = f"{r['p50']:.3f}" if r["p50"] is not None else "-"
        p99 = f"{r['p99']:.3f}" if r["p99"] is not None else "-"
        print(f"{r['backend']:9} {r['sender']:24} {r['recipients']:>10} {r['seconds']:>7.1f} {r['rate']:>8.1f} "
              f"{r['total']:>6.1f} {r['of_limit']:>8.1%} {r['max_per_second']:>6} {r['n429']:>5} {r['n403']:>5} {traced:>9} "
              f"{r['rss_mb']:>7.0f} {r['questions']:>5} {p50:>6} {p99:>6}")
    print("bcast/s: broadcast sends (200 or 403) first to last; all/s: plus the live replies in that time;\n"
          "of limit: all/s over the configured rate; max/1s: most broadcast sends in one second.\n")
    for r in results:
        if r["sender"].startswith("ours"):
            points = ", ".join(f"{k}%: {v:.0f} MB" for k, v in sorted(r["rss_points"].items()))
            print(f"[{r['backend']}] ours: deliveries {json.dumps(r['deliveries'])}; RSS by progress: {points}")
            checks = [("throughput >= 95% of the limit", r["of_limit"] >= 0.95),
                      ("at most one 429", r["n429"] <= 1),
                      ("citizen answers p99 < 1 s", r["p99"] is not None and r["p99"] < 1.0)]
            for what, ok in checks:
                print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    print(f"\nmachine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; tracemalloc "
          f"{'on (slows Python)' if args.tracemalloc else 'off (--tracemalloc to trace allocations)'}")


SELF = Path(__file__).resolve()


async def main(args: argparse.Namespace) -> None:
    chats = args.recipients
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(SELF), "--serve-fake", "--chats", str(chats),
        "--scale", str(args.scale), cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = (await asyncio.wait_for(child.stdout.readline(), 600)).decode().split()
    if not line or line[0] != "READY":
        raise SystemExit("the fake Bot API did not start")
    fake_url, control = f"http://127.0.0.1:{line[1]}", Control(f"http://127.0.0.1:{line[2]}")
    if args.tracemalloc:
        tracemalloc.start()
    results: list[dict] = []
    try:
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        for backend in backends:
            if backend == "sqlite":
                folder = tempfile.mkdtemp(prefix="bench-broadcast-")
                url = f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
            else:
                url = os.environ.get("BENCH_DATABASE_URL", "")
                if not url:  # its schema is dropped and rebuilt: never a database by default
                    print("[postgres] skipped: set BENCH_DATABASE_URL (its public schema is dropped)",
                          flush=True)
                    continue
            results += await bench_backend(backend, url, args, fake_url, control)
    finally:
        await control.http.close()
        child.stdin.close()
        await child.wait()
    report(results, args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--scale", type=float, default=10.0, help="time scale of every rate (default 10)")
    parser.add_argument("--real", action="store_true", help="real rates (scale 1), sending for --seconds")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--baseline-recipients", type=int, default=None,
                        help="size of the naive baselines (default: 1/20 of --recipients, at most 5,000)")
    parser.add_argument("--tracemalloc", action=argparse.BooleanOptionalAction, default=None,
                        help="trace Python allocations (default: with --real only; it slows Python ~2x, "
                             "which a time-scaled run cannot afford)")
    parser.add_argument("--progress", action="store_true", help="print progress to stderr")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--chats", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.real:
        args.scale = 1.0
    if args.tracemalloc is None:
        args.tracemalloc = args.real
    if args.baseline_recipients is None:
        args.baseline_recipients = min(5000, max(200, args.recipients // 20))
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_fake:
        asyncio.run(serve_fake(arguments))
    else:
        from bot.service import loop_factory
        from bot.settings import load_settings

        # The service's own event loop (uvloop where installed), as `python -m bot` runs it.
        with asyncio.Runner(loop_factory=loop_factory(load_settings(_env_file=None))) as runner:
            runner.run(main(arguments))
