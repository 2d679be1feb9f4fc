"""Two real bot processes on one PostgreSQL database behave as one bot: every update is
answered once, the campaign goes out once at the configured global rate, and periodic jobs
(reminders, auto-close, purge) run once. Only what the fake Bot API receives is judged."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import func, select, update

from bot.channels.telegram import webhook_path
from bot.contracts import texts
from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.models import Handoff, QuestionLog, utcnow
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram_harness import TOKEN
from tests.test_campaign_process import ROOT, cli, free_port
from tests.test_ops import start_service, wait_health

SECRET = "scale-out-secret"
RATE = 25  # TELEGRAM_RATE_PER_SECOND: for the whole bot, however many processes
TEAM = -100500


def needs_postgres(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("scale-out needs PostgreSQL (several processes on one database)")


async def test_processes_starting_together_on_an_empty_database_migrate_once(empty_database_url):
    """Without a lock, concurrent migrations race to CREATE TABLE and all but one fail."""
    needs_postgres(empty_database_url)
    env = {**os.environ, "DATABASE_URL": empty_database_url, "USER_KEY_SECRET": "x"}
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "db", "upgrade", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE) for _ in range(3)]
    results = [await asyncio.wait_for(proc.communicate(), 120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err.decode()[-500:] for _, err in results]


async def seed(database_url: str, recipients: list[int], handoff_users: list[int]) -> tuple[list[int], int]:
    """Subscribers, open hand-offs waiting for 2 hours (one idle for 100 hours), and question
    logs older than the retention period. Returns (waiting hand-off ids, idle hand-off id)."""
    engine, store = await open_store(load_settings(_env_file=None, database_url=database_url, user_key_secret="x"))
    try:
        for uid in recipients:
            user = await store.users.touch("telegram", str(uid))
            await store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        ids = []
        for uid in handoff_users:
            ids.append((await store.handoffs.open(await store.users.touch("telegram", str(uid)), str(TEAM), None)).id)
        old = await store.users.touch("telegram", "999")
        for _ in range(5):
            await store.questions.log(old, "câu hỏi cũ", "cau hoi cu", "fallback", None, 0, [])
        now = utcnow()
        async with store.sessions.begin() as s:
            await s.execute(update(Handoff).values(created_at=now - dt.timedelta(hours=2),
                                                   last_activity_at=now - dt.timedelta(hours=2)))
            await s.execute(update(Handoff).where(Handoff.id == ids[-1])
                            .values(last_activity_at=now - dt.timedelta(hours=100)))
            await s.execute(update(QuestionLog).values(created_at=now - dt.timedelta(days=800)))
    finally:
        await engine.dispose()
    return ids[:-1], ids[-1]


def busiest_second(times: list[float]) -> int:
    """Most sends within any one-second window."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.slow(18, only="postgres")
