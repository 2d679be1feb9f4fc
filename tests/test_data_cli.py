"""`python -m bot db upgrade` and `data purge` against both databases (in-process: the same
command code; the entry point itself is tested in a real process in test_cli and test_ops)."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.models import QuestionLog, utcnow
from tests.helpers import cli_in_process


def test_db_upgrade_then_purge_removes_only_old_logs(empty_database_url, tmp_path):
    database_url = empty_database_url  # `db upgrade` creates the schema
    env = {"DATABASE_URL": database_url, "USER_KEY_SECRET": "x"}
    proc = cli_in_process("db", "upgrade", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout

    async def seed() -> None:
        engine, store = await open_store(load_settings(_env_file=None, database_url=database_url,
                                                       user_key_secret="x"))
        async with store.sessions.begin() as s:
            for days in (400, 366, 10, 0):
                s.add(QuestionLog(channel="telegram", user_key="k", text=f"q{days}", normalized=f"q{days}",
                                  decision="fallback", created_at=utcnow() - dt.timedelta(days=days)))
        await engine.dispose()

    async def remaining() -> list[str]:
        engine, store = await open_store(load_settings(_env_file=None, database_url=database_url,
                                                       user_key_secret="x"))
        async with store.sessions() as s:
            texts = list(await s.scalars(select(QuestionLog.text).order_by(QuestionLog.text)))
        await engine.dispose()
        return texts

    asyncio.run(seed())
    proc = cli_in_process("data", "purge", "--older-than", "365d", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "2 questions" in proc.stdout
    assert asyncio.run(remaining()) == ["q0", "q10"]


def test_purge_rejects_bad_duration():
    proc = cli_in_process("data", "purge", "--older-than", "forever")
    assert proc.returncode == 2
    assert "365d" in proc.stderr and "Traceback" not in proc.stderr
