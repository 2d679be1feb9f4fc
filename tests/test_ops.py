"""Operations: metrics, health, JSON logs, online backup under writes, doctor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.campaigns.service import CampaignDraft
from bot.channels.telegram import webhook_path
from bot.ops.logs import configure
from bot.privacy import user_key
from bot.runtime import Runtime, open_store
from bot.settings import load_settings
from bot.storage.models import QuestionLog
from bot.web import create_app
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_bot import FakeZaloBot
from tests.fakes.zalo_oa import FakeZaloOA
from tests.helpers import cli_in_process, serve_app
from tests.telegram_harness import TEAM_A, TOKEN, running_bot
from tests.test_campaign_process import free_port
from tests.test_cli import ROOT, arun_cli


async def scrape(http: aiohttp.ClientSession, base: str, token: str) -> dict[tuple, float]:
    """/metrics parsed: (sample name, sorted labels) -> value."""
    async with http.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        text = await resp.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_values_for_sends_errors_deliveries_webhooks_and_handoffs(database_url):
    """Each metric the README lists moves by exactly what happened (counters are per process,
    so the test compares before and after)."""
    secret, token = "metrics-webhook-secret", "m3tr1cs"
    recipients = list(range(7001, 7007))
    async with running_bot(database_url, telegram_webhook_url="http://127.0.0.1:9", metrics_token=token,
                           telegram_webhook_secret=secret, telegram_rate_per_second=4) as bot:
        fake, runtime = bot.fake, bot.runtime
        for uid in recipients:
            fake.add_private_chat(uid)
            user = await bot.store.users.touch("telegram", str(uid))
            await bot.store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        fake.block(recipients[-1])
        stop = asyncio.Event()
        sender = asyncio.create_task(runtime.campaign_runner.run(stop))
        hook = f"{{base}}{webhook_path(TOKEN)}"
        async with serve_app(create_app(runtime)) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 401  # METRICS_TOKEN is required
            before = await scrape(http, base, token)
            question = fake.user_sends_text(1, "quên mật khẩu vneid", queue=False)
            async with http.post(hook.format(base=base), json=question,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as resp:
                assert resp.status == 403
            async with http.post(hook.format(base=base), data=b"{not json",
                                 headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as resp:
                assert resp.status == 400
            fake.fail_next("sendMessage", 502)  # a 5xx, then a 429, then the reply goes through
            fake.fail_next("sendMessage", 429, retry_after=1)
            fake.block(2)
            for update in (question, fake.user_sends_text(2, "vneid là gì", queue=False)):
                async with http.post(hook.format(base=base), json=update,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as resp:
                    assert resp.status == 200
            await fake.wait_for_sent(1, chat_id=1, timeout=20)
            async with http.post(f"{base}/api/ask", json={"text": "quên mật khẩu vneid"}) as resp:
                assert resp.status == 200
            # Created in this process (the campaign CLI and another process's sender are tested
            # in tests/test_campaign_process.py): one child process fewer.
            await runtime.campaigns.create(CampaignDraft(title="Tin", text="Không chia sẻ OTP.", created_by="cli",
                                                         channel="telegram"))
            await fake.wait_for_sent(lambda s: s.chat_id in recipients, timeout=20)
            mid = await scrape(http, base, token)  # the campaign is being sent
            for _ in range(200):
                done = await scrape(http, base, token)
                if value(done, "bot_campaign_deliveries", state="sent") == len(recipients) - 1 and \
                        value(done, "bot_campaign_deliveries", state="blocked") == 1:
                    break
                await asyncio.sleep(0.1)
            citizen = await bot.store.users.touch("telegram", "3")
            await bot.store.handoffs.open(citizen, str(TEAM_A), None)
            await asyncio.sleep(1.2)
            after = await scrape(http, base, token)
        stop.set()
        await sender

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("bot_webhook_rejected_total", channel="telegram", reason="secret") == 1
    assert delta("bot_webhook_rejected_total", channel="telegram", reason="malformed") == 1
    assert delta("bot_send_errors_total", channel="telegram", error="transient", code="502") == 1
    assert delta("bot_send_errors_total", channel="telegram", error="rate_limited", code="429") == 1
    assert delta("bot_rate_limited_total", channel="telegram") == 1
    assert delta("bot_send_errors_total", channel="telegram", error="recipient_gone", code="403") == 2  # 2 + campaign
    replies = [s for s in fake.sent_to(1) if s.method == "sendMessage"]
    assert delta("bot_messages_sent_total", channel="telegram", purpose="reply") == len(replies) >= 1
    assert delta("bot_messages_sent_total", channel="telegram", purpose="broadcast") == len(recipients) - 1
    assert delta("bot_questions_total", channel="telegram", decision="answer") == 2
    assert delta("bot_api_previews_total", decision="answer") == 1  # a preview is not a citizen question
    assert not any(name == "bot_questions_total" and ("channel", "api") in labels for name, labels in after)
    assert value(mid, "bot_campaign_deliveries", state="pending") + \
        value(mid, "bot_campaign_deliveries", state="sending") > 0
    for state, count in (("sent", len(recipients) - 1), ("blocked", 1), ("pending", 0), ("sending", 0),
                         ("failed", 0)):
        assert value(after, "bot_campaign_deliveries", state=state) == count, state
    assert (("bot_campaign_deliveries", (("state", "pending"),))) in after  # zero is reported, not left out
    assert value(after, "bot_handoffs_open") == 1
    assert 1.0 <= value(after, "bot_handoff_oldest_open_seconds") < 60


class TcpProxy:
    """A TCP forwarder standing between the bot and PostgreSQL: stopping it is a database outage
    as the bot sees one (connections refused, open ones cut), without touching the server."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def start_service(env: dict, log_file) -> asyncio.subprocess.Process:
    """`python -m bot` as the service runs it; its log goes to `log_file` for failure reports."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=ROOT, env={**os.environ, "LOG_LEVEL": "INFO", **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=log_file.open("wb"), stdin=asyncio.subprocess.DEVNULL)


async def wait_health(port: int, predicate, within: float = 30, log_file=None) -> tuple[int, dict]:
    """Poll /healthz until predicate(status, body) holds; returns them."""
    last = None
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    last = (resp.status, await resp.json())
                if predicate(*last):
                    return last
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    log = log_file.read_text(errors="replace")[-3000:] if log_file else ""
    raise AssertionError(f"/healthz never matched; last answer {last}\n{log}")


async def test_healthz_follows_live_channel_state_and_recovers(database_url, tmp_path):
    """Channel trouble makes /healthz "degraded" (200) and clears by itself; a database
    outage makes it "down" (503). All through a real process and the fake Bot API."""
    proxy = None
    url = database_url
    if database_url.startswith("postgresql"):
        parsed = make_url(database_url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        await proxy.start()
        url = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    log_file = tmp_path / "bot.log"
    async with FakeTelegram(token=TOKEN) as fake:
        fake.add_private_chat(1)
        fake.set_outage(math.inf, methods="all")  # the Bot API is unreachable when the bot starts
        port = free_port()
        proc = await start_service({"DATABASE_URL": url, "USER_KEY_SECRET": "x", "TELEGRAM_BOT_TOKEN": TOKEN,
                                    "TELEGRAM_API_BASE_URL": fake.url, "WEB_PORT": str(port),
                                    "CHANNEL_CHECK_SECONDS": "0.3"}, log_file)
        try:
            def channel(prefix: str):
                return lambda status, body: body["channels"]["telegram"].startswith(prefix)

            status, body = await wait_health(port, channel("down: start failed"), log_file=log_file)
            assert status == 200 and body["status"] == "degraded" and body["database"] == "ok"
            fake.clear_outage()  # the start is retried with back-off
            status, body = await wait_health(port, lambda st, b: b["status"] == "ok", log_file=log_file)
            assert status == 200 and body["channels"]["telegram"] == "on"

            fake.set_outage(math.inf)  # sends fail (502), the rest of the API answers
            fake.user_sends_text(1, "quên mật khẩu vneid")
            status, body = await wait_health(port, channel("degraded: sends failing"), log_file=log_file)
            assert status == 200 and body["status"] == "degraded" and not fake.sent_to(1)
            fake.clear_outage()
            await fake.wait_for_sent(1, chat_id=1, timeout=30)  # the reply is retried and gets through
            status, body = await wait_health(port, lambda st, b: b["status"] == "ok", log_file=log_file)

            fake.set_outage(math.inf, methods=["getMe"])  # the periodic API check fails
            status, body = await wait_health(port, channel("down: API check failed"), log_file=log_file)
            assert status == 200 and body["status"] == "degraded"
            fake.clear_outage()
            await wait_health(port, lambda st, b: b["status"] == "ok", log_file=log_file)

            if proxy is not None:  # PostgreSQL: cut the bot off its database, then bring it back
                await proxy.stop()
                status, body = await wait_health(port, lambda st, b: st == 503, log_file=log_file)
                assert body["status"] == "down" and body["database"].startswith("down")
                await proxy.start()
                await wait_health(port, lambda st, b: st == 200 and b["status"] == "ok", log_file=log_file)
        finally:
            proc.terminate()
            await proc.wait()
            if proxy is not None:
                with contextlib.suppress(Exception):
                    await proxy.stop()
    assert len(fake.sent_to(1)) == 1  # answered once, after the outage


def test_json_log_lines(capsys):
    configure("INFO", "json")
    logging.getLogger("bot.test").info("hello %s", "world")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "hello world" and record["level"] == "INFO" and record["logger"] == "bot.test"
    configure("INFO", "text")


async def test_online_backup_under_steady_bot_writes_restores_every_committed_row(tmp_path):
    """A database of many backup steps, the bot's Store committing all the time: the backup
    finishes, and copied back it holds every row committed before it began."""
    db = tmp_path / "live.sqlite3"
    url = f"sqlite+aiosqlite:///{db}"
    env = {"DATABASE_URL": url, "USER_KEY_SECRET": "x"}
    engine, store = await open_store(load_settings(_env_file=None, database_url=url, user_key_secret="x"))
    user = await store.users.touch("telegram", "42")
    with sqlite3.connect(db) as conn:  # about 80 MB of history: far more than one 256-page step
        conn.executemany(
            "INSERT INTO question_log (created_at, channel, user_key, text, normalized, decision, score, "
            "alternatives) VALUES (datetime('now'), 'telegram', 'k', ?, 'q', 'answer', 1.0, '[]')",
            [(f"{i} " + "x" * 2000,) for i in range(20_000)])
    conn.close()
    assert db.stat().st_size > 64 * 1024 * 1024
    committed: list[int] = []
    stop, warmed_up = asyncio.Event(), asyncio.Event()

    async def writer() -> None:  # the bot logging questions as fast as it can
        while not stop.is_set():
            committed.append(await store.questions.log(user, f"câu {len(committed)}", "cau", "answer", None, 1, []))
            if len(committed) >= 100:
                warmed_up.set()

    task = asyncio.create_task(writer())
    try:
        await warmed_up.wait()
        before = list(committed)  # every row the bot had committed when the backup started
        backup = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", "backup", str(tmp_path / "copy.sqlite3"), cwd=ROOT,
            env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(backup.communicate(), 60)
        except TimeoutError:
            backup.kill()
            await backup.wait()
            raise AssertionError("db backup did not finish within 60 s under steady writes") from None
        during = len(committed) - len(before)
    finally:
        stop.set()
        await task
        await engine.dispose()  # the service is stopped before a restore
    assert backup.returncode == 0, err.decode()
    assert during > 50  # the bot really kept writing while the copy was made
    # Restore as the README says: replace the file, drop the stale -wal/-shm, start again.
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.copy(tmp_path / "copy.sqlite3", db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    engine, store = await open_store(load_settings(_env_file=None, database_url=url, user_key_secret="x"))
    try:
        async with store.sessions() as s:
            ids = set((await s.scalars(select(QuestionLog.id))).all())
            texts = dict((await s.execute(select(QuestionLog.id, QuestionLog.text)
                                          .where(QuestionLog.id.in_(before)))).all())
    finally:
        await engine.dispose()
    assert set(range(1, 20_001)) <= ids  # the old history
    assert set(before) <= ids  # every row committed before the backup began
    assert all(texts[i].startswith("câu ") for i in before)
    again = await asyncio.to_thread(cli_in_process, "db", "backup", str(tmp_path / "copy.sqlite3"), env=env)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_backup_refuses_postgres_and_points_to_pg_dump():
    proc = cli_in_process("db", "backup", "/tmp/x.sqlite3", env={"DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1/db"})
    assert proc.returncode == 1 and "pg_dump" in proc.stderr


def _env_file(path, values: dict) -> str:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    return str(path)


async def test_doctor_healthy_configuration_checks_every_channel_api(tmp_path):
    db = tmp_path / "d.sqlite3"
    async with FakeTelegram(token=TOKEN) as tg, FakeZaloOA() as oa, FakeZaloBot() as zb:
        values = {"DATABASE_URL": f"sqlite+aiosqlite:///{db}", "USER_KEY_SECRET": "x",
                  "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": tg.url,
                  "ZALO_OA_APP_ID": oa.app_id, "ZALO_OA_SECRET_KEY": oa.oa_secret_key,
                  "ZALO_OA_APP_SECRET": oa.app_secret, "ZALO_OA_ACCESS_TOKEN": oa.access_token,
                  "ZALO_OA_REFRESH_TOKEN": oa.refresh_token, "ZALO_OA_API_BASE_URL": oa.api_base_url,
                  "ZALO_OA_OAUTH_BASE_URL": oa.oauth_base_url,
                  "ZALO_BOT_TOKEN": zb.token, "ZALO_BOT_API_BASE_URL": zb.base_url}
        settings_file = _env_file(tmp_path / "bot.env", values)  # read like /etc/dvc-assistant.env
        # The service, opened on that file, creates the database (as `db upgrade` would: one
        # child process fewer; tests/test_ops.py's env-file test runs `db upgrade` itself).
        runtime = await Runtime.open(load_settings(env_file=[settings_file]))
        try:
            good = await arun_cli("--env-file", settings_file, "doctor")
            assert good.returncode == 0, good.stdout
            # The service rotates the OA tokens and keeps them in the database; the first token from
            # the settings is then revoked, and doctor must check with the stored one.
            tokens = runtime.channels.adapters["zalo"].tokens
            await tokens.load()
            await tokens.refresh(rejected=oa.access_token)
        finally:
            await runtime.close()
        assert oa.access_token != values["ZALO_OA_ACCESS_TOKEN"]
        rotated = await arun_cli("doctor", env={"ENV_FILE": settings_file})
    for out in (good.stdout, rotated.stdout):
        for name in ("database", "knowledge base", "lexicon", "telegram", "zalo oa", "zalo bot"):
            assert f"[OK  ] {name}:" in out, out
        assert "all checks passed" in out
    assert [r.method for r in tg.requests] == ["getMe", "getMe"]
    assert [r.method for r in zb.requests] == ["getMe", "getMe"]
    assert "Trợ lý Dịch vụ công (test)" in good.stdout  # the OA profile really came back


async def test_doctor_broken_configuration_names_each_problem_and_creates_nothing(tmp_path):
    # In-process (the healthy test above runs the real `python -m bot doctor`), on a thread: the
    # command runs its own event loop while this one serves the fakes.
    def doctor(env: dict[str, str]):
        return asyncio.to_thread(cli_in_process, "doctor", env=env)

    async with FakeTelegram(token=TOKEN) as tg, FakeZaloOA() as oa, FakeZaloBot() as zb:
        typo = tmp_path / "nope" / "bot.sqlite3"
        bad = await doctor({
            "DATABASE_URL": f"sqlite+aiosqlite:///{typo}", "USER_KEY_SECRET": "x",
            "TELEGRAM_BOT_TOKEN": "999:wrong", "TELEGRAM_API_BASE_URL": tg.url,
            "TEAM_CHATS": "phuong-z:-1", "WARDS": "phuong-a:A",
            "ZALO_OA_APP_ID": oa.app_id, "ZALO_OA_SECRET_KEY": oa.oa_secret_key,
            "ZALO_OA_ACCESS_TOKEN": "revoked-token", "ZALO_OA_API_BASE_URL": oa.api_base_url,
            "ZALO_BOT_TOKEN": "1:wrong-secret", "ZALO_BOT_API_BASE_URL": zb.base_url})
    assert bad.returncode == 1
    for name in ("database", "telegram", "zalo oa", "zalo bot"):
        assert f"[FAIL] {name}:" in bad.stdout, bad.stdout
    assert "does not exist" in bad.stdout and not typo.parent.exists()  # reported, not created
    assert "access token was refused" in bad.stdout and "unknown wards: phuong-z" in bad.stdout
    assert bad.stdout.count("how to fix") >= 5
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = await doctor({"DATABASE_URL": f"sqlite+aiosqlite:///{empty}/bot.sqlite3"})
    assert "[FAIL] database" in missing.stdout and "db upgrade" in missing.stdout
    assert list(empty.iterdir()) == []
    down = await doctor({"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    assert down.returncode == 1 and "[FAIL] database: cannot connect" in down.stdout
    stale = tmp_path / "old.sqlite3"
    stale.touch()
    old = await doctor({"DATABASE_URL": f"sqlite+aiosqlite:///{stale}", "ZALO_OA_APP_ID": "1"})
    assert "schema at empty" in old.stdout and "db upgrade" in old.stdout
    assert "[FAIL] zalo oa: ZALO_OA_SECRET_KEY" in old.stdout  # half-configured OA


def test_doctor_lexicon_check_fails_on_a_broken_file(tmp_path):
    from bot.ops.doctor import _lexicon

    assert _lexicon().ok
    broken = tmp_path / "chat.yaml"
    broken.write_text("abbreviations: [unclosed", encoding="utf-8")
    check = _lexicon(broken)
    assert not check.ok and "cannot load" in check.detail and check.fix
    empty = tmp_path / "empty.yaml"
    empty.write_text("fillers: []\n", encoding="utf-8")
    assert not _lexicon(empty).ok


def test_user_key_secret_found_where_earlier_versions_kept_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "user-key.secret").write_text("old-secret")
    elsewhere = f"sqlite+aiosqlite:///{tmp_path}/db/bot.sqlite3"
    assert load_settings(_env_file=None, database_url=elsewhere).resolved_user_key_secret() == "old-secret"
    assert not (tmp_path / "db" / "user-key.secret").exists()
    fresh = load_settings(_env_file=None, database_url=elsewhere, data_dir=str(tmp_path / "new"))
    assert fresh.resolved_user_key_secret() != "old-secret"  # an explicit DATA_DIR is taken as given
    assert (tmp_path / "new" / "user-key.secret").exists()


def test_env_file_is_read_by_every_cli_command_and_must_exist(tmp_path):
    db = tmp_path / "prod" / "bot.sqlite3"
    db.parent.mkdir()
    settings_file = _env_file(tmp_path / "dvc.env", {"DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    other = tmp_path / "elsewhere"
    other.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "USER_KEY_SECRET", "DATA_DIR")}

    def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:  # from another directory
        return subprocess.run([sys.executable, "-m", "bot", *args], cwd=other, env={**env, "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True, timeout=120)

    upgrade = run_cli("--env-file", settings_file, "db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert db.exists()
    # No USER_KEY_SECRET: the generated secret lives beside the SQLite database, wherever the
    # command runs from, so the CLI and the service pseudonymise users the same way.
    secret = db.parent / "user-key.secret"
    assert secret.exists() and not (other / "data").exists()
    backup = run_cli("db", "backup", str(tmp_path / "b.sqlite3"), env={**env, "ENV_FILE": settings_file})
    assert backup.returncode == 0, backup.stderr
    typo = run_cli("--env-file", str(tmp_path / "dvc.envv"), "db", "upgrade", env=env)
    assert typo.returncode == 2 and "dvc.envv does not exist" in typo.stderr
    from bot.settings import load_settings as load

    assert load(env_file=[settings_file], _env_file=None).database_url == "sqlite+aiosqlite:///./data/bot.sqlite3"
    assert load(env_file=[settings_file]).resolved_data_dir == db.parent
    assert load(env_file=[settings_file], data_dir=str(other)).user_key_secret_file == other / "user-key.secret"
    assert load(database_url="postgresql+asyncpg://u@h/db", _env_file=None).resolved_data_dir.as_posix() == "data"


async def test_debug_logs_carry_no_personal_data_or_token(database_url, capsys):
    """At DEBUG, a whole conversation leaves no question text, phone number, chat id or bot
    token in the logs (users appear as pseudonymous keys only)."""
    user_id, phone = 987654321, "0912345678"
    text = f"quên mật khẩu vneid, số tôi là {phone}"
    configure("DEBUG", "json")
    try:
        async with running_bot(database_url) as bot:
            bot.fake.add_private_chat(user_id, first_name="Nguyễn Thị Hoa")
            await bot.say(user_id, text)
            await bot.say(user_id, "công thức nấu phở bò")  # fallback, logged for the dashboard
            key = user_key(bot.runtime.settings.resolved_user_key_secret(), "telegram", user_id)[:12]
    finally:
        configure("INFO", "text")
    logs = capsys.readouterr().err
    # DEBUG logging really was on: each update is logged, naming the user by pseudonymous key only
    # (libraries that log requests verbatim stay at WARNING, so there are few lines).
    debug = [entry["message"] for entry in map(json.loads, logs.splitlines()) if entry["level"] == "DEBUG"]
    updates = [line for line in debug if line.startswith("telegram: update ")]
    assert len(updates) == 2 and all(re.fullmatch(rf"telegram: update \d+ from user {key}: text", line)
                                     for line in updates), logs
    for secret in (phone, "quên mật khẩu", "nấu phở", str(user_id), TOKEN, TOKEN.split(":")[1], "Nguyễn Thị Hoa"):
        assert secret not in logs, f"{secret!r} found in the logs"


DEPLOY = ROOT / "deploy"


def test_deploy_env_example_uses_real_settings_behind_the_proxy():
    example = DEPLOY / "dvc-assistant.env.example"
    keys = [line.split("=", 1)[0] for line in example.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    from bot.settings import Settings

    unknown = [key for key in keys if key.lower() not in Settings.model_fields]
    assert not unknown, f"not settings: {unknown}"
    settings = load_settings(env_file=[str(example)])
    assert settings.trust_proxy_headers and settings.dashboard_cookie_secure == "true"
    assert settings.resolved_data_dir.as_posix() == "/var/lib/dvc-assistant"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    for unit in ("dvc-assistant.service", "dvc-assistant@.service"):
        text = (DEPLOY / unit).read_text(encoding="utf-8")
        assert "RestartPreventExitStatus=2" in text and "StateDirectory=dvc-assistant" in text
        (tmp_path / unit).write_text(text.replace("/opt/dvc-assistant/.venv/bin/python", sys.executable))
    assert "EnvironmentFile=-/etc/dvc-assistant-%i.env" in (DEPLOY / "dvc-assistant@.service").read_text()
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"}
    for name in ("dvc-assistant.service", "dvc-assistant@8081.service"):
        proc = subprocess.run(["systemd-analyze", "verify", name], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # not on a non-root PATH


@pytest.mark.skipif(not NGINX, reason="nginx is not installed")
def test_nginx_example_passes_nginx_t(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp_path / "key.pem",
                    "-out", tmp_path / "cert.pem", "-days", "1", "-subj", "/CN=test"], check=True, capture_output=True)
    site = (DEPLOY / "nginx.conf.example").read_text(encoding="utf-8")
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in site and "$proxy_add_x_forwarded_for" not in site
    site = site.replace("/etc/letsencrypt/live/bot.phuong.example.gov.vn/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/letsencrypt/live/bot.phuong.example.gov.vn/privkey.pem", str(tmp_path / "key.pem"))
    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr
    major_minor = tuple(int(x) for x in version.split("/")[1].split(".")[:3])
    if major_minor < (1, 25, 1):  # the fallback the file's comment describes
        site = site.replace("    http2 on;", "").replace("ssl;", "ssl http2;")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; include {tmp_path}/site.conf; }}\n")
    proc = subprocess.run([NGINX, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
