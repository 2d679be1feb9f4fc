"""Campaigns for staff: segments, scheduling, approval, the /chiendich dialogue, permissions and the
basic delivery guarantees, against the fake Bot API on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import select, update

from bot.campaigns.service import CampaignError
from bot.contracts.messages import Link, Quiz
from bot.storage.models import AuditLog, Campaign, Delivery, JobLock, Staff, Subscription, User, utcnow
from tests.campaign_helpers import deliveries, draft, run_all, settle, subscribe
from tests.telegram_harness import ADMIN, buttons, running_bot

STAFF_2 = 901  # a second staff member (the harness makes ADMIN an admin)


@pytest.fixture
async def bot(database_url):
    async with running_bot(database_url, telegram_rate_per_second=200.0) as harness:
        harness.runtime.campaign_runner.scheduler.poll_seconds = 3600  # tests drive the runner themselves
        # Telegram's spacing of about one message per second per chat is what test_campaign_engine
        # and test_reply_pacing check; here it would only stretch the staff dialogues (twenty-odd
        # messages to one chat, three per 3 s) and multi-part sends to half a minute.
        harness.runtime.telegram.pacer.per_chat_interval = 0.05
        await harness.store.staff.set("telegram", str(STAFF_2), "staff", actor="test")
        harness.fake.add_private_chat(STAFF_2, first_name="Minh")
        yield harness


async def test_segments_by_ward_topic_and_channel(bot):
    svc = bot.runtime.campaigns
    await subscribe(bot, [11, 12], ward="phuong-a", topics=["safety"])
    await subscribe(bot, [13], ward="phuong-b", topics=[])  # no topics chosen = every topic
    await subscribe(bot, [14], ward="phuong-b", topics=["vneid"])
    await subscribe(bot, ["oa-1", "oa-2"], ward="phuong-a", channel="zalo")  # Zalo Official Account
    await subscribe(bot, ["zb-1"], ward="phuong-b", topics=["safety"], channel="zalobot")  # Zalo Bot
    # Web chat: the campaign waits in the chat page's outbox; only "all" reaches it.
    await subscribe(bot, ["web-cookie"], ward="phuong-a", topics=["vneid"], channel="web")
    assert await svc.count_recipients({}, "all") == 8
    assert await svc.count_recipients({}, "telegram") == 4
    assert await svc.count_recipients({}, "zalo") == 3  # both Zalo products
    assert await svc.count_recipients({"wards": ["phuong-a"]}, "all") == 5
    assert await svc.count_recipients({"wards": ["phuong-a"], "topics": ["vneid"]}, "all") == 3  # Zalo OA + web
    assert await svc.count_recipients({"wards": ["phuong-a"]}, "zalo") == 2
    assert await svc.count_recipients({"topics": ["safety"]}, "all") == 6  # empty topic lists match too
    assert await svc.count_recipients({"wards": ["phuong-b"], "topics": ["safety"]}, "zalo") == 1
    with pytest.raises(CampaignError):
        await svc.create(draft(topics=["weather"]))
    with pytest.raises(CampaignError):
        await svc.create(draft(wards=["phuong-khong-co"]))


async def test_send_now_reaches_each_subscriber_once_with_unsubscribe_footer(bot):
    await subscribe(bot, range(20, 30))
    campaign = await bot.runtime.campaigns.create(draft(links=[]))
    await run_all(bot)
    status = await bot.runtime.campaigns.status(campaign.id)
    assert status["state"] == "done" and status["deliveries"]["sent"] == 10
    for uid in range(20, 30):
        [message] = bot.fake.sent_to(uid)
        assert "Tập huấn VNeID" in message.plain_text and "/huydangky" in message.plain_text
    await run_all(bot)  # running again sends nothing more
    assert all(len(bot.fake.sent_to(uid)) == 1 for uid in range(20, 30))


async def test_scheduled_campaign_waits_and_expired_one_is_dropped(bot):
    await subscribe(bot, [31, 32])
    later = await bot.runtime.campaigns.create(draft(scheduled_at=utcnow() + dt.timedelta(hours=1)))
    expired = await bot.runtime.campaigns.create(draft(title="Hết hạn", scheduled_at=utcnow() + dt.timedelta(hours=1),
                                                       expires_at=utcnow() + dt.timedelta(hours=2)))
    await run_all(bot)
    assert bot.fake.sent_to(31) == []
    assert (await bot.runtime.campaigns.get(later.id)).state == "scheduled"
    async with bot.store.sessions.begin() as s:  # time passes: due, but the second one has expired
        await s.execute(update(Campaign).where(Campaign.id == later.id).values(scheduled_at=utcnow()))
        await s.execute(update(Campaign).where(Campaign.id == expired.id).values(
            scheduled_at=utcnow() - dt.timedelta(hours=3), expires_at=utcnow() - dt.timedelta(minutes=1)))
    await run_all(bot)
    assert (await bot.runtime.campaigns.get(expired.id)).state == "expired"
    assert (await bot.runtime.campaigns.get(later.id)).state == "done"
    assert [len(bot.fake.sent_to(u)) for u in (31, 32)] == [1, 1]


async def test_times_in_the_past_are_refused_with_a_clear_message(bot):
    svc = bot.runtime.campaigns
    with pytest.raises(CampaignError, match="đã qua"):
        await svc.create(draft(scheduled_at=utcnow() - dt.timedelta(hours=2)))
    with pytest.raises(CampaignError, match="đã qua"):
        await svc.create(draft(expires_at=utcnow() - dt.timedelta(minutes=5)))
    with pytest.raises(CampaignError, match="sau thời điểm gửi"):
        await svc.create(draft(scheduled_at=utcnow() + dt.timedelta(hours=2), expires_at=utcnow() + dt.timedelta(hours=1)))
    assert (await svc.create(draft(scheduled_at=utcnow() - dt.timedelta(seconds=10)))).state == "scheduled"


async def test_two_person_rule_for_large_campaigns(bot):
    svc = bot.runtime.campaigns
    svc.approval_threshold = 2
    await subscribe(bot, [41, 42, 43])
    campaign = await svc.create(draft(created_by=f"telegram:{ADMIN}"))
    assert campaign.state == "pending_approval" and campaign.requires_approval
    await run_all(bot)
    assert bot.fake.sent_to(41) == []
    with pytest.raises(CampaignError, match="hai người"):
        await svc.approve(campaign.id, f"telegram:{ADMIN}")
    with pytest.raises(CampaignError, match="không phải cán bộ"):
        await svc.approve(campaign.id, "telegram:41")  # a citizen
    with pytest.raises(CampaignError, match="không phải cán bộ"):
        await svc.approve(campaign.id, "minh")  # nobody has this username
    approved = await svc.approve(campaign.id, f"telegram:{STAFF_2}")
    assert approved.state == "scheduled" and approved.approved_by == f"telegram:{STAFF_2}"
    async with bot.store.sessions() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.target == str(campaign.id))))
    assert "campaign.approve" in actions
    await run_all(bot)
    assert len(bot.fake.sent_to(43)) == 1


async def test_approval_is_atomic_and_knows_a_creator_under_each_of_their_names(bot):
    svc = bot.runtime.campaigns
    svc.approval_threshold = 0
    await subscribe(bot, [44])
    await bot.store.staff.set("telegram", "902", "staff", actor="test")
    async with bot.store.sessions.begin() as s:  # the dashboard account "lan" is linked to telegram:902
        await s.execute(update(Staff).where(Staff.platform_id == "902").values(username="lan"))
    campaign = await svc.create(draft(created_by="telegram:902"))
    with pytest.raises(CampaignError, match="hai người"):
        await svc.approve(campaign.id, "lan")  # same person, other name
    results = await asyncio.gather(svc.approve(campaign.id, f"telegram:{ADMIN}"),
                                   svc.approve(campaign.id, f"telegram:{STAFF_2}"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Campaign", "CampaignError"]  # exactly one wins
    winner = next(r for r in results if not isinstance(r, Exception))
    assert (await svc.get(campaign.id)).approved_by == winner.approved_by
    async with bot.store.sessions() as s:
        approvals = list(await s.scalars(select(AuditLog.actor).where(
            AuditLog.target == str(campaign.id), AuditLog.action == "campaign.approve")))
    assert approvals == [winner.approved_by]


async def test_threshold_is_checked_again_against_the_real_count_at_start(bot):
    svc = bot.runtime.campaigns
    svc.approval_threshold = bot.runtime.campaign_runner.scheduler.approval_threshold = 2
    await subscribe(bot, [45, 46])
    campaign = await svc.create(draft(scheduled_at=utcnow() + dt.timedelta(minutes=5)))
    assert campaign.state == "scheduled" and not campaign.requires_approval  # 2 people: no approval needed
    await subscribe(bot, [47, 48])  # the segment grows before it is due
    async with bot.store.sessions.begin() as s:
        await s.execute(update(Campaign).where(Campaign.id == campaign.id).values(scheduled_at=utcnow()))
    await run_all(bot)
    after = await svc.get(campaign.id)
    assert after.state == "pending_approval" and after.requires_approval and after.recipients == 4
    assert all(bot.fake.sent_to(u) == [] for u in (45, 46, 47, 48))
    await svc.approve(campaign.id, f"telegram:{STAFF_2}")
    await run_all(bot)
    assert all(len(bot.fake.sent_to(u)) == 1 for u in (45, 46, 47, 48))


async def test_only_the_creator_confirms_a_draft_and_confirming_counts_again(bot):
    """Shared by the CLI, the chat dialogue and the dashboard: the draft's count may be stale."""
    svc = bot.runtime.campaigns
    svc.approval_threshold = 2
    await subscribe(bot, [51, 52])
    await bot.store.staff.set("telegram", "903", "staff", actor="test")
    async with bot.store.sessions.begin() as s:  # the dashboard account "mai" is linked to telegram:903
        await s.execute(update(Staff).where(Staff.platform_id == "903").values(username="mai"))
    campaign = await svc.create(draft(created_by="mai"), confirm=False)
    assert (campaign.state, campaign.recipients, campaign.requires_approval) == ("draft", 2, False)
    with pytest.raises(CampaignError, match="người tạo"):
        await svc.confirm(campaign.id, f"telegram:{STAFF_2}")  # another staff member
    await subscribe(bot, [53])  # joins while the draft waits
    confirmed = await svc.confirm(campaign.id, "telegram:903")  # the creator, under their other name
    assert (confirmed.state, confirmed.recipients, confirmed.requires_approval) == ("pending_approval", 3, True)
    async with bot.store.sessions() as s:
        audit = (await s.scalars(select(AuditLog).where(AuditLog.target == str(campaign.id),
                                                        AuditLog.action == "campaign.confirm"))).one()
    assert (audit.actor, audit.detail) == ("telegram:903", {"recipients": 3})
    legacy = await svc.create(draft(created_by="dashboard:mai"))  # how early dashboard campaigns were signed
    with pytest.raises(CampaignError, match="hai người"):
        await svc.approve(legacy.id, "telegram:903")


