"""`python -m bot staff add|list` and `python -m bot kb export` (one real subprocess, the rest in-process)."""

from __future__ import annotations

import asyncio

import yaml

from bot.dashboard.auth import verify_password
from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.dashboard_queries import DashboardQueries
from knowledge.loader import collect
from tests.helpers import cli_in_process
from tests.test_cli import run_cli


def cli(env: dict, *args: str, stdin: str = "") -> tuple[int, str, str]:
    proc = cli_in_process(*args, env=env, stdin=stdin)
    return proc.returncode, proc.stdout, proc.stderr


def test_staff_add_in_a_real_process(tmp_path):
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3", "USER_KEY_SECRET": "x"}
    proc = run_cli("staff", "add", "--username", "Lan", "--role", "admin", stdin="mot-mat-khau-dai\n", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "created admin account 'lan' (all wards)" in proc.stdout


def test_staff_add_links_telegram_and_kb_export_round_trips(database_url, tmp_path):
    env = {"DATABASE_URL": database_url, "USER_KEY_SECRET": "x", "WARDS": "phuong-a:Phường A",
           "BOT_ADMINS": "telegram:42"}
    code, out, err = cli(env, "staff", "add", "--username", "Lan", "--role", "staff", "--ward",
                         "phuong-a", "--telegram", "42", stdin="mot-mat-khau-dai\n")
    assert code == 0, err
    assert "created staff account 'lan'" in out and "telegram:42" in out
    code, out, err = cli(env, "staff", "add", "--username", "x", "--role", "admin", "--ward",
                         "phuong-z", stdin="mot-mat-khau-dai\n")
    assert code == 2 and "WARDS" in err
    code, out, err = cli(env, "staff", "add", "--username", "x", "--role", "admin",
                         stdin="ngan\n")
    assert code == 2 and "at least 10 characters" in err

    settings = load_settings(_env_file=None, database_url=database_url, user_key_secret="x")

    async def check_and_publish() -> None:
        engine, store = await open_store(settings)
        try:
            queries = DashboardQueries(store)
            account, hashed = await queries.login_account("lan")
            assert account.role == "staff" and account.ward == "phuong-a"
            assert verify_password("mot-mat-khau-dai", hashed) and hashed.startswith("scrypt$")
            assert await store.staff.role("telegram", "42") == "staff"  # the BOT_ADMINS row was taken over
            await queries.create_draft("dashboard:lan", "manual", kind="entry", state="published",
                                       entry_id="dvc.local_the_thu_vien", category="dvc", title="Làm thẻ thư viện",
                                       questions=["làm thẻ thư viện ở đâu", "thẻ thư viện"],
                                       answer="Bạn đến thư viện phường:\n1. Mang căn cước.\n2. Điền phiếu.",
                                       links=["https://dichvucong.gov.vn"], related=["dvc.service_center"],
                                       entry_source="UBND phường")
            await queries.create_draft("dashboard:lan", "cluster", kind="variants", state="published",
                                       entry_id="vneid.forgot_password", questions=["mất pass vneid rồi"])
        finally:
            await engine.dispose()

    asyncio.run(check_and_publish())
    code, listing, _ = cli(env, "staff", "list")
    assert "lan" in listing and "telegram:42" in listing

    out = tmp_path / "local.yaml"
    code, _, err = cli(env, "kb", "export", "--out", str(out))
    assert code == 0 and "wrote 2 entries" in err
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    by_id = {e["id"]: e for e in data["entries"]}
    assert set(by_id) == {"dvc.local_the_thu_vien", "vneid.forgot_password"}
    assert by_id["dvc.local_the_thu_vien"]["answer"].startswith("Bạn đến thư viện phường:\n1.")
    assert "mất pass vneid rồi" in by_id["vneid.forgot_password"]["questions"]
    assert "answer: |" in out.read_text(encoding="utf-8")  # readable block text, like the shipped files
    kb, problems = collect(settings.knowledge_dir, out)  # valid as KNOWLEDGE_LOCAL_FILE
    assert problems == [] and kb.get("dvc.local_the_thu_vien").title == "Làm thẻ thư viện"
