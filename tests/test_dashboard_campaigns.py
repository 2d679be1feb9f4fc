"""The Chiến dịch pages over real HTTP: create, preview, confirm, two-person approval, steer, progress, report."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from bot.campaigns.service import CampaignDraft, campaign_reply
from bot.localtime import VN_TZ
from bot.storage.models import AuditLog, Campaign
from tests.dashboard_harness import running_site

FORM = {"title": "Tuần lễ VNeID", "text": "Mời bà con mang căn cước tới nhà văn hóa lúc 8 giờ.",
        "link_label": "Cổng dịch vụ công", "link_url": "https://dichvucong.gov.vn", "image_url": "https://vneid.gov.vn/a.png",
        "topics": "vneid", "channel": "all", "when": "now", "send_at": "", "expires_at": ""}


@pytest.fixture
async def site(database_url):
    async with running_site(database_url, campaign_approval_threshold=1) as s:
        s.runtime.campaign_runner.scheduler.poll_seconds = 3600  # tests drive the sender themselves
        for name, role, ward in (("admin", "admin", None), ("lan", "staff", "phuong-a"), ("hoa", "staff", "phuong-a"),
                                 ("binh", "staff", "phuong-b"), ("xem", "viewer", None)):
            await s.account(name, role, ward)
        yield s


async def subscriber(site, ident: str, ward: str, topics: list[str], channel: str = "web") -> None:
    store = site.runtime.store
    user = await store.users.touch(channel, ident)
    await store.users.update(user.id, ward=ward)
    await store.subscriptions.save(user.id, ward=ward, topics=topics, active=True)


async def create(client, **changes) -> tuple[int, object]:
    page = await client.post("/dashboard/campaigns/new", {**FORM, **changes}, csrf_from="/dashboard/campaigns/new")
    found = re.search(r"/dashboard/campaigns/(\d+)$", page.url)
    assert found, page.text[:2000]
    return int(found.group(1)), page


async def op(client, campaign_id: int, name: str, csrf_from: str | None = None):
    here = f"/dashboard/campaigns/{campaign_id}"
    return await client.post(f"{here}/{name}", {}, csrf_from=csrf_from or here)


async def state_of(site, campaign_id: int) -> Campaign:
    return await site.runtime.campaigns.get(campaign_id)


def outbox_texts(replies: list[dict]) -> list[str]:
    return [r["text"] for r in replies]


async def test_create_preview_two_person_approval_send_and_report(site):
    for ident, ward, topics, channel in (("a" * 32, "phuong-a", ["vneid"], "web"), ("b" * 32, "phuong-a", [], "web"),
                                         ("77", "phuong-a", ["vneid"], "telegram"),
                                         ("c" * 32, "phuong-a", ["safety"], "web"),
                                         ("d" * 32, "phuong-b", ["vneid"], "web")):
        await subscriber(site, ident, ward, topics, channel)
    lan = await site.client("lan")
    form = await lan.get("/dashboard/campaigns/new")
    assert form.status == 200 and "<label>Tiêu đề <input name=\"title\"" in form.text
    assert 'name="wards"' not in form.text and "Phường A (tài khoản của bạn" in form.text

    bad = await lan.post("/dashboard/campaigns/new", {**FORM, "link_url": "javascript:alert(1)"},
                         csrf_from="/dashboard/campaigns/new")
    assert bad.status == 400 and "https://" in bad.text and 'value="Tuần lễ VNeID"' in bad.text  # input kept
    assert await site.runtime.campaigns.recent() == []

    campaign_id, page = await create(lan, wards="phuong-b")  # a ward account cannot aim elsewhere
    campaign = await state_of(site, campaign_id)
    assert campaign.state == "draft" and campaign.segment == {"wards": ["phuong-a"], "topics": ["vneid"]}
    assert "Đã lưu bản nháp" in page.text
    # The preview is the message citizens get (title, text, unsubscribe footer, button, image).
    expected = campaign_reply(campaign)
    preview = page.text.split('class="reply-preview"')[1].split("</div>")[0]
    assert f'<p class="text">{expected.text}</p>' in preview.replace("&#34;", '"')
    assert "Ngừng nhận tin" in preview and 'href="https://dichvucong.gov.vn"' in preview
    assert 'src="https://vneid.gov.vn/a.png"' in preview
    assert "img-src 'self' data: https:" in page.headers["Content-Security-Policy"]
    assert "3 người (đếm lúc này)" in page.text  # two web users and one Telegram user in phuong-a follow VNeID
    assert f'action="/dashboard/campaigns/{campaign_id}/confirm"' in page.text

    # Confirm: above the threshold it waits for a second person.
    confirmed = await op(lan, campaign_id, "confirm")
    assert "cần một cán bộ khác duyệt" in confirmed.text
    assert (await state_of(site, campaign_id)).state == "pending_approval"
    assert '/approve"' not in confirmed.text and "người tạo không tự duyệt được" in confirmed.text
    refused = await op(lan, campaign_id, "approve")
    assert "quy tắc hai người" in refused.text and (await state_of(site, campaign_id)).state == "pending_approval"
    xem = await site.client("xem")
    assert (await xem.get(f"/dashboard/campaigns/{campaign_id}")).status == 200  # viewers may look
    assert (await op(xem, campaign_id, "approve")).status == 403
    binh = await site.client("binh")
    assert (await binh.get(f"/dashboard/campaigns/{campaign_id}")).status == 404  # another ward's campaign
    assert (await op(binh, campaign_id, "approve", csrf_from="/dashboard/campaigns")).status == 404
    hoa = await site.client("hoa")
    async with hoa.http.post(f"{site.url}/dashboard/campaigns/{campaign_id}/approve", data={}) as resp:
        assert resp.status == 403  # no CSRF token
    assert (await state_of(site, campaign_id)).state == "pending_approval"
    approved = await op(hoa, campaign_id, "approve")
    assert "Đã duyệt" in approved.text
    campaign = await state_of(site, campaign_id)
    assert (campaign.state, campaign.approved_by) == ("scheduled", "hoa")
    assert f'data-refresh="/dashboard/campaigns/{campaign_id}?fragment=1"' in approved.text  # live progress

    assert await site.runtime.campaign_runner.run_once()
    campaign = await state_of(site, campaign_id)
    assert campaign.state == "done"
    for ident in ("a" * 32, "b" * 32):  # web citizens find it when they return to the chat
        citizen = await site.client()
        citizen.http.cookie_jar.update_cookies({"dvc_chat": ident})
        assert outbox_texts(await citizen.updates()) == [expected.text]
    progress = await lan.get(f"/dashboard/campaigns/{campaign_id}?fragment=1")
    assert "<html" not in progress.text
    counts = dict(re.findall(r'data-state="(\w+)">(\d+)</td>', progress.text))
    assert counts == {"pending": "0", "sending": "0", "sent": "2", "failed": "0", "blocked": "0", "skipped": "1",
                      "uncertain": "0"}
    report = await lan.get(f"/dashboard/campaigns/{campaign_id}")
    final = report.text.split("Báo cáo kết quả")[1]
    assert "<dd>2 (66,7%)</dd>" in final and "Kênh telegram chưa được bật trên máy chủ: 1" in final
    assert 'data-refresh' not in report.text and '/cancel"' not in report.text  # finished: nothing to steer
    listing = await lan.get("/dashboard/campaigns")
    row = listing.text.split(f'href="/dashboard/campaigns/{campaign_id}">#')[1].split("</tr>")[0]
    assert "Đã gửi xong" in row and '<td class="num">2</td>' in row and "lan" in row
    async with site.runtime.store.sessions() as s:
        audit = {(a.actor, a.action) for a in await s.scalars(select(AuditLog).where(AuditLog.target == str(campaign_id)))}
    assert {("lan", "campaign.create"), ("lan", "campaign.confirm"),
            ("hoa", "campaign.approve")} <= audit  # staff usernames, as on the CLI
    await site.account("chi", "admin", ward="phuong-a")  # a ward admin sees their ward's staff at work
    ward_audit = (await (await site.client("chi")).get("/dashboard/audit")).text
    assert "<td>lan</td>" in ward_audit and "<td>hoa</td>" in ward_audit


async def test_schedule_pause_resume_cancel(site):
    await subscriber(site, "e" * 32, "phuong-b", [])
    admin = await site.client("admin")
    past = (dt.datetime.now(VN_TZ) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    late = await admin.post("/dashboard/campaigns/new", {**FORM, "when": "at", "send_at": past},
                            csrf_from="/dashboard/campaigns/new")
    assert late.status == 400 and "thời điểm gửi đã qua" in late.text
    when = (dt.datetime.now(VN_TZ) + dt.timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
    expiry = (when + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    inverted = await admin.post("/dashboard/campaigns/new", {**FORM, "when": "at", "send_at": expiry,
                                                             "expires_at": when.strftime("%Y-%m-%dT%H:%M")},
                                csrf_from="/dashboard/campaigns/new")
    assert inverted.status == 400 and "thời hạn phải sau thời điểm gửi" in inverted.text
    campaign_id, page = await create(admin, wards="phuong-b", topics="", when="at",
                                     send_at=when.strftime("%Y-%m-%dT%H:%M"), expires_at=expiry)
    campaign = await state_of(site, campaign_id)
    assert campaign.scheduled_at == when.astimezone(dt.UTC)  # the form is Vietnam time
    assert campaign.expires_at == when.astimezone(dt.UTC) + dt.timedelta(hours=1)
    assert when.strftime("%d/%m/%Y 08:00") in page.text
    assert "Đã xác nhận" in (await op(admin, campaign_id, "confirm")).text  # one recipient: no approval needed
    assert (await state_of(site, campaign_id)).state == "scheduled"
    assert not await site.runtime.campaign_runner.run_once()  # not due yet
    assert "Đã tạm dừng" in (await op(admin, campaign_id, "pause")).text
    assert (await state_of(site, campaign_id)).state == "paused"
    assert "Đã cho gửi tiếp" in (await op(admin, campaign_id, "resume")).text
    binh = await site.client("binh")  # phuong-b's own staff may steer it too
    cancelled = await op(binh, campaign_id, "cancel")
    assert "Đã hủy chiến dịch" in cancelled.text and (await state_of(site, campaign_id)).state == "cancelled"
    again = await op(admin, campaign_id, "resume")
    assert "Không thực hiện được" in again.text and (await state_of(site, campaign_id)).state == "cancelled"
    assert "Báo cáo kết quả" in again.text and "Không có tin nào được gửi" in again.text


async def test_campaign_lists_and_pages_are_ward_scoped_and_viewers_read_only(site):
    service = site.runtime.campaigns
    ids = {}
    for key, wards in (("a", ["phuong-a"]), ("b", ["phuong-b"]), ("ab", ["phuong-a", "phuong-b"]), ("all", [])):
        ids[key] = (await service.create(CampaignDraft(title=f"Tin {key}", text="Nội dung thông báo.",
                                                       created_by="admin", wards=wards), confirm=False)).id
    lan = await site.client("lan")
    listing = await lan.get("/dashboard/campaigns")
    assert re.findall(r">Tin (\w+)</a>", listing.text) == ["a"]
    for key in ("b", "ab", "all"):
        assert (await lan.get(f"/dashboard/campaigns/{ids[key]}")).status == 404
        assert (await op(lan, ids[key], "cancel", csrf_from="/dashboard/campaigns")).status == 404
    assert "Đã hủy" in (await op(lan, ids["a"], "cancel")).text
    admin = await site.client("admin")
    assert re.findall(r">Tin (\w+)</a>", (await admin.get("/dashboard/campaigns")).text) == ["all", "ab", "b", "a"]
    xem = await site.client("xem")
    page = await xem.get("/dashboard/campaigns")
    assert page.status == 200 and "/dashboard/campaigns/new" not in page.text
    assert (await xem.get("/dashboard/campaigns/new")).status == 403
    token = page.csrf
    refused = await xem.post("/dashboard/campaigns/new", {**FORM, "csrf_token": token})
    assert refused.status == 403 and len(await service.recent()) == 4
    admin_token = (await admin.get("/dashboard/campaigns")).csrf
    for path in ["/dashboard/campaigns/new", *(f"/dashboard/campaigns/{ids['b']}/{name}" for name in
                                             ("confirm", "pause", "cancel"))]:
        for bad in ("", "x" * 43, token):  # missing, forged, another session's
            refused = await admin.post(path, {**FORM, "csrf_token": bad} if bad else FORM)
            assert refused.status == 403 and "không hợp lệ" in refused.text, (path, bad)
    assert await admin.post(f"/dashboard/campaigns/{ids['b']}/cancel", {"csrf_token": admin_token})
    assert len(await service.recent()) == 4 and (await state_of(site, ids["b"])).state == "cancelled"
    detail = await xem.get(f"/dashboard/campaigns/{ids['all']}")  # a draft: staff would see buttons
    assert detail.status == 200 and "/cancel" not in detail.text and "/confirm" not in detail.text
    for path in ("/dashboard/campaigns/99999999999999999999", "/dashboard/campaigns/2147483648",
                 "/dashboard/campaigns/999"):
        assert (await admin.get(path)).status == 404
    assert (await admin.post("/dashboard/campaigns/2147483648/cancel", {"csrf_token": token})).status in (403, 404)


async def test_linked_telegram_account_cannot_approve_its_own_campaign(site):
    await site.account("tuan", "staff", telegram="4242")
    for i in range(2):
        await subscriber(site, f"{i}" * 32, "phuong-a", [])
    service = site.runtime.campaigns
    campaign = await service.create(CampaignDraft(title="Từ Telegram", text="Nội dung thông báo.",
                                                  created_by="telegram:4242"))
    assert campaign.state == "pending_approval"
    tuan = await site.client("tuan")
    page = await tuan.get(f"/dashboard/campaigns/{campaign.id}")
    assert "/approve" not in page.text
    refused = await op(tuan, campaign.id, "approve")
    assert "quy tắc hai người" in refused.text and (await state_of(site, campaign.id)).state == "pending_approval"
    admin = await site.client("admin")
    assert "/confirm" not in (await admin.get(f"/dashboard/campaigns/{campaign.id}")).text
    assert "Đã duyệt" in (await op(admin, campaign.id, "approve")).text


async def test_statistics_chart_handoffs_and_campaign_deliveries_per_campaign(site):
    store = site.runtime.store
    for ident, ward in (("a" * 32, "phuong-a"), ("b" * 32, "phuong-a"), ("c" * 32, "phuong-b")):
        await subscriber(site, ident, ward, [])
    users = [await store.users.touch("web", ident) for ident in ("a" * 32, "c" * 32)]
    for user in users:
        await store.handoffs.open(user, "", None)
    handoff = await store.handoffs.open(users[0], "", None)
    await store.handoffs.mark_answered(handoff, "dashboard:lan")
    service = site.runtime.campaigns
    everyone = await service.create(CampaignDraft(title="Cảnh báo lừa đảo", text="Không đưa mã OTP cho ai.",
                                                  created_by="admin"))
    own = await service.create(CampaignDraft(title="Họp tổ dân phố", text="Tối thứ Sáu tại nhà văn hóa.",
                                             created_by="admin", wards=["phuong-a"]))
    await service.approve(everyone.id, "hoa")  # three recipients: above the threshold of one
    await service.approve(own.id, "hoa")
    while await site.runtime.campaign_runner.run_once():
        pass

    admin = await site.client("admin")
    page = await admin.get("/dashboard/stats")
    today = dt.datetime.now(VN_TZ).strftime("%d/%m")
    handoffs = page.text.split("<h2>Câu hỏi gửi cán bộ</h2>")[1].split("</section>")[0]
    assert f"<title>Gửi cán bộ — {today}: 3</title>" in handoffs and f"Được trả lời — {today}: 1</title>" in handoffs
    campaigns = page.text.split("<h2>Chiến dịch thông tin</h2>")[1].split("</section>")[0]
    assert "<title>Đã gửi: 5 (100%)</title>" in campaigns  # 3 + 2 messages
    assert f"<title>#{everyone.id} Cảnh báo lừa đảo: 3</title>" in campaigns
    rows = {int(i): cells for i, cells in re.findall(r"#(\d+) [^<]+</a></td>(.*?)</tr>", campaigns, re.S)}
    assert re.findall(r'<td class="num">(\d+)</td>', rows[everyone.id]) == ["3", "0", "0", "0", "3"]
    assert re.findall(r'<td class="num">(\d+)</td>', rows[own.id]) == ["2", "0", "0", "0", "2"]

    lan = await site.client("lan")  # her ward's citizens only; the city-wide campaign is listed, not opened
    campaigns = (await lan.get("/dashboard/stats")).text.split("<h2>Chiến dịch thông tin</h2>")[1]
    assert "<title>Đã gửi: 4 (100%)</title>" in campaigns
    assert f'<a href="/dashboard/campaigns/{own.id}">' in campaigns
    assert f"<td>#{everyone.id} Cảnh báo lừa đảo</td>" in campaigns


async def test_confirm_recounts_recipients_before_deciding_on_approval(site):
    await subscriber(site, "1" * 32, "phuong-a", [])
    lan = await site.client("lan")
    campaign_id, page = await create(lan, topics="")
    assert "1 người (đếm lúc này)" in page.text and not (await state_of(site, campaign_id)).requires_approval
    await subscriber(site, "2" * 32, "phuong-a", [])  # joins while the draft waits
    confirmed = await op(lan, campaign_id, "confirm")
    campaign = await state_of(site, campaign_id)
    assert (campaign.state, campaign.recipients, campaign.requires_approval) == ("pending_approval", 2, True)
    assert "cần một cán bộ khác duyệt" in confirmed.text