async def test_pause_resume_cancel(bot):
    svc = bot.runtime.campaigns
    await subscribe(bot, [51, 52])
    campaign = await svc.create(draft())
    await svc.pause(campaign.id, "cli")
    await run_all(bot)
    assert bot.fake.sent_to(51) == []
    await svc.resume(campaign.id, "cli")
    await run_all(bot)
    assert len(bot.fake.sent_to(51)) == 1
    other = await svc.create(draft(title="Hủy"))
    await svc.cancel(other.id, "cli")
    await run_all(bot)
    assert len(bot.fake.sent_to(51)) == 1
    with pytest.raises(CampaignError):
        await svc.resume(other.id, "cli")


async def test_429_403_and_400_are_handled(bot):
    await subscribe(bot, [61, 62, 63, 64])
    bot.fake.block(62)
    bot.fake.fail_next("sendMessage", 400, "Bad Request: chat not found", chat_id=63)
    bot.fake.fail_next("sendMessage", 429, retry_after=1, chat_id=61)
    campaign = await bot.runtime.campaigns.create(draft())
    started = time.monotonic()
    await settle(bot, campaign.id)
    rows = await deliveries(bot, campaign.id)
    assert rows["61"].state == "sent" and len(bot.fake.sent_to(61)) == 1  # retried after 429
    assert time.monotonic() - started >= 1.0  # retry_after honoured
    assert bot.runtime.telegram.pacer.pauses == 1
    assert rows["62"].state == "blocked"
    assert rows["63"].state == "failed" and "chat not found" in rows["63"].error.lower()
    assert rows["64"].state == "sent"
    async with bot.store.sessions() as s:
        user = await s.scalar(select(User).where(User.platform_id == "62"))
        sub = await s.scalar(select(Subscription).where(Subscription.user_id == user.id))
    assert not user.active and not sub.active


