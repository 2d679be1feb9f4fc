"""Every dashboard page and action over real HTTP, on both databases."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import pytest
from sqlalchemy import select

from bot.dashboard import stats as stats_module
from bot.dashboard.overlay import OverlaySync
from bot.runtime import Runtime
from bot.storage.models import AuditLog, FaqDraft, Feedback, QuestionLog, QuestionTriage, User
from tests.dashboard_harness import running_site, settings_for
from tests.knowledge_cache import knowledge_for

CAT = "con mèo nhà tôi bỏ ăn hai hôm nay"


@pytest.fixture
async def site(database_url):
    async with running_site(database_url) as s:
        await s.account("admin", "admin")
        await s.account("can-bo", "staff")
        yield s


def cluster_forms(html: str, text: str) -> list[str]:
    """The hidden normalised forms of the cluster whose heading contains `text`."""
    block = next(b for b in html.split('<article class="cluster') if text in b.split("</h2>")[0].lower())
    return re.findall(r'name="form" value="([^"]+)"', block.split('class="link-form"')[1].split("</form>")[0])


async def act(client, action: str, forms: list[str], **extra) -> object:
    data = [("action", action), *[("form", f) for f in forms], *extra.items()]
    return await client.post("/dashboard/unanswered/action", data, csrf_from="/dashboard/unanswered")


async def test_unanswered_clusters_filters_and_triage(site):
    for text, ward, channel, days in [(CAT, "phuong-a", "telegram", 3), ("Con mèo nhà tôi bỏ ăn hai hôm nay?", "phuong-b", "web", 1),
                                      ("hai hôm nay con mèo nhà tôi bỏ ăn", "phuong-a", "web", 0),
                                      ("đăng ký nuôi chim cảnh ở đâu", "phuong-b", "telegram", 2),
                                      ("cách nấu phở bò", None, "telegram", 40)]:
        await site.seed_question(text, ward=ward, channel=channel, days_ago=days)
    await site.seed_question("quên mật khẩu vneid", ward="phuong-a", decision="answer",
                             faq_id="vneid.forgot_password", outcome="unhelpful")  # 👎 counts as unanswered
    await site.seed_question("quên mật khẩu vneid", ward="phuong-a", decision="answer", faq_id="vneid.forgot_password")
    admin = await site.client("admin")
    page = await admin.get("/dashboard/unanswered")
    assert page.status == 200
    headings = re.findall(r'<span class="badge count">(\d+)×</span> ([^<]+)</h2>', page.text)
    assert headings[0][0] == "3" and "con mèo" in headings[0][1].lower()  # biggest cluster first, reordered wording joined
    assert {h[1] for h in headings[1:]} == {"đăng ký nuôi chim cảnh ở đâu", "quên mật khẩu vneid"}
    assert "cách nấu phở" not in page.text  # older than the default 30 days
    first = page.text.split('<article class="cluster')[1]
    assert "Phường A (2)" in first and "Phường B (1)" in first and "Telegram (1)" in first and "Web (2)" in first
    assert "Trợ lý đoán" in first and "điểm" in first
    assert "vneid.forgot_password" in page.text.split("quên mật khẩu vneid</h2>")[1].split("</article>")[0]
    # Filters: ward, channel, dates.
    assert "chim cảnh" not in (await admin.get("/dashboard/unanswered?ward=phuong-a")).text
    web_only = await admin.get("/dashboard/unanswered?channel=web")
    assert "2×" in web_only.text and "chim cảnh" not in web_only.text
    old = await admin.get("/dashboard/unanswered?from=2000-01-01")
    assert "cách nấu phở bò" in old.text

    # Out of scope: the cluster leaves the queue; asking again in the same normalised form is only counted.
    staff = await site.client("can-bo")
    done = await act(staff, "out_of_scope", cluster_forms(page.text, "con mèo"), back="")
    assert "Đã đánh dấu ngoài phạm vi" in done.text and "con mèo" not in done.text.lower().split("<main")[1]
    await site.seed_question(CAT, ward="phuong-a")
    assert "con mèo" not in (await admin.get("/dashboard/unanswered?fragment=1")).text.lower()
    closed = await admin.get("/dashboard/unanswered?view=closed")
    rows = [r for r in closed.text.split("<tr>") if "con mèo" in r]
    assert len(rows) == 2  # one per normalised form of the cluster
    row = next(r for r in rows if f"<td>{CAT}</td>" in r)
    assert "Ngoài phạm vi" in row and "can-bo" in row
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["1", "3"]  # asked once since, three times in all

    # Resolved works the same; a different wording still shows up as new.
    await act(staff, "resolved", cluster_forms(page.text, "chim cảnh"), back="")
    await site.seed_question("cho hỏi nuôi chim cảnh thì đăng ký ở đâu vậy", ward="phuong-b")
    fragment = await admin.get("/dashboard/unanswered?fragment=1")  # what the page's auto-refresh fetches
    assert "cho hỏi nuôi chim cảnh" in fragment.text and "<html" not in fragment.text

    # Reopen puts it back.
    key = re.search(r'name="key" value="([0-9a-f]{64})"', (await admin.get("/dashboard/unanswered?view=closed"))
                    .text.split("con mèo")[1]).group(1)
    await staff.post("/dashboard/unanswered/action", {"action": "reopen", "key": key},
                     csrf_from="/dashboard/unanswered")
    assert "con mèo" in (await admin.get("/dashboard/unanswered")).text.lower()
    async with site.runtime.store.sessions() as s:
        actions = set(await s.scalars(select(AuditLog.action)))
    assert {"unanswered.out_of_scope", "unanswered.resolved", "unanswered.reopen"} <= actions

    # Forms never asked (or tampered) are refused.
    refused = await act(staff, "resolved", ["không ai hỏi câu này"], back="")
    assert "Không tìm thấy" in refused.text


async def test_link_cluster_to_entry_adds_variants_live(site):
    await site.seed_question(CAT, ward="phuong-a")
    matcher = site.runtime.knowledge.matcher
    assert matcher.match(CAT).decision.value == "fallback"
    staff = await site.client("admin")  # an admin's link is live at once; a staff account's is reviewed
    page = await staff.get("/dashboard/unanswered")
    bad = await act(staff, "link", cluster_forms(page.text, "con mèo"), entry_id="khong.ton_tai", back="")
    assert "Hãy chọn một mục có sẵn" in bad.text
    done = await act(staff, "link", cluster_forms(page.text, "con mèo"), entry_id="bot.human", back="")
    assert "Đã gắn câu hỏi" in done.text
    result = site.runtime.knowledge.matcher.match(CAT)  # live, no restart
    assert result.decision.value == "answer" and result.faq_id == "bot.human"
    assert CAT in site.runtime.knowledge.kb.get("bot.human").questions
    async with site.runtime.store.sessions() as s:
        overlay = (await s.scalars(select(FaqDraft))).one()
        triage = (await s.scalars(select(QuestionTriage))).one()
    assert (overlay.kind, overlay.state, overlay.entry_id, overlay.questions) == ("variants", "published", "bot.human", [CAT])
    assert (triage.state, triage.faq_id) == ("linked", "bot.human")
    entry = await staff.get("/dashboard/kb/entry/bot.human")
    assert CAT in entry.text and "Thêm cách hỏi" in entry.text
    # Citizens on the web chat get the answer.
    citizen = await site.client()
    reply = await citizen.chat(CAT)
    assert reply["replies"][0]["kind"] == "answer"


async def test_draft_review_publish_and_other_processes(site):
    await site.seed_question("làm thẻ hội viên câu lạc bộ dưỡng sinh phường ở đâu", ward="phuong-a")
    await site.seed_question("đăng ký câu lạc bộ dưỡng sinh phường ở đâu", ward="phuong-a")
    question = "đăng ký câu lạc bộ dưỡng sinh phường ở đâu"
    assert site.runtime.knowledge.matcher.match(question).decision.value == "fallback"
    staff = await site.client("can-bo")
    page = await staff.get("/dashboard/unanswered")
    forms = cluster_forms(page.text, "dưỡng sinh")
    draft_page = await act(staff, "draft", forms, back="")
    draft_id = int(re.search(r"/dashboard/kb/drafts/(\d+)", draft_page.url).group(1))
    assert "Đã tạo bản nháp" in draft_page.text and "dưỡng sinh" in draft_page.text  # questions prefilled
    assert "Cần có tiêu đề" in draft_page.text  # review checklist
    # The cluster stays listed, marked as being drafted.
    assert f"Đang soạn bản nháp #{draft_id}" in (await staff.get("/dashboard/unanswered")).text

    form = {"op": "submit", "title": "Câu lạc bộ dưỡng sinh", "category": "bdhvs", "entry_id": "",
            "answer": "Bạn đăng ký tại nhà văn hóa phường, sáng thứ Hai đến thứ Sáu.",
            "questions": f"{question}\nlàm thẻ hội viên câu lạc bộ dưỡng sinh phường ở đâu\ncâu lạc bộ dưỡng sinh",
            "links": "http://khong-an-toan.example", "keywords": "dưỡng sinh", "related": "",
            "entry_source": "Thông báo của UBND phường"}
    rejected = await staff.post(f"/dashboard/kb/drafts/{draft_id}", form, csrf_from=f"/dashboard/kb/drafts/{draft_id}")
    assert "Chưa gửi duyệt được" in rejected.text and "https://" in rejected.text
    form["links"] = "https://dichvucong.gov.vn"
    submitted = await staff.post(f"/dashboard/kb/drafts/{draft_id}", form,
                                 csrf_from=f"/dashboard/kb/drafts/{draft_id}")
    assert "Đã gửi duyệt" in submitted.text and "Chờ duyệt" in submitted.text
    refused = await staff.post(f"/dashboard/kb/drafts/{draft_id}/publish", {}, csrf_from="/dashboard/kb/drafts")
    assert refused.status == 403

    # A second process (no web server) watching the same database.
    other_settings = settings_for(site.runtime.settings.database_url)
    other = Runtime.build(other_settings, knowledge_for(other_settings))
    other_sync = OverlaySync(other, site.queries)
    await other_sync.refresh(force=True)

    admin = await site.client("admin")
    listing = await admin.get("/dashboard/kb/drafts?state=review")
    assert "Câu lạc bộ dưỡng sinh" in listing.text
    published = await admin.post(f"/dashboard/kb/drafts/{draft_id}/publish", {},
                                 csrf_from=f"/dashboard/kb/drafts/{draft_id}")
    assert "Đã xuất bản" in published.text
    entry_id = "bdhvs.local_cau_lac_bo_duong_sinh"
    assert site.runtime.knowledge.matcher.match(question).faq_id == entry_id  # this process: at once
    assert await other_sync.refresh() and other.knowledge.matcher.match(question).faq_id == entry_id
    reply = await (await site.client()).chat(question)
    assert "nhà văn hóa phường" in reply["replies"][0]["text"]
    closed = await admin.get("/dashboard/unanswered?view=closed")
    rows = [r for r in closed.text.split("<tr>") if "dưỡng sinh" in r]
    assert len(rows) == 2 and all(f"<td>Đã xử lý: <a href=\"/dashboard/kb/entry/{entry_id}\">" in r for r in rows)
    assert "dưỡng sinh" not in (await admin.get("/dashboard/unanswered?fragment=1")).text  # publishing closed it
    kb_page = await admin.get("/dashboard/kb?q=duong sinh")
    assert entry_id in kb_page.text and "Cục bộ" in kb_page.text

    # Staff may not edit a published entry; the admin can withdraw it.
    blocked = await staff.post(f"/dashboard/kb/drafts/{draft_id}", {**form, "op": "save"},
                               csrf_from=f"/dashboard/kb/drafts/{draft_id}")
    assert "chỉ quản trị viên sửa" in blocked.text
    await admin.post(f"/dashboard/kb/drafts/{draft_id}/unpublish", {}, csrf_from=f"/dashboard/kb/drafts/{draft_id}")
    assert site.runtime.knowledge.kb.get(entry_id) is None

    # Published by another process: picked up by polling (KB_RELOAD_SECONDS).
    await site.queries.update_draft(draft_id, "dashboard:other", "kb.publish", state="published")
    for _ in range(40):
        if site.runtime.knowledge.kb.get(entry_id) is not None:
            break
        await asyncio.sleep(0.1)
    assert site.runtime.knowledge.kb.get(entry_id) is not None
    async with site.runtime.store.sessions() as s:
        actions = set(await s.scalars(select(AuditLog.action)))
    assert {"kb.draft.create", "kb.draft.save", "kb.publish", "kb.unpublish"} <= actions


async def test_a_start_with_nothing_published_keeps_the_shipped_index(site):
    """Nothing published, reviewed or suspended: a process's first overlay sync serves the index it
    started with (building it again cost each start a second of CPU); a publication still
    replaces it (test_draft_review_publish_and_other_processes)."""
    other_settings = settings_for(site.runtime.settings.database_url)
    other = Runtime.build(other_settings, knowledge_for(other_settings))
    shipped = other.knowledge.matcher
    sync = OverlaySync(other, site.queries)
    assert not await sync.refresh(force=True)
    assert other.knowledge.matcher is shipped and sync.overlay_ids == set()


async def test_kb_browse_search_usage_and_ward_version(site):
    await site.account("lan", "staff", ward="phuong-a")
    for _ in range(3):
        await site.seed_question("quên mật khẩu vneid", ward="phuong-a", decision="answer",
                                 faq_id="vneid.forgot_password")
    async with site.runtime.store.sessions.begin() as s:
        for helpful in (False, False, True):
            s.add(Feedback(user_key="k", faq_id="vneid.forgot_password", helpful=helpful))
    admin = await site.client("admin")
    page = await admin.get("/dashboard/kb?sort=down")
    first = page.text.split("<tbody>")[1].split("</tr>")[0]
    assert "vneid.forgot_password" in first and '<td class="num">3</td>' in first and 'class="num bad">2' in first
    search = await admin.get("/dashboard/kb?q=mat khau")  # without diacritics
    assert "vneid.forgot_password" in search.text and "payments." not in search.text.split("<tbody>")[1][:200]
    trial = await admin.get("/dashboard/kb?ask=quen+mat+khau+vneid")
    assert "Kết quả:</strong> Trả lời" in trial.text
    entry = await admin.get("/dashboard/kb/entry/vneid.forgot_password")
    assert "Quên mật khẩu VNeID" in entry.text and "👎 2" in entry.text
    assert (await admin.get("/dashboard/kb/entry/khong.co")).status == 404

    # A ward account writes its ward's own version of a shipped entry.
    lan = await site.client("lan")
    draft = await lan.post("/dashboard/kb/entry/dvc.service_center/override", {},
                           csrf_from="/dashboard/kb/entry/dvc.service_center")
    draft_id = int(re.search(r"/dashboard/kb/drafts/(\d+)", draft.url).group(1))
    assert "Áp dụng cho: Phường A" in draft.text
    original = site.runtime.knowledge.kb.get("dvc.service_center")
    form = {"op": "save", "title": original.title, "category": original.category, "entry_id": original.id,
            "answer": "Bộ phận một cửa phường A: số 1 phố Tạ Hiện, sáng 7h30.", "questions": "\n".join(original.questions),
            "links": "\n".join(original.links), "keywords": ", ".join(original.keywords),
            "related": ", ".join(original.related), "entry_source": "Thông báo của UBND phường A", "wards": "phuong-b"}
    await lan.post(f"/dashboard/kb/drafts/{draft_id}", form, csrf_from=f"/dashboard/kb/drafts/{draft_id}")
    await admin.post(f"/dashboard/kb/drafts/{draft_id}/publish", {}, csrf_from=f"/dashboard/kb/drafts/{draft_id}")
    kb = site.runtime.knowledge.kb
    assert "Tạ Hiện" in kb.get("dvc.service_center", ward="phuong-a").answer
    assert "Tạ Hiện" not in kb.get("dvc.service_center", ward="phuong-b").answer  # other wards keep theirs
    assert "Tạ Hiện" not in kb.get("dvc.service_center").answer

    # A draft made in Telegram ("Tạo FAQ nháp") before drafts had a questions list is listed and editable.
    async with site.runtime.store.sessions.begin() as s:
        old = FaqDraft(source="handoff", question="hỏi về karaoke", answer="Liên hệ phòng văn hóa.",
                       created_by="telegram:5")
        s.add(old)
        await s.flush()
        old_id = old.id
    drafts = await admin.get("/dashboard/kb/drafts")
    assert f"#{old_id}" in drafts.text and "hỏi về karaoke" in drafts.text
    assert "Liên hệ phòng văn hóa." in (await admin.get(f"/dashboard/kb/drafts/{old_id}")).text
    new = await admin.get("/dashboard/kb/drafts/new")
    assert new.status == 200 and 'name="title"' in new.text


async def test_stats_report_and_exports(site):
    await site.account("lan", "staff", ward="phuong-a")
    for text, ward, decision, channel in [("quên mật khẩu vneid", "phuong-a", "answer", "telegram"),
                                          ("quên mật khẩu vneid", "phuong-b", "answer", "web"),
                                          ("mật khẩu", "phuong-a", "suggest", "web"),
                                          (CAT, "phuong-b", "fallback", "telegram")]:
        await site.seed_question(text, ward=ward, decision=decision, channel=channel,
                                 faq_id="vneid.forgot_password" if decision == "answer" else None)
    store = site.runtime.store
    user = await store.users.touch("web", "abc")
    await store.users.update(user.id, ward="phuong-a")
    await store.subscriptions.save(user.id, ward="phuong-a", topics=["vneid"], active=True)
    user = await store.users.get(user.id)
    qid = await store.questions.log(user, "gọi tôi số 0912345678 nhé", "goi toi so", "fallback", None, 3.0, [])
    await store.questions.add_feedback(user, None, "vneid.forgot_password", helpful=True)
    handoff = await store.handoffs.open(user, "", qid)
    await store.handoffs.mark_answered(handoff, "dashboard:admin")

    admin = await site.client("admin")
    page = await admin.get("/dashboard/stats")
    assert page.status == 200
    assert page.text.count('<svg class="chart"') >= 4 and "<script" not in page.text.split("</head>")[1]
    assert '<span class="big">5</span><span>câu hỏi</span>' in page.text
    assert "40,0%" in page.text  # two of five answered directly
    assert "1/1" in page.text and "Quên mật khẩu VNeID" in page.text
    web_only = await admin.get("/dashboard/stats?channel=web")
    assert '<span class="big">3</span><span>câu hỏi</span>' in web_only.text

    report = await admin.get("/dashboard/report")
    assert report.status == 200 and ("6 tháng đầu năm" in report.text or "Năm " in report.text)
    assert "Phường A" in report.text and "Phường B" in report.text and "Tổng cộng" in report.text
    custom = await admin.get("/dashboard/report?period=custom&from=2000-01-01&to=2100-01-01")
    assert "Từ 01/01/2000 đến 01/01/2100" in custom.text

    status, body, headers = await admin.raw("/dashboard/report.csv?period=custom&from=2000-01-01&to=2100-01-01")
    assert status == 200 and headers["Content-Type"].startswith("text/csv") and "attachment" in headers["Content-Disposition"]
    assert body.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == stats_module.COLUMNS
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["Phường A"][1] == "3" and by_name["Phường B"][1] == "2" and by_name["Tổng cộng"][1] == "5"
    assert by_name["Phường A"][14] == "1"  # subscribers

    from openpyxl import load_workbook

    status, body, headers = await admin.raw("/dashboard/report.xlsx?period=custom&from=2000-01-01&to=2100-01-01")
    assert status == 200 and "spreadsheetml" in headers["Content-Type"]
    sheet = load_workbook(io.BytesIO(body)).active
    assert [c.value for c in sheet[4]] == stats_module.COLUMNS
    assert sheet["A5"].value == "Phường A" and sheet["B5"].value == 3

    status, body, _ = await admin.raw("/dashboard/export/questions.csv")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == stats_module.QUESTION_COLUMNS and len(rows) == 6
    assert any("[SĐT]" in r[4] for r in rows) and not any("0912345678" in c for r in rows for c in r)
    assert "abc" not in body.decode("utf-8-sig")  # no platform ids in exports

    status, body, _ = await admin.raw("/dashboard/export/unanswered.csv")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == stats_module.UNANSWERED_COLUMNS
    assert {r[0] for r in rows[1:]} == {CAT, "gọi tôi số [SĐT] nhé"}

    lan = await site.client("lan")  # ward-limited: only phuong-a in the report and exports
    status, body, _ = await lan.raw("/dashboard/report.csv?period=custom&from=2000-01-01&to=2100-01-01")
    names = [r[0] for r in csv.reader(io.StringIO(body.decode("utf-8-sig")))][1:]
    assert names == ["Phường A", "Tổng cộng"]
    status, body, _ = await lan.raw("/dashboard/export/unanswered.csv")
    assert CAT not in body.decode("utf-8-sig")
    async with site.runtime.store.sessions() as s:
        actions = set(await s.scalars(select(AuditLog.action)))
        assert (await s.scalars(select(QuestionLog))).all()
        assert (await s.scalars(select(User))).all()
    assert {"export.report_csv", "export.report_xlsx", "export.questions_csv", "export.unanswered_csv"} <= actions
