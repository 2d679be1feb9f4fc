"""Kho kiến thức → Cần rà soát, "Đã rà soát", suspension and the home page digest, over real
HTTP on both databases; citizens in the web chat see the source line and the suspension."""

from __future__ import annotations

import contextlib
import datetime as dt
import re

import pytest
from sqlalchemy import select

from bot.dashboard.overlay import SOURCE_NEEDED, problems_of
from bot.localtime import vn_today
from bot.runtime import Runtime
from bot.storage.kb_status import KbStatusQueries
from bot.storage.models import AuditLog, Feedback, utcnow
from bot.web import create_app
from tests.dashboard_harness import Site, settings_for
from tests.helpers import serve_app
from tests.test_dashboard_units import _draft

OVERDUE = "vneid.activate"  # reviewed a year ago, every 180 days
SOON = "vneid.levels"  # states fees or laws: every 90 days, due in 10
UNCERTAIN = "pay.qr"
DISLIKED = "vneid.forgot_password"


@contextlib.asynccontextmanager
async def site_with_ages(database_url: str, tmp_path):
    """The shipped knowledge, with a local file that ages two entries and flags one uncertain."""
    local = tmp_path / "local.yaml"
    year_ago = vn_today() - dt.timedelta(days=365)
    soon = vn_today() - dt.timedelta(days=80)
    local.write_text(f"entries:\n  - id: {OVERDUE}\n    reviewed: {year_ago}\n"
                     f"  - id: {SOON}\n    reviewed: {soon}\n  - id: {UNCERTAIN}\n    uncertain: true\n",
                     encoding="utf-8")
    runtime = await Runtime.open(settings_for(database_url, knowledge_local_file=local))
    try:
        async with serve_app(create_app(runtime)) as url:
            site = Site(url, runtime)
            for name, role, ward in (("admin", "admin", None), ("can-bo", "staff", None),
                                     ("can-bo-a", "staff", "phuong-a"), ("xem", "viewer", None)):
                await site.account(name, role, ward)
            async with runtime.store.sessions.begin() as s:
                for days, faq_id in ((1, DISLIKED), (2, DISLIKED), (3, DISLIKED), (5, "dvc.hotline"),
                                     (40, "bot.help")):
                    s.add(Feedback(user_key=f"k{days}", faq_id=faq_id, helpful=False,
                                   created_at=utcnow() - dt.timedelta(days=days)))
            try:
                yield site
            finally:
                await site.close()
    finally:
        await runtime.close()


def order(html: str) -> list[str]:
    return re.findall(r'<tr data-entry="([^"]+)"', html)


def row(html: str, entry_id: str) -> str:
    return html.split(f'<tr data-entry="{entry_id}"')[1].split("</tr>")[0]