async def test_retry_after_as_a_timedelta_is_honoured(bot, monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB then reports retry_after as a datetime.timedelta
    await subscribe(bot, [65])
    bot.fake.fail_next("sendMessage", 429, retry_after=1, chat_id=65)
    campaign = await bot.runtime.campaigns.create(draft())
    started = time.monotonic()
    await settle(bot, campaign.id)
    assert (await deliveries(bot, campaign.id))["65"].state == "sent"
    [first, second] = [r for r in bot.fake.requests if r.method == "sendMessage" and r.params.get("chat_id") == 65]
    assert first.status == 429 and second.time - first.time >= 1.0
    assert time.monotonic() - started >= 1.0


async def test_rows_left_sending_by_a_crash_become_uncertain_not_resent(bot):
    await subscribe(bot, range(70, 80))
    campaign = await bot.runtime.campaigns.create(draft())
    runner = bot.runtime.campaign_runner
    async with bot.store.sessions.begin() as s:  # another process holds the channel, very much alive
        s.add(JobLock(name="campaign-sender:telegram", owner="other-process", until=utcnow() + dt.timedelta(hours=1)))
    await runner.coordinate()  # deliveries created, as if that process had begun
    async with bot.store.sessions.begin() as s:
        ids = list(await s.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id).order_by(Delivery.id)))
        await s.execute(update(Delivery).where(Delivery.id.in_(ids[:2])).values(state="sent"))
        await s.execute(update(Delivery).where(Delivery.id.in_(ids[2:4])).values(state="sending"))
    await run_all(bot)
    assert sum(len(bot.fake.sent_to(u)) for u in range(70, 80)) == 0  # its lease is respected
    async with bot.store.sessions.begin() as s:  # ... until it dies and the lease runs out
        await s.execute(update(JobLock).values(until=utcnow() - dt.timedelta(seconds=1)))
    await run_all(bot)
    status = await bot.runtime.campaigns.status(campaign.id)
    counts = status["deliveries"]
    assert counts == {**counts, "sent": 8, "uncertain": 2, "pending": 0, "sending": 0}
    assert status["state"] == "done"
    assert (await bot.runtime.campaigns.get(campaign.id)).uncertain == 2
    assert sum(len(bot.fake.sent_to(u)) for u in range(70, 80)) == 6  # only the 6 never tried were sent now


