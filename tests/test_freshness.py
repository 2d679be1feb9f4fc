"""Freshness of knowledge entries: review intervals, the source rule, `kb validate` warnings,
`kb review|suspend|resume` and how recorded reviews reach the served entries and `kb export`."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.dashboard.overlay import apply_status
from bot.localtime import vn_today
from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.kb_status import EntryStatus, KbStatusQueries
from bot.storage.models import AuditLog
from handlers.freshness import source_line
from knowledge.freshness import (
    DEFAULT_REVIEW_DAYS,
    SENSITIVE_REVIEW_DAYS,
    freshness,
    is_uncertain,
    names_a_document,
    review_days,
)
from knowledge.loader import KnowledgeBase, collect
from knowledge.schema import Entry
from tests.test_dashboard_cli import cli
from tests.test_kb_validate import GOOD, write

ROOT = Path(__file__).resolve().parent.parent


def entry(answer: str = "Mở ứng dụng rồi làm theo hướng dẫn.", **extra) -> Entry:
    data = dict(id="vneid.x", category="vneid", title="Thử", questions=["q?"], answer=answer,
                source="Bộ Công an — https://www.vneid.gov.vn/huong-dan", reviewed="2026-01-10")
    return Entry.model_validate({**data, **extra})


def test_review_interval_explicit_else_sensitive_else_default():
    assert review_days(entry()) == DEFAULT_REVIEW_DAYS
    for sensitive in ("Lệ phí là 20.000 đồng.", "Theo Thông tư 75/2022/TT-BTC.", "Nộp đến hết ngày 30/6.",
                      "Miễn phí hoàn toàn.", "Mức phạt 5 triệu."):
        assert review_days(entry(sensitive)) == SENSITIVE_REVIEW_DAYS, sensitive
    assert review_days(entry("Lệ phí là 20.000 đồng.", review_days=365)) == 365  # the field wins
    fresh = freshness(entry("Lệ phí là 20.000 đồng."), dt.date(2026, 4, 20))
    assert fresh.due == dt.date(2026, 4, 10) and fresh.overdue and fresh.days_left == -10
    later = freshness(entry("Lệ phí là 20.000 đồng."), dt.date(2026, 4, 20), recorded=dt.date(2026, 4, 1))
    assert later.reviewed == dt.date(2026, 4, 1) and later.due == dt.date(2026, 6, 30) and not later.overdue
    assert freshness(entry(), dt.date(2026, 6, 20)).soon  # due 09/07: within 30 days


def test_uncertain_means_the_flag_or_hedged_wording():
    assert not is_uncertain(entry("Bạn kiểm tra lại hồ sơ trước khi nộp."))  # ordinary advice, not a hedge
    assert is_uncertain(entry("Theo thông tin tại thời điểm 11/2026, phí là 0 đồng; kiểm tra lại tại cổng."))
    assert is_uncertain(entry(uncertain=True))


def test_source_needs_a_url_and_a_named_document_is_enough_for_the_dashboard(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    write(kb, "v.yaml", "entries:" + GOOD.format(id="vneid.a") + GOOD.format(id="vneid.b").replace(
        'source: "https://vneid.gov.vn"', 'source: "Bộ Công an (hướng dẫn)"'))
    _, problems = collect(kb, None, topics_file=None)
    assert [str(p) for p in problems] == [
        "v.yaml: vneid.b: source must contain at least one http(s) URL of where the facts come from"]
    local = tmp_path / "local.yaml"  # exported dashboard entries, checked when published, may name a document
    local.write_text("entries:" + GOOD.format(id="vneid.c").replace('source: "https://vneid.gov.vn"',
                                                                    'source: "Thông báo của UBND phường"'))
    assert [str(p) for p in collect(kb, local, topics_file=None)[1]] == [
        "v.yaml: vneid.b: source must contain at least one http(s) URL of where the facts come from"]
    assert names_a_document("Quyết định số 12/QĐ-UBND của UBND phường")
    assert names_a_document("xem https://dichvucong.gov.vn")
    assert not names_a_document("Cán bộ xã/phường (bảng điều khiển)") and not names_a_document("UBND phường")


def test_citizen_source_line_names_the_site_and_the_latest_review():
    assert source_line(entry()) == "Nguồn: vneid.gov.vn · cập nhật 10/01/2026\n\n"
    reviewed = apply_status(KnowledgeBase([entry()]), {"vneid.x": EntryStatus(
        "vneid.x", reviewed_at=dt.datetime(2026, 3, 1, 18, 0, tzinfo=dt.UTC),  # 02/03 in Vietnam
        review_source="https://dichvucong.gov.vn/p/home")})
    served = reviewed.get("vneid.x")
    assert source_line(served) == "Nguồn: dichvucong.gov.vn · cập nhật 02/03/2026\n\n"
    assert served.source.endswith(entry().source)  # the old source is kept after the new one
    older = apply_status(KnowledgeBase([entry()]), {"vneid.x": EntryStatus(
        "vneid.x", reviewed_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC), suspended=True)})
    assert older.get("vneid.x").reviewed == dt.date(2026, 1, 10)  # the file was curated since
    assert older.suspended == {"vneid.x"}
    named = entry(source="Quyết định 12/QĐ-UBND")
    assert source_line(named) == "Nguồn: Quyết định 12/QĐ-UBND · cập nhật 10/01/2026\n\n"
    assert source_line(entry(source="Cán bộ phường")) == "Cập nhật 10/01/2026\n\n"


def fresh_copy(tmp_path: Path, aged: str) -> tuple[Path, Path]:
    """The shipped knowledge with every entry reviewed today (so the test does not age), and a
    local file that makes `aged` last reviewed a year ago."""
    kb = tmp_path / "kb"
    kb.mkdir()
    today = vn_today().isoformat()
    for path in (ROOT / "knowledge").glob("*.yaml"):
        text = re.sub(r"(?m)^(\s+reviewed:) \d{4}-\d\d-\d\d", rf"\1 {today}", path.read_text(encoding="utf-8"))
        (kb / path.name).write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "knowledge" / "meta", kb / "meta")
    local = tmp_path / "local.yaml"
    year_ago = (vn_today() - dt.timedelta(days=365)).isoformat()
    local.write_text(f"entries:\n  - id: {aged}\n    reviewed: {year_ago}\n", encoding="utf-8")
    return kb, local


def test_validate_warns_of_overdue_entries_and_a_recorded_review_moves_the_due_date(
        database_url, tmp_path):
    kb, local = fresh_copy(tmp_path, "vneid.activate")
    env = {"DATABASE_URL": database_url, "USER_KEY_SECRET": "x", "KNOWLEDGE_DIR": str(kb),
           "KNOWLEDGE_LOCAL_FILE": str(local)}
    code, out, err = cli(env, "kb", "validate")
    assert code == 0, out + err
    assert "warning: vneid.activate: review overdue by 185 day(s)" in out  # 365 days ago, every 180 days
    assert len(re.findall(r"^warning:", out, re.M)) == 1 and "OK: " in out
    code, out, err = cli(env, "kb", "validate", "--strict")
    assert code == 1 and "1 entry is overdue for review (--strict)" in err

    code, out, err = cli(env, "kb", "review", "vneid.activate", "--by", "lan",
                         "--source", "https://vneid.gov.vn/huong-dan-kich-hoat")
    assert code == 0, err
    due = vn_today() + dt.timedelta(days=DEFAULT_REVIEW_DAYS)
    assert f"recorded review of vneid.activate by lan; next review due {due}" in out
    code, out, err = cli(env, "kb", "validate", "--strict")
    assert code == 0 and "warning:" not in out and "no entry is overdue for review" in out

    assert cli(env, "kb", "review", "vneid.khong_co", "--by", "lan")[0] == 1
    code, _, err = cli(env, "kb", "review", "vneid.activate", "--by", "lan", "--source", "x y")
    assert code == 2 and "http(s) URL" in err
    assert cli(env, "kb", "suspend", "vneid.activate", "--by", "lan")[0] == 0

    # `kb export` carries the review (date and source) of the shipped entry until it is curated.
    code, out, err = cli(env, "kb", "export")
    assert code == 0, err
    [item] = [i for i in yaml.safe_load(out)["entries"] if i["id"] == "vneid.activate"]
    assert item["reviewed"] == vn_today() and item["source"].startswith("https://vneid.gov.vn/huong-dan-kich-hoat; ")

    settings = load_settings(_env_file=None, database_url=database_url, user_key_secret="x")

    async def recorded() -> tuple[dict, list]:
        engine, store = await open_store(settings)
        try:
            async with store.sessions() as s:
                audit = [(a.actor, a.action, a.target, a.detail) for a in await s.scalars(
                    select(AuditLog).where(AuditLog.action.like("kb.%")).order_by(AuditLog.id))]
            return await KbStatusQueries(store.sessions).statuses(), audit
        finally:
            await engine.dispose()

    statuses, audit = asyncio.run(recorded())
    status = statuses["vneid.activate"]
    assert status.reviewed_by == "lan" and status.review_source == "https://vneid.gov.vn/huong-dan-kich-hoat"
    assert status.suspended and status.suspended_by == "lan"
    assert audit == [("lan", "kb.review", "vneid.activate", {"source": "https://vneid.gov.vn/huong-dan-kich-hoat"}),
                     ("lan", "kb.suspend", "vneid.activate", {})]
    assert cli(env, "kb", "resume", "vneid.activate", "--by", "lan")[0] == 0
    assert not asyncio.run(recorded())[0]["vneid.activate"].suspended


def test_digest_setting_is_documented_and_checked():
    from dotenv import dotenv_values

    from bot.settings import ConfigurationError

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "| `KB_DIGEST_AT` |" in readme and "kb review ID --by NAME" in readme and "**Cần rà soát**" in readme
    example = dotenv_values(ROOT / ".env.example")["KB_DIGEST_AT"]
    assert load_settings(_env_file=None, kb_digest_at=example).kb_digest_at == "mon 08:00"
    assert load_settings(_env_file=None, kb_digest_at=" OFF ").kb_digest_at == "off"
    for bad in ("monday 8:00", "mon 25:00", "08:00"):
        with pytest.raises(ConfigurationError, match="KB_DIGEST_AT"):
            load_settings(_env_file=None, kb_digest_at=bad)
