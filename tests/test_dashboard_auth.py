"""Dashboard access over real HTTP: login, sessions, CSRF, throttling, headers, roles, ward scoping."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from yarl import URL

from bot.dashboard import auth
from bot.storage.models import AuditLog, FaqDraft, Handoff, LoginAttempt, QuestionTriage, User, utcnow
from tests.dashboard_harness import PASSWORD, running_site


@pytest.fixture
async def site(database_url):
    async with running_site(database_url) as s:
        await s.account("admin", "admin")
        await s.account("lan", "staff", ward="phuong-a")
        await s.account("xem", "viewer")
        yield s


async def audit_actions(site) -> list[str]:
    async with site.runtime.store.sessions() as s:
        return list(await s.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_password_hash_is_salted_scrypt_and_verifies():
    first, second = auth.hash_password("mot-mat-khau-dai"), auth.hash_password("mot-mat-khau-dai")
    assert first.startswith("scrypt$16384$8$1$") and first != second  # per-user salt
    assert auth.verify_password("mot-mat-khau-dai", first)
    assert not auth.verify_password("mot-mat-khau-sai", first)
    assert not auth.verify_password("x", "not-a-hash") and not auth.verify_password("x", "scrypt$1$2")
    assert auth.password_problem("ngan") and auth.password_problem("du-dai-roi-day") is None


async def test_login_session_cookie_headers_and_logout(site):
    client = await site.client()
    page = await client.get("/dashboard/stats?from=2026-01-01")
    assert page.status == 200 and "/dashboard/login?next=" in page.url  # unauthenticated: sent to log in
    assert "Đăng nhập" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"

    wrong = await client.post("/dashboard/login", {"csrf_token": page.csrf, "username": "admin", "password": "sai"})
    assert wrong.status == 401 and "không đúng" in wrong.text

    login_page = await client.get("/dashboard/login?next=/dashboard/stats")
    async with client.http.post(site.url + "/dashboard/login", allow_redirects=False, data={
            "csrf_token": login_page.csrf, "username": "Admin", "password": PASSWORD,
            "next": "/dashboard/stats"}) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/dashboard/stats"
        cookie = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith(auth.SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    stats = await client.get("/dashboard/stats")
    assert stats.status == 200 and "Thống kê" in stats.text
    assert stats.headers["Cache-Control"] == "no-store"
    async with site.runtime.store.sessions() as s:  # only a hash of the token is stored
        token = client.http.cookie_jar.filter_cookies(URL(site.url))[auth.SESSION_COOKIE].value
        from bot.storage.models import StaffSession
        stored = list(await s.scalars(select(StaffSession.token_hash)))
    assert token not in stored and auth.token_hash(token) in stored

    assert (await client.post("/dashboard/logout", {}, csrf_from="/dashboard/stats")).url.endswith("/dashboard/login")
    after = await client.get("/dashboard/kb")
    assert "/dashboard/login" in after.url
    assert {"login", "logout"} <= set(await audit_actions(site))

    # An open redirect through ?next= is refused.
    other = await site.client()
    page = await other.get("/dashboard/login?next=//evil.example/x")
    done = await other.post("/dashboard/login", {"csrf_token": page.csrf, "username": "xem", "password": PASSWORD,
                                                 "next": "https://evil.example/"})
    assert done.url.endswith("/dashboard/unanswered")


async def test_secure_cookie_behind_https_proxy(database_url):
    async with running_site(database_url, trust_proxy_headers=True) as site:
        await site.account("admin", "admin")
        client = await site.client()
        page = await client.get("/dashboard/login")
        async with client.http.post(site.url + "/dashboard/login", allow_redirects=False,
                                    headers={"X-Forwarded-Proto": "https"},
                                    data={"csrf_token": page.csrf, "username": "admin", "password": PASSWORD}) as resp:
            cookie = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith(auth.SESSION_COOKIE))
        assert "Secure" in cookie and "HttpOnly" in cookie


async def test_csrf_token_required_on_every_form(site):
    await site.seed_question("con mèo nhà tôi bỏ ăn", ward="phuong-a")
    admin = await site.client("admin")
    page = await admin.get("/dashboard/unanswered")
    form = page.text.split('name="form" value="')[1].split('"')[0]
    for token in (None, "sai-token"):
        data = [("action", "out_of_scope"), ("form", form)] + ([("csrf_token", token)] if token else [])
        refused = await admin.post("/dashboard/unanswered/action", data)
        assert refused.status == 403 and "không hợp lệ" in refused.text
    async with site.runtime.store.sessions() as s:
        assert (await s.scalars(select(QuestionTriage))).all() == []
    # A token from another session does not work either.
    other = await site.client("lan")
    foreign = (await other.get("/dashboard/unanswered")).csrf
    refused = await admin.post("/dashboard/unanswered/action", [("action", "resolved"), ("form", form),
                                                                ("csrf_token", foreign)])
    assert refused.status == 403
    # The login form has its own token (double-submit cookie).
    fresh = await site.client()
    bad = await fresh.post("/dashboard/login", {"username": "admin", "password": PASSWORD, "csrf_token": "x"})
    assert bad.status == 403
    # Unauthenticated POSTs change nothing and lead to the login page.
    anon = await fresh.post("/dashboard/unanswered/action", [("action", "resolved"), ("form", form)])
    assert "/dashboard/login" in anon.url


async def test_login_is_throttled_after_repeated_failures(site):
    client = await site.client()
    for _ in range(5):
        page = await client.get("/dashboard/login")
        failed = await client.post("/dashboard/login", {"csrf_token": page.csrf, "username": "lan", "password": "x"})
        assert failed.status == 401
    page = await client.get("/dashboard/login")
    blocked = await client.post("/dashboard/login", {"csrf_token": page.csrf, "username": "lan",
                                                     "password": PASSWORD})
    assert blocked.status == 429 and "quá nhiều lần" in blocked.text  # even the right password waits
    assert "login.throttled" in await audit_actions(site)
    await site.client("admin")  # other accounts are not locked out
    async with site.runtime.store.sessions.begin() as s:  # the pause ends after DASHBOARD_LOGIN_LOCK_MINUTES
        await s.execute(update(LoginAttempt).values(created_at=utcnow() - dt.timedelta(minutes=16)))
    await site.client("lan")
    async with site.runtime.store.sessions() as s:  # the record is kept: five failures, then the success
        rows = (await s.scalars(select(LoginAttempt.success).where(LoginAttempt.username == "lan")
                                .order_by(LoginAttempt.id))).all()
    assert rows == [False] * 5 + [True]


async def test_roles_and_ward_scoping(site):
    await site.seed_question("con mèo nhà tôi bỏ ăn", ward="phuong-a")
    await site.seed_question("xin giấy phép nuôi chim cảnh", ward="phuong-b")
    async with site.runtime.store.sessions.begin() as s:
        for ward, platform in (("phuong-a", "u1"), ("phuong-b", "u2")):
            user = User(channel="web", platform_id=platform, user_key=f"key-{platform}", ward=ward)
            s.add(user)
            await s.flush()
            s.add(Handoff(user_id=user.id, ward=ward, team_chat_id="", state="open"))
        s.add(FaqDraft(source="handoff", question="q b", answer="a b", state="draft", ward="phuong-b"))
    async with site.runtime.store.sessions() as s:
        ids = {h.ward: h.id for h in (await s.scalars(select(Handoff))).all()}
        draft_b = (await s.scalars(select(FaqDraft))).one().id

    viewer = await site.client("xem")
    for path in ("/dashboard/unanswered", "/dashboard/handoffs", f"/dashboard/handoffs/{ids['phuong-b']}",
                 "/dashboard/kb", "/dashboard/kb/drafts", f"/dashboard/kb/drafts/{draft_b}", "/dashboard/stats",
                 "/dashboard/report"):
        assert (await viewer.get(path)).status == 200, path
    page = await viewer.get("/dashboard/unanswered")
    assert "con mèo" in page.text and "chim cảnh" in page.text and 'value="out_of_scope"' not in page.text
    form = "con mèo nhà tôi bỏ ăn"
    refused = await viewer.post("/dashboard/unanswered/action", {"action": "resolved", "form": form},
                                csrf_from="/dashboard/unanswered")
    assert refused.status == 403 and "không có quyền" in refused.text
    refused = await viewer.post(f"/dashboard/handoffs/{ids['phuong-a']}/reply", {"text": "chào"},
                                csrf_from="/dashboard/handoffs")
    assert refused.status == 403
    assert (await viewer.get("/dashboard/audit")).status == 403  # admins only

    lan = await site.client("lan")  # staff limited to phuong-a
    page = await lan.get("/dashboard/unanswered?ward=phuong-b")
    assert "con mèo" in page.text and "chim cảnh" not in page.text  # the ward filter cannot be widened
    assert (await lan.get(f"/dashboard/handoffs/{ids['phuong-b']}")).status == 404
    assert (await lan.get(f"/dashboard/handoffs/{ids['phuong-a']}")).status == 200
    handoffs = await lan.get("/dashboard/handoffs")
    assert f"#{ids['phuong-a']}" in handoffs.text and f"#{ids['phuong-b']}<" not in handoffs.text
    assert (await lan.get(f"/dashboard/kb/drafts/{draft_b}")).status == 404
    stats = await lan.get("/dashboard/stats")
    assert '<span class="big">1</span><span>câu hỏi</span>' in stats.text  # phuong-b's question not counted
    # Staff cannot publish (review is an admin's step).
    refused = await lan.post(f"/dashboard/kb/drafts/{draft_b}/publish", {}, csrf_from="/dashboard/kb")
    assert refused.status == 403