async def test_quiz_image_and_links_are_delivered(bot):
    await subscribe(bot, [81])
    campaign = await bot.runtime.campaigns.create(draft(
        image_url="https://example.gov.vn/anh.jpg",
        quiz=Quiz("Mã OTP có được đưa cho người khác không?", ["Có", "Không"], 1, "Không bao giờ chia sẻ OTP."),
        links=[Link("Cổng DVC", "https://dichvucong.gov.vn")]))
    await run_all(bot)
    photo, text, poll = bot.fake.sent_to(81)
    assert [photo.method, text.method, poll.method] == ["sendPhoto", "sendMessage", "sendPoll"]
    assert photo.params["photo"] == "https://example.gov.vn/anh.jpg"
    assert any(b.get("url") == "https://dichvucong.gov.vn" for row in text.reply_markup["inline_keyboard"] for b in row)
    sent_poll = poll.message["poll"]
    assert sent_poll["type"] == "quiz" and sent_poll["question"] == "Mã OTP có được đưa cho người khác không?"
    assert [o["text"] for o in sent_poll["options"]] == ["Có", "Không"]
    assert sent_poll["correct_option_ids"] == [1]
    assert sent_poll["explanation"] == "Không bao giờ chia sẻ OTP."
    assert (await deliveries(bot, campaign.id))["81"].parts_done == 3


