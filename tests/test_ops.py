"""Operations: metrics, health, JSON logs, online backup under writes, doctor."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time

import aiohttp

from bot.ops.logs import configure
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.web import create_app
from handlers.messages import IncomingMessage
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import serve_app
from tests.telegram_harness import TOKEN
from tests.test_cli import arun_cli, run_cli


async def test_metrics_count_questions_and_need_the_token(database_url):
    settings = load_settings(_env_file=None, database_url=database_url, user_key_secret="x", metrics_token="m3tr1cs")
    runtime = await Runtime.open(settings)
    try:
        await runtime.conversation.respond(IncomingMessage("telegram", "77", text="quên mật khẩu vneid"))
        await runtime.conversation.respond(IncomingMessage("telegram", "77", text="công thức nấu phở"))
        async with serve_app(create_app(runtime)) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 401
            async with http.get(f"{base}/metrics", headers={"Authorization": "Bearer m3tr1cs"}) as resp:
                assert resp.status == 200
                body = await resp.text()
    finally:
        await runtime.close()
    assert 'bot_questions_total{channel="telegram",decision="answer"}' in body
    assert 'bot_questions_total{channel="telegram",decision="fallback"}' in body
    assert "bot_match_seconds_bucket" in body and "bot_handoffs_open" in body


async def test_healthz_reports_database_down_with_503(tmp_path):
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/h.sqlite3",
                             user_key_secret="x")
    runtime = await Runtime.open(settings)
    try:
        async with serve_app(create_app(runtime)) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["status"] == "ok" and body["database"] == "ok"
            from bot.storage.db import create_engine

            healthy = runtime.engine
            runtime.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
            async with http.get(f"{base}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 503 and body["status"] == "down"
            await runtime.engine.dispose()
            runtime.engine = healthy
            runtime.channel_states["telegram"] = "down: getMe failed"
            async with http.get(f"{base}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["status"] == "degraded"
    finally:
        await runtime.close()


def test_json_log_lines(capsys):
    configure("INFO", "json")
    logging.getLogger("bot.test").info("hello %s", "world")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "hello world" and record["level"] == "INFO" and record["logger"] == "bot.test"
    configure("INFO", "text")


def test_online_backup_while_writing_keeps_every_committed_row(tmp_path):
    db = tmp_path / "live.sqlite3"
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{db}", "USER_KEY_SECRET": "x"}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    stop = threading.Event()
    committed: list[int] = []

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            cur = conn.execute(
                "INSERT INTO question_log (created_at, channel, user_key, text, normalized, decision, score, "
                "alternatives) VALUES (datetime('now'), 'telegram', 'k', 'q', 'q', 'answer', 1.0, '[]')")
            conn.commit()
            committed.append(cur.lastrowid)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 200:
            time.sleep(0.01)
        before = committed[-1]
        proc = run_cli("db", "backup", str(tmp_path / "copy.sqlite3"), env=env)
        time.sleep(0.2)  # the bot keeps writing after the backup
    finally:
        stop.set()
        thread.join()
    assert proc.returncode == 0, proc.stderr
    assert committed[-1] > before
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    ids = {row[0] for row in copy.execute("SELECT id FROM question_log")}
    copy.close()
    assert set(range(1, before + 1)) <= ids  # every row committed before the backup began
    # Restore: the copy is a working database for the bot.
    restored = tmp_path / "restored.sqlite3"
    shutil.copy(tmp_path / "copy.sqlite3", restored)
    proc = run_cli("db", "upgrade", env={**env, "DATABASE_URL": f"sqlite+aiosqlite:///{restored}"})
    assert proc.returncode == 0, proc.stderr
    again = run_cli("db", "backup", str(tmp_path / "copy.sqlite3"), env=env)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_backup_refuses_postgres_and_points_to_pg_dump():
    proc = run_cli("db", "backup", "/tmp/x.sqlite3", env={"DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1/db"})
    assert proc.returncode == 1 and "pg_dump" in proc.stderr


async def test_doctor_reports_problems_with_fixes(tmp_path):
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.sqlite3", "USER_KEY_SECRET": "x"}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    async with FakeTelegram(token=TOKEN) as fake:
        good = await arun_cli("doctor", env={**env, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.url})
        bad = await arun_cli("doctor", env={**env, "TELEGRAM_BOT_TOKEN": "999:wrong", "TELEGRAM_API_BASE_URL": fake.url,
                                     "TEAM_CHATS": "phuong-z:-1", "WARDS": "phuong-a:A"})
    assert good.returncode == 0, good.stdout
    assert "all checks passed" in good.stdout and "[OK  ] telegram" in good.stdout
    assert bad.returncode == 1
    assert "[FAIL] telegram" in bad.stdout and "how to fix" in bad.stdout
    assert "unknown wards: phuong-z" in bad.stdout
    down = run_cli("doctor", env={"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    assert down.returncode == 1 and "[FAIL] database" in down.stdout
    stale = tmp_path / "empty.sqlite3"
    stale.touch()
    old = run_cli("doctor", env={"DATABASE_URL": f"sqlite+aiosqlite:///{stale}"})
    assert "db upgrade" in old.stdout