async def test_two_processes_reply_once_send_the_campaign_once_at_the_global_rate_and_run_jobs_once(
        database_url, tmp_path):
    needs_postgres(database_url)
    recipients = list(range(7000, 7150))
    citizens = list(range(1, 41))
    asking = list(range(500, 505))  # the last one's hand-off is idle
    waiting, idle = await seed(database_url, recipients, handoff_users=asking)
    async with FakeTelegram(token=TOKEN, local_mode=True) as fake:
        fake.add_group(TEAM, "Tổ CNS")
        for uid in [*recipients, *citizens, *asking]:
            fake.add_private_chat(uid)
        ports = [free_port(), free_port()]
        base_env = {"DATABASE_URL": database_url, "USER_KEY_SECRET": "x", "TELEGRAM_BOT_TOKEN": TOKEN,
                    "TELEGRAM_API_BASE_URL": fake.url, "TELEGRAM_WEBHOOK_URL": "http://127.0.0.1:9",
                    "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_RATE_PER_SECOND": str(RATE),
                    "CAMPAIGN_LEASE_SECONDS": "5", "JOBS_TICK_SECONDS": "0.5", "TEAM_CHATS": f"default:{TEAM}",
                    "HANDOFF_REMINDER_MINUTES": "60", "HANDOFF_AUTO_CLOSE_HOURS": "72", "LOG_RETENTION_DAYS": "365"}
        logs = [tmp_path / f"bot-{port}.log" for port in ports]
        procs = [await start_service({**base_env, "WEB_PORT": str(port)}, log)
                 for port, log in zip(ports, logs, strict=True)]
        try:
            for port, log in zip(ports, logs, strict=True):
                await wait_health(port, lambda status, body: body.get("status") == "ok", log_file=log)
            path = webhook_path(TOKEN)
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            updates = [fake.user_sends_text(uid, "quên mật khẩu vneid", queue=False) for uid in citizens]
            async with aiohttp.ClientSession() as http:
                posts = []
                for i, update_ in enumerate(updates):
                    # even: both processes get it (and the first one twice, as a Telegram retry)
                    targets = [ports[0], ports[0], ports[1]] if i % 2 == 0 else [ports[i % 4 // 2]]
                    posts += [http.post(f"http://127.0.0.1:{p}{path}", json=update_, headers=headers)
                              for p in targets]
                for resp in await asyncio.gather(*posts):
                    assert resp.status == 200
                    resp.release()
            for uid in citizens:
                await fake.wait_for_sent(1, chat_id=uid, timeout=30)
            await fake.wait_for_sent(len(waiting) + 1, chat_id=TEAM, timeout=30)  # the reminders
            code, out, err = await cli(base_env, "create", "--title", "Cảnh báo", "--text", "Không chia sẻ OTP.",
                                       "--channel", "telegram", "--yes")
            assert code == 0, err
            campaign_id = int(out)
            for _ in range(600):
                if len({s.chat_id for s in fake.sent if s.chat_id in recipients}) == len(recipients):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # more job rounds, and time for any duplicate to show up
            code, out, _ = await cli(base_env, "status", str(campaign_id), "--json")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                await proc.wait()
    replies = Counter(s.chat_id for s in fake.sent if s.method == "sendMessage" and s.chat_id in citizens)
    assert replies == Counter({uid: 1 for uid in citizens})  # no duplicate reply
    assert '"state": "done"' in out, out
    campaign = [s for s in fake.sent if s.chat_id in recipients]
    assert Counter(s.chat_id for s in campaign) == Counter({uid: 1 for uid in recipients})  # once each
    times = sorted(s.time for s in campaign)
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"campaign: {len(times)} messages in {times[-1] - times[0]:.1f} s = {rate:.1f}/s "
          f"(configured {RATE}/s), busiest second {busiest_second(times)}")
    # Two processes together stay within the one global rate (each at full rate would be 2x);
    # the margin covers the pacer's initial burst (RATE / 5) and timing jitter.
    assert rate <= RATE * 1.15
    assert busiest_second(times) <= RATE * 1.2 + 2
    team_posts = Counter(s.plain_text for s in fake.sent_to(TEAM))
    expected = {texts.GROUP_REMINDER.format(id=h): 1 for h in [*waiting, idle]}
    expected[texts.GROUP_AUTO_CLOSED.format(id=idle, hours=72)] = 1  # HANDOFF_AUTO_CLOSE_HOURS
    assert team_posts == Counter(expected)  # each reminder and the auto-close notice once
    told = {uid: [s.plain_text for s in fake.sent_to(uid)] for uid in asking}
    assert told == {**{uid: [] for uid in asking[:-1]}, asking[-1]: [texts.AUTO_CLOSED_TO_CITIZEN.format(id=idle)]}
    engine, store = await open_store(load_settings(_env_file=None, database_url=database_url, user_key_secret="x"))
    try:
        async with store.sessions() as s:
            states = dict((await s.execute(select(Handoff.id, Handoff.state))).all())
            old_logs = await s.scalar(select(func.count()).select_from(QuestionLog)
                                      .where(QuestionLog.created_at < utcnow() - dt.timedelta(days=365)))
    finally:
        await engine.dispose()
    assert states[idle] == "closed" and all(states[h] == "open" for h in waiting)  # auto-closed, others kept
    assert old_logs == 0  # purged
    purges = sum(log.read_text(errors="replace").count("purged old records") for log in logs)
    assert purges == 1  # by one process, once