async def test_guided_dialogue_preview_confirm_and_progress_report(bot):
    await subscribe(bot, [91, 92, 93], ward="phuong-b")
    [prompt] = await bot.say(ADMIN, "/chiendich")
    assert "Dòng đầu là tiêu đề" in prompt.plain_text
    [segment] = await bot.say(ADMIN, "Tuần lễ chuyển đổi số\nMời bà con tham gia các lớp hướng dẫn miễn phí.")
    assert "camp:seg:" in next(iter(buttons(segment)))
    ward_button = next(d for d in buttons(segment) if d.endswith(":w:phuong-b"))
    [when] = await bot.press(ADMIN, segment, ward_button)
    now_button = next(d for d in buttons(when) if d.endswith(":now"))
    preview, confirm = await bot.press(ADMIN, when, now_button, expect=2)
    assert "Tuần lễ chuyển đổi số" in preview.plain_text and "/huydangky" in preview.plain_text
    assert "3 người" in confirm.plain_text
    ok = next(d for d in buttons(confirm) if d.startswith("camp:ok:"))
    [scheduled] = await bot.press(ADMIN, confirm, ok)
    assert "Đã lên lịch" in scheduled.plain_text
    await run_all(bot)
    assert all(len(bot.fake.sent_to(u)) == 1 for u in (91, 92, 93))
    assert bot.fake.sent_to(91)[0].plain_text == preview.plain_text  # citizens see exactly the preview
    report = bot.fake.sent_to(ADMIN)[-1]
    assert "Kết thúc" in report.plain_text and "Đã gửi 3/3" in report.plain_text


