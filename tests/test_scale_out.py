"""Two real bot processes on one PostgreSQL database behave as one bot."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import aiohttp
import pytest

from bot.channels.telegram import webhook_path
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram_harness import TOKEN
from tests.test_campaign_process import cli, free_port, seed, start_bot

SECRET = "scale-out-secret"


async def wait_healthy(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"bot on port {port} did not start")


async def test_two_processes_reply_once_and_send_each_campaign_message_once(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("scale-out needs PostgreSQL (several processes on one database)")
    recipients = list(range(7000, 7040))
    await seed(database_url, recipients)
    async with FakeTelegram(token=TOKEN, local_mode=True) as fake:
        for uid in [*recipients, *range(1, 21)]:
            fake.add_private_chat(uid)
        ports = [free_port(), free_port()]
        base_env = {"DATABASE_URL": database_url, "USER_KEY_SECRET": "x", "TELEGRAM_BOT_TOKEN": TOKEN,
                    "TELEGRAM_API_BASE_URL": fake.url, "TELEGRAM_WEBHOOK_URL": "http://127.0.0.1:9",
                    "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_RATE_PER_SECOND": "50",
                    "CAMPAIGN_LEASE_SECONDS": "5"}
        procs = [await start_bot({**base_env, "WEB_PORT": str(port)}) for port in ports]
        try:
            for port in ports:
                await wait_healthy(port)
            path = webhook_path(TOKEN)
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            updates = [fake.user_sends_text(uid, "quên mật khẩu vneid", queue=False) for uid in range(1, 21)]
            async with aiohttp.ClientSession() as http:
                posts = []
                for i, update in enumerate(updates):
                    targets = ports if i % 2 == 0 else [ports[i % len(ports)]]  # even: both get it
                    posts += [http.post(f"http://127.0.0.1:{p}{path}", json=update, headers=headers) for p in targets]
                for resp in await asyncio.gather(*posts):
                    assert resp.status == 200
                    resp.release()
            await fake.wait_for_sent(lambda s: s.chat_id == 20, timeout=30)
            code, out, err = await cli(base_env, "create", "--title", "Cảnh báo", "--text", "Không chia sẻ OTP.",
                                       "--yes")
            assert code == 0, err
            campaign_id = int(out)
            for _ in range(120):
                code, out, _ = await cli(base_env, "status", str(campaign_id), "--json")
                if json.loads(out)["state"] == "done":
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # let any duplicate show up
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                await proc.wait()
    replies = Counter(s.chat_id for s in fake.sent if s.method == "sendMessage" and s.chat_id in range(1, 21))
    assert replies == Counter({uid: 1 for uid in range(1, 21)})  # no duplicate reply
    status = json.loads(out)
    assert status["state"] == "done" and status["deliveries"]["sent"] == len(recipients)
    campaign = Counter(s.chat_id for s in fake.sent if s.chat_id in recipients)
    assert campaign == Counter({uid: 1 for uid in recipients})  # no duplicate campaign message
