#!/usr/bin/env python3
"""Load test: Telegram webhook updates at rising rates into ONE `python -m bot` process.

    .venv/bin/python bench/load.py [--rates 50,100,200,400,600,800] [--seconds 5]
                                   [--targets echo,ask,sqlite,postgres] [--profile DIR]

Three processes, so that each one's CPU can be read on its own: this one (the load
generator), the fake Bot API (tests/fakes/telegram_api.py, a child process with a small
control API for preparing updates and reading what was sent) and the target, a
`python -m bot` in webhook mode with TELEGRAM_API_BASE_URL pointing at the fake.
Each update is a citizen question generated from the knowledge base's own question variants
in the styles citizens type (no diacritics, abbreviations, typos, politeness filler) plus
out-of-scope chatter (bench/latency.py `make_queries`; the dev set is excluded). Every user
sends one question per stage, so the first message the fake receives for a chat is the reply.

Measured per rate: time from starting the POST to the fake receiving the reply (p50/p99/max),
the rate the generator really achieved, the backlog (questions still unanswered one second
after the last POST), CPU time per update of the target, of the fake and of the generator
(from /proc and getrusage), and the 1-minute load average of the machine at the end of the
stage. 1000 / (target CPU ms per update) is the most one core can do, whatever the
machine's other load. A rate is sustainable when p99 < 200 ms, the generator kept up
and there was no backlog. The same rates also run against two baselines in the same run:
  echo  - a minimal aiohttp webhook that sends the text back (HTTP in + one sendMessage out:
          the floor set by this machine, the generator and the fake)
  ask   - POST /api/ask of the bot (matching only: no storage, no Telegram), time to response
Targets: sqlite (a temporary file) and postgres (BENCH_DATABASE_URL, else TEST_DATABASE_URL;
skipped when neither is set; its tables are migrated, nothing is dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

THIS_FILE = Path(__file__).resolve()
ROOT = THIS_FILE.parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

TOKEN = "123456:LOAD-token"
SECRET = "load-bench-secret"
P99_TARGET_MS = 200.0
DEV_SET_PLACES = [ROOT.parent / "shared" / "kb" / "dev-questions.jsonl",
                  ROOT.parent.parent / "shared" / "kb" / "dev-questions.jsonl"]


# --- questions ----------------------------------------------------------------------------------


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return " ".join("".join(c for c in folded if not unicodedata.combining(c) and (c.isalnum() or c == " ")).split())


def make_questions(count: int, seed: int = 7) -> list[str]:
    """Generated citizen questions; none equal to a dev-set question (even after folding)."""
    from bench.latency import make_queries
    from knowledge.loader import load_knowledge_base

    kb = load_knowledge_base(ROOT / "knowledge")
    dev: set[str] = set()
    for place in DEV_SET_PLACES:
        if place.exists():
            dev = {_key(json.loads(line)["text"]) for line in place.read_text(encoding="utf-8").splitlines()
                   if line.strip()}
            break
    questions = [q for q in make_queries(kb, count * 2, seed) if _key(q) not in dev]
    return questions[:count]


# --- child processes: the fake Bot API and the echo baseline ------------------------------------


def run_fake_server(port: int, control_port: int) -> None:
    """The fake Bot API on `port`; on `control_port` the generator prepares updates (so the
    fake knows the chats it will be asked to answer) and reads when each chat got its reply."""
    from tests.fakes.telegram_api import FakeTelegram

    async def main() -> None:
        first_update = int(time.time() * 1000)  # unique update ids: a reused database remembers old ones
        async with FakeTelegram(token=TOKEN, port=port, local_mode=True, first_update_id=first_update) as fake:

            async def prepare(request: web.Request) -> web.Response:
                items = await request.json()
                return web.json_response([fake.user_sends_text(user, text, queue=False) for user, text in items])

            async def clear(_request: web.Request) -> web.Response:
                fake.clear_records()
                return web.json_response({})

            async def replies(_request: web.Request) -> web.Response:
                first: dict[int, float] = {}
                for sent in fake.sent:
                    first.setdefault(sent.chat_id, sent.time)
                errors = fake.stats["errors"]
                return web.json_response({"first": first, "errors": errors})

            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/prepare", prepare)
            app.router.add_post("/clear", clear)
            app.router.add_get("/replies", replies)
            await serve_forever(app, control_port)

    asyncio.run(main())


def run_echo_server(port: int, api_url: str) -> None:
    """A webhook that only echoes: acknowledge, then one sendMessage (like the bot's shape)."""

    async def main() -> None:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        tasks: set[asyncio.Task] = set()

        async def reply(chat_id: int, text: str) -> None:
            async with http.post(f"{api_url}/bot{TOKEN}/sendMessage", json={"chat_id": chat_id, "text": text}) as r:
                await r.read()

        async def hook(request: web.Request) -> web.Response:
            update = await request.json()
            message = update["message"]
            task = asyncio.create_task(reply(message["chat"]["id"], message["text"]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return web.Response(text="ok")

        async def health(_request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_get("/healthz", health)
        await serve_forever(app, port)

    # The same event loop as the bot (`python -m bot` takes uvloop where installed), so the
    # floor it sets is comparable.
    with asyncio.Runner(loop_factory=_bot_loop_factory()) as runner:
        runner.run(main())


def _bot_loop_factory():
    from bot.service import loop_factory
    from bot.settings import load_settings

    return loop_factory(load_settings(_env_file=None))


async def serve_forever(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


class Fake:
    """The fake Bot API process, seen from the generator."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, control_port: int):
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.control = f"http://127.0.0.1:{control_port}"

    async def prepare(self, http: aiohttp.ClientSession, items: list[tuple[int, str]]) -> list[dict]:
        async with http.post(f"{self.control}/prepare", json=items) as resp:
            return await resp.json()

    async def clear(self, http: aiohttp.ClientSession) -> None:
        async with http.post(f"{self.control}/clear") as resp:
            await resp.read()

    async def replies(self, http: aiohttp.ClientSession) -> tuple[dict[int, float], int]:
        """chat id -> when the fake received the first message to it; and the error count."""
        async with http.get(f"{self.control}/replies") as resp:
            body = await resp.json()
        return {int(chat): at for chat, at in body["first"].items()}, body["errors"]


# --- one stage ----------------------------------------------------------------------------------


@dataclass
class Stage:
    target: str
    rate: int
    offered: int
    achieved_rate: float
    answered: int
    backlog: int
    latencies_ms: list[float]
    target_cpu_ms: float = float("nan")  # CPU the target process used per update
    fake_cpu_ms: float = float("nan")  # CPU of the fake Bot API process per update
    bench_cpu_ms: float = float("nan")  # CPU of this process (the generator) per update
    load: float = float("nan")  # 1-minute load average at the end of the stage

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def sustainable(self) -> bool:
        return (self.backlog == 0 and self.answered == self.offered and self.pct(0.99) < P99_TARGET_MS
                and self.achieved_rate >= 0.95 * self.rate)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_stage(target: str, url: str, rate: int, seconds: float, fake: Fake, questions: list[str],
                    first_user: int, http: aiohttp.ClientSession) -> Stage:
    """Offer `rate` updates/s for `seconds` (open loop: a slow server does not slow the offer)."""
    total = int(rate * seconds)
    items = [(first_user + i, questions[i % len(questions)]) for i in range(total)]
    updates = await fake.prepare(http, items) if target != "ask" else []
    posted: dict[int, float] = {}
    done_at: dict[int, float] = {}
    errors = 0
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def post(i: int) -> None:
        nonlocal errors
        user, text = items[i]
        try:
            if target == "ask":
                posted[user] = time.time()
                async with http.post(url, json={"text": text, "user": str(user)}) as resp:
                    await resp.read()
                    ok = resp.status == 200
                done_at[user] = time.time()
            else:
                body = json.dumps(updates[i]).encode()
                posted[user] = time.time()
                async with http.post(url, data=body, headers={**headers, "Content-Type": "application/json"}) as resp:
                    await resp.read()
                    ok = resp.status == 200
        except aiohttp.ClientError:
            ok = False
        if not ok:
            errors += 1

    loop = asyncio.get_running_loop()
    tasks = []
    start = loop.time()
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(i)))
    offer_seconds = loop.time() - start
    await asyncio.gather(*tasks)
    if target != "ask":  # wait for the replies, then read their arrival times
        replied: dict[int, float] = {}
        deadline = time.time() + 1.0
        while time.time() < deadline + 5.0:  # stragglers get a few more seconds, to count them correctly
            replied, api_errors = await fake.replies(http)
            if sum(1 for user in posted if user in replied) >= total:
                break
            await asyncio.sleep(0.1)
        backlog_cut = max(posted.values(), default=time.time()) + 1.0
        done_at = {user: replied[user] for user in posted if user in replied}
        backlog = sum(1 for user in posted if done_at.get(user, float("inf")) > backlog_cut)
        if api_errors:
            print(f"  {target}: the fake Bot API answered {api_errors} requests with an error", flush=True)
    else:
        backlog = total - len(done_at)
    latencies = [(done_at[u] - posted[u]) * 1000 for u in posted if u in done_at]
    if errors:
        print(f"  {target}: {errors} POSTs failed at {rate}/s", flush=True)
    return Stage(target, rate, total, (total - 1) / max(offer_seconds, 1e-9), len(done_at), backlog, latencies)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process (this one when pid is None), all its threads."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- targets ------------------------------------------------------------------------------------


async def wait_ready(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as resp:
                    if resp.status == 200 and (not url.endswith("/healthz")
                                               or (await resp.json()).get("status") == "ok"):
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready; log:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


PROFILE_DIR: Path | None = None  # --profile: run bot targets under cProfile, stats saved there


async def spawn(cmd: list[str], env: dict, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=log.open("wb"), stdin=asyncio.subprocess.DEVNULL)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 30)
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def start_fake(workdir: Path) -> tuple[Fake, Path]:
    port, control = free_port(), free_port()
    log = workdir / "fake.log"
    proc = await spawn([sys.executable, str(THIS_FILE), "--fake-server", str(port), str(control)],
                       dict(os.environ), log)
    fake = Fake(proc, port, control)
    await wait_ready(f"{fake.control}/replies", proc, log)
    return fake, log


async def start_target(target: str, fake: Fake, workdir: Path) -> tuple[asyncio.subprocess.Process, str, Path]:
    port = free_port()
    log = workdir / f"{target}.log"
    if target == "echo":
        cmd = [sys.executable, str(THIS_FILE), "--echo-server", str(port), fake.url]
        env = dict(os.environ)
    else:
        database = (f"sqlite+aiosqlite:///{workdir}/load.sqlite3" if target in ("sqlite", "ask")
                    else postgres_url())
        cmd = [sys.executable, "-m", "bot"]
        if PROFILE_DIR is not None:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(PROFILE_DIR / f"{target}.prof"), "-m", "bot"]
        env = {**os.environ, "DATABASE_URL": database, "USER_KEY_SECRET": "load-bench", "WEB_PORT": str(port),
               "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.url,
               "TELEGRAM_WEBHOOK_URL": "http://127.0.0.1:9", "TELEGRAM_WEBHOOK_SECRET": SECRET,
               "LOG_LEVEL": "WARNING", "ENV_FILE": "",
               # The process's capacity is measured here, not Telegram's limit: replies are
               # paced at TELEGRAM_RATE_PER_SECOND (default 25/s) since they share the rate.
               "TELEGRAM_RATE_PER_SECOND": os.environ.get("TELEGRAM_RATE_PER_SECOND", "1000")}
        if target == "ask":  # one address sends everything: lift /api/ask's per-address limit
            env["FLOOD_LIMIT_PER_MINUTE"] = "10000000"
    proc = await spawn(cmd, env, log)
    await wait_ready(f"http://127.0.0.1:{port}/healthz", proc, log)
    if target == "echo":
        url = f"http://127.0.0.1:{port}/hook"
    elif target == "ask":
        url = f"http://127.0.0.1:{port}/api/ask"
    else:
        from bot.channels.telegram import webhook_path

        url = f"http://127.0.0.1:{port}{webhook_path(TOKEN)}"
    return proc, url, log


def postgres_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL", "")


async def bench(targets: list[str], rates: list[int], seconds: float) -> list[Stage]:
    questions = make_questions(5000)
    results: list[Stage] = []
    user_base = 10_000_000
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        fake, fake_log = await start_fake(Path(tmp))
        try:
            for target in targets:
                if target == "postgres" and not postgres_url():
                    print("  postgres: skipped (set BENCH_DATABASE_URL or TEST_DATABASE_URL)", flush=True)
                    continue
                proc, url, log = await start_target(target, fake, Path(tmp))
                connector = aiohttp.TCPConnector(limit=512)
                try:
                    async with aiohttp.ClientSession(connector=connector) as http:
                        for rate in rates:
                            await fake.clear(http)
                            cpu = cpu_seconds(proc.pid), cpu_seconds(fake.proc.pid), cpu_seconds()
                            stage = await run_stage(target, url, rate, seconds, fake, questions, user_base, http)
                            stage.target_cpu_ms = (cpu_seconds(proc.pid) - cpu[0]) * 1000 / stage.offered
                            stage.fake_cpu_ms = (cpu_seconds(fake.proc.pid) - cpu[1]) * 1000 / stage.offered
                            stage.bench_cpu_ms = (cpu_seconds() - cpu[2]) * 1000 / stage.offered
                            stage.load = os.getloadavg()[0]
                            user_base += rate * int(seconds + 1)
                            results.append(stage)
                            print_row(stage, flush=True)
                            if stage.backlog > stage.offered // 10 or stage.pct(0.99) > 10 * P99_TARGET_MS:
                                print(f"  {target}: overloaded at {rate}/s, higher rates skipped", flush=True)
                                break
                            await asyncio.sleep(1.0)  # let the target settle between stages
                finally:
                    await stop(proc)
                problems = [line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line]
                if problems:
                    print(f"  {target}: {len(problems)} tracebacks in its log ({log})", flush=True)
        finally:
            await stop(fake.proc)
        if "Traceback" in fake_log.read_text(errors="replace"):
            print(f"  the fake Bot API logged a traceback:\n{_tail(fake_log)}", flush=True)
    return results


HEADER = (f"{'target':<9}{'rate/s':>7}{'sent/s':>8}{'answered':>11}{'backlog':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'max ms':>8}{'cpu ms/upd':>11}{'fake ms':>8}{'gen ms':>7}{'load':>6}  ok")


def print_row(s: Stage, flush: bool = False) -> None:
    worst = max(s.latencies_ms) if s.latencies_ms else float("nan")
    print(f"{s.target:<9}{s.rate:>7}{s.achieved_rate:>8.0f}{s.answered:>6}/{s.offered:<5}{s.backlog:>7}"
          f"{s.pct(0.5):>8.1f}{s.pct(0.99):>8.1f}{worst:>8.0f}{s.target_cpu_ms:>11.2f}{s.fake_cpu_ms:>8.2f}"
          f"{s.bench_cpu_ms:>7.2f}{s.load:>6.1f}  {'yes' if s.sustainable else 'NO'}", flush=flush)


def summary(results: list[Stage]) -> None:
    print("\nSustainable rate (p99 < 200 ms, no backlog, generator kept up) and the limit found:")
    for target in dict.fromkeys(s.target for s in results):
        stages = [s for s in results if s.target == target]
        good = [s.rate for s in stages if s.sustainable]
        bad = [s for s in stages if not s.sustainable]
        limit = (f"first failing rate {bad[0].rate}/s (p99 {bad[0].pct(0.99):.0f} ms, backlog {bad[0].backlog})"
                 if bad else "no limit reached at the rates tried")
        best = max(good) if good else 0
        busiest = stages[-1]  # fixed costs (idle work, smaller write groups) weigh least here
        print(f"  {target:<9} sustainable {best:>4}/s; {limit}; CPU {busiest.target_cpu_ms:.2f} ms/update "
              f"at {busiest.rate}/s = at most {1000 / busiest.target_cpu_ms:.0f}/s on one core")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,100,200,400,600,800")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each stage")
    parser.add_argument("--targets", default="echo,ask,sqlite,postgres")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="profile the bot (cProfile) into DIR")
    parser.add_argument("--echo-server", nargs=2, metavar=("PORT", "API_URL"), help=argparse.SUPPRESS)
    parser.add_argument("--fake-server", nargs=2, type=int, metavar=("PORT", "CONTROL_PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:
        run_echo_server(int(args.echo_server[0]), args.echo_server[1])
        return 0
    if args.fake_server:
        run_fake_server(*args.fake_server)
        return 0
    global PROFILE_DIR
    PROFILE_DIR = args.profile
    rates = [int(r) for r in args.rates.split(",")]
    targets = args.targets.split(",")
    print(f"one process per target, {args.seconds:g} s per rate, {os.cpu_count()} CPU cores shared by the "
          f"generator (this process), the fake Bot API (another) and the target\n")
    print(HEADER)
    results = asyncio.run(bench(targets, rates, args.seconds))
    summary(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