async def test_dialogue_optional_link_image_expiry_and_channel(bot):
    await subscribe(bot, [96, 97])
    await subscribe(bot, ["zb-96"], channel="zalobot")
    await bot.say(ADMIN, "/chiendich")
    [segment] = await bot.say(ADMIN, "Cảnh báo lừa đảo\nKhông cung cấp mã OTP cho bất kỳ ai.")
    [when] = await bot.press(ADMIN, segment, next(d for d in buttons(segment) if d.endswith(":all")))
    preview, confirm = await bot.press(ADMIN, when, next(d for d in buttons(when) if d.endswith(":now")), expect=2)
    assert "3 người" in confirm.plain_text
    campaign_id = int(next(d for d in buttons(confirm) if d.startswith("camp:ok:")).rsplit(":", 1)[1])

    [ask] = await bot.press(ADMIN, confirm, f"camp:opt:{campaign_id}:link")
    assert "https://" in ask.plain_text
    [refused] = await bot.say(ADMIN, "Trang lừa đảo | http://example.com")
    assert "https" in refused.plain_text  # not https: refused, the dialogue waits for a good one
    preview, confirm = await bot.say(ADMIN, "Cổng Dịch vụ công | https://dichvucong.gov.vn", expect=2)
    assert {"text": "🔗 Cổng Dịch vụ công", "url": "https://dichvucong.gov.vn"} in \
        [b for row in preview.reply_markup["inline_keyboard"] for b in row]

    await bot.press(ADMIN, confirm, f"camp:opt:{campaign_id}:img")
    photo, preview, confirm = await bot.say(ADMIN, "https://example.gov.vn/canh-bao.jpg", expect=3)
    assert photo.method == "sendPhoto" and photo.params["photo"] == "https://example.gov.vn/canh-bao.jpg"

    await bot.press(ADMIN, confirm, f"camp:opt:{campaign_id}:exp")
    [late] = await bot.say(ADMIN, "08:00 01/01/2020")
    assert "đã qua" in late.plain_text
    _photo, _preview, confirm = await bot.say(ADMIN, "20:00 31/12/2099", expect=3)
    assert "hết hạn lúc 20:00 31/12/2099" in confirm.plain_text

    [channels] = await bot.press(ADMIN, confirm, f"camp:opt:{campaign_id}:ch")
    _photo, _preview, confirm = await bot.press(ADMIN, channels, f"camp:ch:{campaign_id}:telegram", expect=3)
    assert "2 người" in confirm.plain_text and "Telegram" in confirm.plain_text
    campaign = await bot.runtime.campaigns.get(campaign_id)
    assert campaign.state == "draft" and campaign.channel == "telegram"
    assert campaign.image_url == "https://example.gov.vn/canh-bao.jpg"
    assert campaign.links == [{"label": "Cổng Dịch vụ công", "url": "https://dichvucong.gov.vn"}]
    assert campaign.expires_at == dt.datetime(2099, 12, 31, 13, 0, tzinfo=dt.UTC)

    [listing] = await bot.say(STAFF_2, "/chiendich ds")  # another staff member forges the confirm button
    bot.fake.user_presses(STAFF_2, listing.message_id, f"camp:ok:{campaign_id}", strict=False)
    someone_else = (await bot.fake.wait_for_sent(2, chat_id=STAFF_2))[1]
    assert "Chỉ người tạo" in someone_else.plain_text
    assert (await bot.runtime.campaigns.get(campaign_id)).state == "draft"
    await bot.press(ADMIN, confirm, f"camp:ok:{campaign_id}")
    await run_all(bot)
    assert [m.method for m in bot.fake.sent_to(96)] == ["sendPhoto", "sendMessage"]


async def test_citizens_cannot_run_or_forge_campaign_actions(bot):
    await subscribe(bot, [95])
    campaign = await bot.runtime.campaigns.create(draft(created_by=f"telegram:{ADMIN}"), confirm=False)
    [denied] = await bot.say(1, "/chiendich")
    assert "chỉ dành cho cán bộ" in denied.plain_text
    [denied] = await bot.say(1, f"/chiendich duyet {campaign.id}")
    assert "chỉ dành cho cán bộ" in denied.plain_text
    for forged in (f"camp:ok:{campaign.id}", f"camp:opt:{campaign.id}:link", f"camp:ch:{campaign.id}:zalo"):
        before = len(bot.fake.sent_to(1))
        bot.fake.user_presses(1, bot.fake.sent_to(1)[-1].message_id, forged, strict=False)
        await bot.fake.wait_for_sent(before + 1, chat_id=1)
        assert "chỉ dành cho cán bộ" in bot.fake.sent_to(1)[-1].plain_text
    after = await bot.runtime.campaigns.get(campaign.id)
    assert after.state == "draft" and after.channel == "all"


async def test_staff_approve_in_chat_but_not_their_own(bot):
    svc = bot.runtime.campaigns
    svc.approval_threshold = 0
    await subscribe(bot, [98])
    campaign = await svc.create(draft(created_by=f"telegram:{ADMIN}"))
    [own] = await bot.say(ADMIN, f"/chiendich duyet {campaign.id}")
    assert "hai người" in own.plain_text
    [ok] = await bot.say(STAFF_2, f"/chiendich duyet {campaign.id}")
    assert "đã lên lịch" in ok.plain_text
    assert (await svc.get(campaign.id)).approved_by == f"telegram:{STAFF_2}"
