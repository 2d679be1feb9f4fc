"""Security and scoping of the dashboard over real HTTP: proxies, validation, exports, wards, sessions, cookies."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
import re
import unicodedata

import pytest
from sqlalchemy import func, select

from bot.dashboard.common import make_env
from bot.dashboard.overlay import entry_from_draft, merge
from bot.settings import ConfigurationError, load_settings
from bot.storage.dashboard_queries import DraftRow, StaffAccount
from bot.storage.models import AuditLog, FaqDraft, QuestionTriage, StaffSession
from knowledge.loader import KnowledgeBase
from knowledge.schema import Entry
from tests.dashboard_harness import PASSWORD, cheap_hash, running_site
from tests.test_dashboard_cli import cli
from tests.test_dashboard_pages import act, cluster_forms

CAT = "con mèo nhà tôi bỏ ăn hai hôm nay"


@pytest.fixture
async def site(database_url):
    async with running_site(database_url) as s:
        await s.account("admin", "admin")
        await s.account("lan", "staff", ward="phuong-a")
        await s.account("binh", "staff", ward="phuong-b")
        await s.account("xem", "viewer")
        yield s


async def count(site, model, *where) -> int:
    async with site.runtime.store.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --- client address behind a proxy ---------------------------------------------------------------
async def _fail_login(client, username: str, forwarded: str | None = None) -> int:
    page = await client.get("/dashboard/login")
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return (await client.post("/dashboard/login", {"csrf_token": page.csrf, "username": username,
                                                   "password": "sai-mat-khau"}, headers=headers)).status


async def test_per_address_login_limit_cannot_be_dodged_with_a_forged_forwarded_for(database_url):
    async with running_site(database_url, trust_proxy_headers=True, dashboard_login_max_failures=2) as site:
        await site.account("admin", "admin")
        attacker = await site.client()
        # Each try claims another origin in front; the proxy appends the real one (last entry).
        statuses = [await _fail_login(attacker, f"user{i}", f"10.9.{i}.1, 203.0.113.7") for i in range(8)]
        assert statuses == [401] * 8  # 2 per account, but 8 accounts: only the per-address limit can stop this
        page = await attacker.get("/dashboard/login")
        blocked = await attacker.post("/dashboard/login", {"csrf_token": page.csrf, "username": "admin",
                                                           "password": PASSWORD},
                                      headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
        assert blocked.status == 429  # even the right password, from this address
        async with site.runtime.store.sessions() as s:
            from bot.storage.models import LoginAttempt
            ips = set(await s.scalars(select(LoginAttempt.ip)))
        assert ips == {"203.0.113.7"}
        # Another citizen behind the same proxy (another last entry) is not locked out.
        other = await site.client()
        page = await other.get("/dashboard/login")
        ok = await other.post("/dashboard/login", {"csrf_token": page.csrf, "username": "admin",
                                                   "password": PASSWORD}, headers={"X-Forwarded-For": "203.0.113.8"})
        assert ok.status == 200 and "/dashboard/unanswered" in ok.url


async def test_forwarded_for_is_ignored_without_trusted_proxy(site):
    client = await site.client()
    for i in range(3):
        assert await _fail_login(client, "nobody", f"198.51.100.{i}") == 401
    async with site.runtime.store.sessions() as s:
        from bot.storage.models import LoginAttempt
        assert set(await s.scalars(select(LoginAttempt.ip))) == {"127.0.0.1"}


async def test_web_chat_flood_guard_uses_the_proxy_seen_address(database_url):
    async with running_site(database_url, trust_proxy_headers=True, flood_limit_per_minute=1) as site:
        statuses = []
        for i in range(5):  # fresh cookie and forged first entry each time
            client = await site.client()
            async with client.http.post(site.url + "/chat/api/message", json={"text": f"xin chào {i}"},
                                        headers={"X-Forwarded-For": f"10.0.0.{i}, 203.0.113.9"}) as resp:
                statuses.append(resp.status)
        assert statuses == [200, 200, 200, 429, 429]


# --- knowledge edits and links -----------------------------------------------------------------------
ENTRY_FORM = {"op": "save", "title": "Thẻ thư viện phường", "category": "dvc", "entry_id": "dvc.local_the_thu_vien",
              "answer": "Bạn đến thư viện phường, mang theo căn cước.", "questions": "làm thẻ thư viện ở đâu",
              "links": "https://dichvucong.gov.vn", "keywords": "", "related": "", "entry_source": "Thông báo của UBND phường"}


async def test_editing_a_published_entry_is_checked_before_citizens_get_it(site):
    admin = await site.client("admin")
    page = await admin.post("/dashboard/kb/drafts/new", ENTRY_FORM, csrf_from="/dashboard/kb/drafts/new")
    draft_id = int(re.search(r"/dashboard/kb/drafts/(\d+)", page.url).group(1))
    here = f"/dashboard/kb/drafts/{draft_id}"
    assert "Đã xuất bản" in (await admin.post(f"{here}/publish", {}, csrf_from=here)).text
    for bad in ("javascript:alert(document.cookie)", "http://dichvucong.gov.vn", "data:text/html,x"):
        refused = await admin.post(here, {**ENTRY_FORM, "links": bad, "answer": "Nội dung đã bị sửa sai."},
                                   csrf_from=here)
        assert "Chưa lưu" in refused.text and "https://" in refused.text, bad
    short = await admin.post(here, {**ENTRY_FORM, "answer": "ngắn"}, csrf_from=here)
    assert "Chưa lưu" in short.text
    entry = site.runtime.knowledge.kb.get("dvc.local_the_thu_vien")
    assert entry.links == ["https://dichvucong.gov.vn"] and "căn cước" in entry.answer  # nothing of it was kept
    async with site.runtime.store.sessions() as s:
        row = await s.get(FaqDraft, draft_id)
    assert row.links == ["https://dichvucong.gov.vn"] and row.state == "published"
    good = await admin.post(here, {**ENTRY_FORM, "answer": "Bạn đến thư viện phường vào buổi sáng."}, csrf_from=here)
    assert "Đã lưu" in good.text
    assert "buổi sáng" in site.runtime.knowledge.kb.get("dvc.local_the_thu_vien").answer


def test_local_entries_accept_only_https_links_and_pages_link_only_https():
    from bot.dashboard.common import is_https_url

    data = dict(id="dvc.x", category="dvc", title="Thử", questions=["q"], answer="Câu trả lời đủ dài.",
                source="UBND", reviewed="2026-01-01")
    row = DraftRow(id=1, kind="entry", state="published", source="manual", entry_id="dvc.x", category="dvc",
                   title="Thử", question="", answer="Câu trả lời đủ dài.", questions=["q"], entry_source="UBND")
    assert entry_from_draft(dataclasses.replace(row, links=["https://dichvucong.gov.vn"]))
    for bad in ("javascript:alert(1)", "http://x.vn", "https://x.vn/a b"):
        with pytest.raises(ValueError, match="https://"):
            entry_from_draft(dataclasses.replace(row, links=[bad]))
    # A published row that is broken anyway (written before this check) is left out of what citizens get.
    kb, problems = merge(KnowledgeBase([]), [dataclasses.replace(row, links=["javascript:alert(1)"])])
    assert kb.get("dvc.x") is None and "https://" in problems[0]
    assert is_https_url("https://dichvucong.gov.vn/p?a=1")
    assert not any(map(is_https_url, ["javascript:alert(1)", "http://x", "https://", 'https://x"onclick=', None]))
    # The entry page makes a link only of https addresses, whatever reaches it.
    entry = Entry.model_construct(**{**data, "reviewed": dt.date(2026, 1, 1), "links": ["javascript:alert(1)", "https://vneid.gov.vn"], "related": [],
                                     "keywords": [], "wards": []})
    html = make_env().get_template("kb_entry.html").render(
        entry=entry, usage={"matched": 0, "up": 0, "down": 0}, variants={}, kb=None, shipped=True, drafts=[],
        viewer=StaffAccount(1, "a", "viewer", None), nav=[], ward_name=str, usage_days=90, csrf_token="")
    assert 'href="https://vneid.gov.vn"' in html and 'href="javascript' not in html
    assert "javascript:alert(1)" in html  # shown as text, so staff can see and fix it


# --- exports -------------------------------------------------------------------------------------------
async def test_exports_neutralise_spreadsheet_formulas(database_url):
    async with running_site(database_url, wards="phuong-a:=1+2,phuong-b:Phường B") as site:
        await site.account("admin", "admin")
        planted = ('=HYPERLINK("https://evil.example","bấm")', "+1 hỏi gì", "@SUM(1)", "-2+3",
                   '  =HYPERLINK("https://evil.example")', "＝1+2", "＋1", "－2", "＠SUM(1)", "\u200b=1+1",
                   "\u00a0\u3000=2+2")
        for text in planted:
            await site.seed_question(text, ward="phuong-a")
        admin = await site.client("admin")
        for path in ("/dashboard/export/questions.csv", "/dashboard/export/unanswered.csv"):
            _status, body, _ = await admin.raw(path)
            cells = [c for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))) for c in row]
            # What a spreadsheet reads as a formula: the first visible character, full-width folded.
            risky = [c for c in cells
                     if unicodedata.normalize("NFKC", c.lstrip(" \t\u00a0\u3000\u200b"))[:1] in ("=", "+", "-", "@")]
            assert risky == [], (path, risky)
            assert "'=HYPERLINK(\"https://evil.example\",\"bấm\")" in cells
            if path.endswith("questions.csv"):  # every question as typed
                assert "'＝1+2" in cells and "'  =HYPERLINK(\"https://evil.example\")" in cells, cells
        from openpyxl import load_workbook

        _status, body, _ = await admin.raw("/dashboard/report.xlsx?period=custom&from=2000-01-01&to=2100-01-01")
        cell = load_workbook(io.BytesIO(body)).active["A5"]
        assert cell.value == "=1+2" and cell.data_type == "s"  # shown as typed, never calculated


# --- ward scoping ------------------------------------------------------------------------------------
async def test_ward_triage_applies_to_that_ward_only(site):
    await site.seed_question(CAT, ward="phuong-a")
    await site.seed_question(CAT, ward="phuong-b")
    lan, binh, admin = await site.client("lan"), await site.client("binh"), await site.client("admin")
    page = await lan.get("/dashboard/unanswered")
    done = await act(lan, "out_of_scope", cluster_forms(page.text, "con mèo"), back="")
    assert "Đã đánh dấu ngoài phạm vi" in done.text
    assert "con mèo" not in (await lan.get("/dashboard/unanswered?fragment=1")).text
    assert "con mèo" in (await binh.get("/dashboard/unanswered?fragment=1")).text  # phuong-b still has to decide
    everyone = await admin.get("/dashboard/unanswered?fragment=1")
    assert "1×</span> " + CAT in everyone.text  # only phuong-b's ask is still open
    assert "Phường B (1)" in everyone.text and "Phường A" not in everyone.text
    assert "con mèo" not in (await binh.get("/dashboard/unanswered?view=closed")).text
    closed = await admin.get("/dashboard/unanswered?view=closed")
    row = next(r for r in closed.text.split("<tr>") if CAT in r)
    assert "Phường A" in row and re.findall(r'<td class="num">(\d+)</td>', row) == ["0", "1"]  # its ward's asks only

    # An admin's decision covers every ward; a ward account cannot undo it.
    page = await admin.get("/dashboard/unanswered")
    await act(admin, "resolved", cluster_forms(page.text, "con mèo"), back="")
    assert "con mèo" not in (await binh.get("/dashboard/unanswered?fragment=1")).text
    closed = await binh.get("/dashboard/unanswered?view=closed")
    row = next(r for r in closed.text.split("<tr>") if CAT in r)
    assert "Mọi xã/phường" in row and 'value="reopen"' not in row
    async with site.runtime.store.sessions() as s:
        key = (await s.scalars(select(QuestionTriage.key).where(QuestionTriage.ward.is_(None)))).one()
    refused = await binh.post("/dashboard/unanswered/action", {"action": "reopen", "key": key},
                              csrf_from="/dashboard/unanswered")
    assert "Không mở lại được" in refused.text
    assert await count(site, QuestionTriage) == 2
    # lan may reopen her ward's decision.
    async with site.runtime.store.sessions() as s:
        key = (await s.scalars(select(QuestionTriage.key).where(QuestionTriage.ward == "phuong-a"))).one()
    await lan.post("/dashboard/unanswered/action", {"action": "reopen", "key": key}, csrf_from="/dashboard/unanswered")
    assert await count(site, QuestionTriage) == 1


async def test_ward_account_link_goes_to_review_before_changing_answers(site):
    await site.seed_question(CAT, ward="phuong-a")
    lan = await site.client("lan")
    page = await lan.get("/dashboard/unanswered")
    done = await act(lan, "link", cluster_forms(page.text, "con mèo"), entry_id="bot.human", back="")
    assert "quản trị viên duyệt" in done.text
    assert site.runtime.knowledge.matcher.match(CAT).decision.value == "fallback"  # not live yet
    assert CAT not in site.runtime.knowledge.kb.get("bot.human").questions
    async with site.runtime.store.sessions() as s:
        draft = (await s.scalars(select(FaqDraft))).one()
    assert (draft.kind, draft.state, draft.ward, draft.questions) == ("variants", "review", "phuong-a", [CAT])
    listed = await lan.get("/dashboard/unanswered")
    assert f"Đang soạn bản nháp #{draft.id}" in listed.text  # still listed until reviewed

    admin = await site.client("admin")
    here = f"/dashboard/kb/drafts/{draft.id}"
    assert "Đã xuất bản" in (await admin.post(f"{here}/publish", {}, csrf_from=here)).text
    result = site.runtime.knowledge.matcher.match(CAT)
    assert result.decision.value == "answer" and result.faq_id == "bot.human"
    async with site.runtime.store.sessions() as s:
        triage = (await s.scalars(select(QuestionTriage))).one()
    assert (triage.state, triage.faq_id, triage.ward) == ("linked", "bot.human", "phuong-a")


async def test_api_ask_is_limited_per_address(database_url):
    async with running_site(database_url, flood_limit_per_minute=2, trust_proxy_headers=True) as site:
        client = await site.client()

        async def ask(address: str) -> tuple[int, dict, dict]:
            async with client.http.post(site.url + "/api/ask", json={"text": "quên mật khẩu vneid"},
                                        headers={"X-Forwarded-For": address}) as resp:
                return resp.status, await resp.json(), dict(resp.headers)

        answers = [await ask("203.0.113.7") for _ in range(8)]
        assert [status for status, _, _ in answers] == [200] * 6 + [429] * 2  # three times the per-citizen limit
        _, body, headers = answers[-1]
        assert "quá nhiều câu hỏi" in body["error"] and headers["Retry-After"] == "60"
        assert (await ask("203.0.113.8"))[0] == 200  # another address is not limited


async def test_all_ward_staff_link_goes_to_review_with_the_drafts_content_checks(database_url):
    async with running_site(database_url) as site:
        await site.account("admin", "admin")
        await site.account("can-bo", "staff")  # a staff account for every ward
        await site.seed_question(CAT, ward="phuong-a")
        await site.seed_question("con mèo nhà tôi bỏ ăn hai hôm nay \u200b" + "x" * 9_990, ward="phuong-a")
        staff = await site.client("can-bo")
        page = await staff.get("/dashboard/unanswered")
        done = await act(staff, "link", cluster_forms(page.text, "con mèo"), entry_id="bot.human", back="")
        assert "quản trị viên duyệt" in done.text  # not live yet
        async with site.runtime.store.sessions() as s:
            draft = (await s.scalars(select(FaqDraft))).one()
        assert (draft.kind, draft.state, draft.ward) == ("variants", "review", None)
        assert draft.questions and all(len(q) <= 300 and "\u200b" not in q for q in draft.questions)
        assert not set(draft.questions) & set(site.runtime.knowledge.kb.get("bot.human").questions)

        # A wording with nothing readable (a draft edited to zero-width spaces) cannot be published.
        admin = await site.client("admin")
        here = f"/dashboard/kb/drafts/{draft.id}"
        async with site.runtime.store.sessions.begin() as s:
            row = await s.get(FaqDraft, draft.id)
            row.questions = ["\u200b" * 9_999]
        refused = await admin.post(f"{here}/publish", {}, csrf_from=here)
        assert "Đã xuất bản" not in refused.text and "chữ hoặc số đọc được" in refused.text
        assert "\u200b" * 10 not in "".join(site.runtime.knowledge.kb.get("bot.human").questions)
        # Saving a draft drops such lines.
        saved = await admin.post(here, {"questions": "\u200b\u200b\u200b\n" + CAT, "op": "save"}, csrf_from=here)
        assert saved.status == 200
        async with site.runtime.store.sessions() as s:
            assert (await s.get(FaqDraft, draft.id)).questions == [CAT]


async def test_ward_accounts_see_only_their_wards_versions_and_audit(site):
    await site.account("chi", "admin", ward="phuong-b")
    admin = await site.client("admin")
    for ward, text in (("phuong-a", "Một cửa phường A: số 1 Tạ Hiện."), ("phuong-b", "Một cửa phường B: số 9 Hàng Bè.")):
        draft = await admin.post("/dashboard/kb/entry/dvc.service_center/override", {},
                                 csrf_from="/dashboard/kb/entry/dvc.service_center")
        here = re.search(r"/dashboard/kb/drafts/\d+", draft.url).group(0)
        original = site.runtime.knowledge.kb.get("dvc.service_center")
        form = {"op": "save", "title": original.title, "category": original.category, "entry_id": original.id,
                "answer": text, "questions": "\n".join(original.questions), "links": "\n".join(original.links),
                "keywords": "", "related": "", "entry_source": "https://dichvucong.gov.vn", "wards": ward}
        await admin.post(here, form, csrf_from=here)
        await admin.post(f"{here}/publish", {}, csrf_from=here)
    lan = await site.client("lan")
    page = await lan.get("/dashboard/kb/entry/dvc.service_center")
    assert "Tạ Hiện" in page.text and "Hàng Bè" not in page.text
    assert "Tạ Hiện" in (await admin.get("/dashboard/kb/entry/dvc.service_center")).text
    assert "Hàng Bè" in (await admin.get("/dashboard/kb/entry/dvc.service_center")).text

    await site.client("binh")
    chi = await site.client("chi")
    audit = await chi.get("/dashboard/audit")
    assert audit.status == 200
    actors = set(re.findall(r"<td>(dashboard:[a-z]+)</td>", audit.text))
    assert actors == {"dashboard:binh", "dashboard:chi"}  # not lan's or the central admin's actions
    assert {"dashboard:admin", "dashboard:lan"} <= set(re.findall(r"<td>(dashboard:[a-z]+)</td>",
                                                                  (await admin.get("/dashboard/audit")).text))


# --- ids, roles ---------------------------------------------------------------------------------------------
async def test_ids_too_large_for_the_database_are_not_found(site):
    admin = await site.client("admin")
    for path in ("/dashboard/kb/drafts/99999999999999999999999", "/dashboard/kb/drafts/2147483648",
                 "/dashboard/handoffs/99999999999999999999999", "/dashboard/handoffs/2147483648"):
        assert (await admin.get(path)).status == 404, path
    token = (await admin.get("/dashboard/kb")).csrf
    for path in ("/dashboard/kb/drafts/2147483648/publish", "/dashboard/kb/drafts/99999999999999999999999",
                 "/dashboard/handoffs/2147483648/reply", "/dashboard/handoffs/2147483648/close"):
        assert (await admin.post(path, {"csrf_token": token, "text": "x"})).status == 404, path


async def test_viewer_cannot_use_knowledge_actions(site):
    store = site.runtime.store
    user = await store.users.touch("web", "abc")
    handoff = await store.handoffs.open(user, "", None)
    await store.handoffs.add_message(handoff.id, "citizen", "hỏi gì đó")
    await store.handoffs.add_message(handoff.id, "team", "Trả lời của cán bộ phường.")
    draft_id = await site.queries.create_draft("dashboard:admin", "manual", kind="entry", state="draft",
                                               title="Bản nháp", answer="Nội dung ban đầu.")
    xem = await site.client("xem")
    assert (await xem.get("/dashboard/kb/drafts/new")).status == 403
    page = await xem.get(f"/dashboard/kb/drafts/{draft_id}")
    assert page.status == 200 and 'name="op"' not in page.text and "<fieldset disabled" in page.text
    kb_page = await xem.get("/dashboard/kb/entry/vneid.forgot_password")
    assert "/override" not in kb_page.text and "+ Soạn mục mới" not in kb_page.text
    token = kb_page.csrf
    for path, data in (("/dashboard/kb/drafts/new", ENTRY_FORM), (f"/dashboard/kb/drafts/{draft_id}", ENTRY_FORM),
                       ("/dashboard/kb/entry/vneid.forgot_password/override", {}),
                       (f"/dashboard/handoffs/{handoff.id}/draft", {}),
                       (f"/dashboard/kb/drafts/{draft_id}/publish", {})):
        refused = await xem.post(path, {**data, "csrf_token": token})
        assert refused.status == 403 and "không có quyền" in refused.text, path
    assert await count(site, FaqDraft) == 1
    async with store.sessions() as s:
        assert (await s.get(FaqDraft, draft_id)).answer == "Nội dung ban đầu."


# --- sessions and accounts ------------------------------------------------------------------------------------
async def test_password_change_and_disable_end_sessions(site):
    env: dict[str, str] = {}

    def staff_cli(*args: str):  # the CLI runs its own event loop, as from a shell
        return asyncio.to_thread(cli, env, "staff", *args)

    lan = await site.client("lan")
    assert (await lan.get("/dashboard/kb")).status == 200
    await site.queries.upsert_staff("lan", cheap_hash("mat-khau-moi-2026"), "staff", "phuong-a")
    assert "/dashboard/login" in (await lan.get("/dashboard/kb")).url  # the old session is gone
    assert await count(site, StaffSession) == 0

    admin = await site.client("admin")
    env.update(DATABASE_URL=site.runtime.settings.database_url, USER_KEY_SECRET="test-secret")
    code, out, _ = await staff_cli("disable", "--username", "Admin")
    assert code == 0 and "disabled" in out
    assert "/dashboard/login" in (await admin.get("/dashboard/kb")).url
    again = await site.client()
    refused = await again.login("admin")
    assert refused.status == 401
    code, out, _ = await staff_cli("list")
    assert re.search(r"^admin .* disabled$", out, re.M)
    code, out, _ = await staff_cli("enable", "--username", "admin")
    assert code == 0
    await site.client("admin")  # can sign in again
    code, out, _ = await staff_cli("remove", "--username", "admin")
    assert code == 0 and "removed" in out
    assert (await (await site.client()).login("admin")).status == 401
    code, _, err = await staff_cli("remove", "--username", "admin")
    assert code == 1 and "no account" in err
    async with site.runtime.store.sessions() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.target == "admin")))
    assert {"staff.disable", "staff.enable", "staff.remove"} <= set(actions)


def test_staff_add_refuses_a_ward_when_no_wards_are_configured(tmp_path):
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.sqlite3", "USER_KEY_SECRET": "x", "WARDS": ""}
    code, _, err = cli(env, "staff", "add", "--username", "lan", "--role", "staff",
                       "--ward", "phuong-khong-co", stdin="mot-mat-khau-dai\n")
    assert code == 2 and "WARDS is empty" in err


# --- cookies and framing ----------------------------------------------------------------------------
def _set_cookies(resp) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in resp.headers.getall("Set-Cookie", [])}


async def test_flash_and_chat_cookies_follow_the_secure_setting(database_url):
    async with running_site(database_url, trust_proxy_headers=True) as site:  # auto: Secure when https
        await site.account("admin", "admin")
        admin = await site.client("admin")
        async with admin.http.post(site.url + "/dashboard/logout", allow_redirects=False,
                                   headers={"X-Forwarded-Proto": "https"},
                                   data={"csrf_token": (await admin.get("/dashboard/kb")).csrf}) as resp:
            cookies = _set_cookies(resp)
        assert resp.status == 303 and "Secure" in cookies["dvc_flash"] and "HttpOnly" in cookies["dvc_flash"]
        client = await site.client()
        async with client.http.get(site.url + "/chat", headers={"X-Forwarded-Proto": "https"}) as resp:
            cookie = _set_cookies(resp)["dvc_chat"]
        assert "Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie
        async with client.http.get(site.url + "/chat") as resp:  # plain http: no Secure (it would be dropped)
            cookie = _set_cookies(resp)["dvc_chat"]
        assert "Secure" not in cookie and "SameSite=Lax" in cookie
    async with running_site(database_url, dashboard_cookie_secure="false", trust_proxy_headers=True) as site:
        client = await site.client()
        async with client.http.get(site.url + "/chat", headers={"X-Forwarded-Proto": "https"}) as resp:
            cookie = _set_cookies(resp)["dvc_chat"]
        assert "Secure" not in cookie and "SameSite=Lax" in cookie  # the operator said no


async def test_frame_ancestors_accepts_self_and_origins(database_url):
    async with running_site(database_url, webchat_frame_ancestors="'self' https://phuong-a.gov.vn") as site:
        client = await site.client()
        page = await client.get("/chat")
        assert page.headers["Content-Security-Policy"].endswith("frame-ancestors 'self' https://phuong-a.gov.vn")
        assert "frame-ancestors 'none'" in (await client.get("/dashboard/login")).headers["Content-Security-Policy"]
    assert load_settings(_env_file=None, webchat_frame_ancestors="self").webchat_frame_ancestors == "'self'"
    for bad in ("https://a.vn; script-src *", "https://a.vn,https://b.vn", "'unsafe-inline'"):
        with pytest.raises(ConfigurationError):
            load_settings(_env_file=None, webchat_frame_ancestors=bad)


# --- auto-refresh -------------------------------------------------------------------------------------
async def test_unanswered_refresh_keeps_following_today(site):
    admin = await site.client("admin")
    page = await admin.get("/dashboard/unanswered")
    refresh = re.search(r'data-refresh="([^"]+)"', page.text).group(1)
    assert "from=" not in refresh and "to=" not in refresh and "fragment=1" in refresh  # moves on at midnight
    chosen = await admin.get("/dashboard/unanswered?from=2026-01-01&to=2026-01-31&channel=web")
    refresh = re.search(r'data-refresh="([^"]+)"', chosen.text).group(1).replace("&amp;", "&")
    assert "from=2026-01-01" in refresh and "to=2026-01-31" in refresh and "channel=web" in refresh