async def test_review_list_sorts_marks_reviewed_and_suspends(database_url, tmp_path):
    async with site_with_ages(database_url, tmp_path) as site:
        viewer = await site.client("xem")
        page = await viewer.get("/dashboard/kb/review")
        assert page.status == 200 and "Cần rà soát" in page.text
        listed = order(page.text)
        assert listed[0] == OVERDUE and {SOON, UNCERTAIN, DISLIKED, "dvc.hotline"} <= set(listed)
        assert "bot.help" not in listed  # its 👎 is older than 30 days, and it is not due
        assert "Quá hạn 185 ngày" in row(page.text, OVERDUE) and "Còn 10 ngày" in row(page.text, SOON)
        assert "Chưa chắc chắn" in row(page.text, UNCERTAIN) and 'class="num bad">3<' in row(page.text, DISLIKED)
        assert "Đã rà soát</button>" not in page.text  # a viewer only reads
        assert order((await viewer.get("/dashboard/kb/review?sort=down")).text)[:2] == [DISLIKED, "dvc.hotline"]
        by_uncertain = await viewer.get("/dashboard/kb/review?sort=uncertain")
        leading = []  # the uncertain entries come first (several hedged entries ship in the KB)
        for entry_id in order(by_uncertain.text):
            if "Chưa chắc chắn" not in row(by_uncertain.text, entry_id):
                break
            leading.append(entry_id)
        assert UNCERTAIN in leading and len(leading) < len(order(by_uncertain.text))
        everything = order((await viewer.get("/dashboard/kb/review?sort=id&show=all")).text)
        assert everything == sorted(everything) and len(everything) == len(site.runtime.knowledge.kb)
        refused = await viewer.post(f"/dashboard/kb/entry/{OVERDUE}/reviewed", {}, csrf_from="/dashboard/kb/review")
        assert refused.status == 403

        home = await viewer.get("/dashboard")
        assert "Bản tin rà soát kho kiến thức" in home.text
        overdue_list = home.text.split('<ul class="overdue">')[1].split("</ul>")[0]
        assert OVERDUE in overdue_list and SOON not in overdue_list
        assert f"{DISLIKED}</code>: 3 👎" in home.text  # the digest counts the last 7 days

        staff = await site.client("can-bo")
        no_csrf = await staff.post(f"/dashboard/kb/entry/{OVERDUE}/reviewed", {"back": "/dashboard/kb/review"})
        assert no_csrf.status == 403
        done = await staff.post(f"/dashboard/kb/entry/{OVERDUE}/reviewed",
                                {"back": "/dashboard/kb/review?sort=due", "source": "https://vneid.gov.vn/kich-hoat"},
                                csrf_from="/dashboard/kb/review")
        assert done.url.endswith("/dashboard/kb/review?sort=due") and "Đã ghi nhận rà soát" in done.text
        assert OVERDUE not in order(done.text)  # due again in 180 days
        served = site.runtime.knowledge.kb.get(OVERDUE)
        assert served.reviewed == vn_today() and served.source.startswith("https://vneid.gov.vn/kich-hoat; ")
        bad = await staff.post(f"/dashboard/kb/entry/{SOON}/reviewed", {"source": "javascript:alert(1)"},
                               csrf_from="/dashboard/kb/review")
        assert "địa chỉ http(s)://" in bad.text and SOON in order((await staff.get("/dashboard/kb/review")).text)
        ward_staff = await site.client("can-bo-a")
        ward_try = await ward_staff.post(f"/dashboard/kb/entry/{SOON}/reviewed", {},
                                         csrf_from=f"/dashboard/kb/entry/{SOON}")
        assert "chỉ tài khoản không giới hạn" in ward_try.text
        missing = await staff.post("/dashboard/kb/entry/khong.co/reviewed", {}, csrf_from="/dashboard/kb/review")
        assert missing.status == 404

        # Suspension: citizens get a notice and the hand-off instead of the entry, then the entry again.
        citizen = await site.client()
        answer = (await citizen.chat("quên mật khẩu vneid"))["replies"][0]
        assert answer["kind"] == "answer" and re.search(r"\nNguồn: [a-z.]+ · cập nhật \d\d/\d\d/\d{4}\n", answer["text"])
        stopped = await staff.post(f"/dashboard/kb/entry/{DISLIKED}/suspend", {}, csrf_from=f"/dashboard/kb/entry/{DISLIKED}")
        assert "Đã tạm ngưng" in stopped.text and "Mục này đang tạm ngưng" in stopped.text
        notice = (await citizen.chat("quên mật khẩu vneid"))["replies"]
        assert len(notice) == 1 and "đang được cập nhật" in notice[0]["text"]
        assert [b["action"] for row_ in notice[0]["buttons"] for b in row_][0].startswith("human")
        assert "Đang tạm ngưng" in row((await staff.get("/dashboard/kb/review")).text, DISLIKED)
        await staff.post(f"/dashboard/kb/entry/{DISLIKED}/resume", {"back": "/dashboard/kb/review"},
                         csrf_from="/dashboard/kb/review")
        assert (await citizen.chat("quên mật khẩu vneid"))["replies"][0]["kind"] == "answer"

        statuses = await KbStatusQueries(site.runtime.store.sessions).statuses()
        assert statuses[OVERDUE].reviewed_by == "dashboard:can-bo" and not statuses[DISLIKED].suspended
        async with site.runtime.store.sessions() as s:
            audit = [(a.actor, a.action, a.target) for a in await s.scalars(
                select(AuditLog).where(AuditLog.action.like("kb.%")).order_by(AuditLog.id))]
        assert audit == [("dashboard:can-bo", "kb.review", OVERDUE), ("dashboard:can-bo", "kb.suspend", DISLIKED),
                         ("dashboard:can-bo", "kb.resume", DISLIKED)]


@pytest.mark.parametrize("source", [None, "Cán bộ xã/phường (bảng điều khiển)", "UBND phường"])
def test_a_dashboard_entry_needs_a_url_or_a_named_document(source, knowledge):
    assert SOURCE_NEEDED in problems_of(_draft(entry_source=source), knowledge.kb)
    assert problems_of(_draft(entry_source="Quyết định số 12/QĐ-UBND ngày 1/3/2026"), knowledge.kb) == []
