"""Campaign engine and staff controls against the fake Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import select, update

from bot.campaigns.service import CampaignDraft, CampaignError
from bot.storage.models import AuditLog, Campaign, Delivery, Subscription, User, utcnow
from handlers.messages import Quiz
from tests.telegram_harness import ADMIN, buttons, running_bot


async def subscribe(bot, user_ids, ward="phuong-a", topics=(), channel="telegram"):
    for uid in user_ids:
        bot.fake.add_private_chat(uid, first_name=f"Dân {uid}")
        user = await bot.store.touch_user(channel, str(uid))
        await bot.store.save_subscription(user.id, ward=ward, topics=list(topics), active=True)


def draft(**kw) -> CampaignDraft:
    values = {"title": "Tập huấn VNeID", "text": "Mời bà con đến nhà văn hóa lúc 8 giờ.", "created_by": "cli"}
    values.update(kw)
    return CampaignDraft(**values)


async def deliveries(bot, campaign_id):
    async with bot.store.sessions() as s:
        return {row.user_id: row for row in await s.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))}


async def run_all(bot):
    while await bot.runtime.campaign_runner.run_once():
        pass


@pytest.fixture
async def bot(database_url):
    async with running_bot(database_url, telegram_rate_per_second=200.0) as harness:
        harness.runtime.campaign_runner.poll_seconds = 3600  # tests drive the runner themselves
        yield harness


async def test_segments_by_ward_topic_and_channel(bot):
    svc = bot.runtime.campaigns
    await subscribe(bot, [11, 12], ward="phuong-a", topics=["safety"])
    await subscribe(bot, [13], ward="phuong-b", topics=[])  # no topics chosen = every topic
    await subscribe(bot, [14], ward="phuong-b", topics=["vneid"])
    assert await svc.count_recipients({}, "all") == 4
    assert await svc.count_recipients({"wards": ["phuong-a"]}, "all") == 2
    assert await svc.count_recipients({"topics": ["safety"]}, "all") == 3
    assert await svc.count_recipients({"wards": ["phuong-b"], "topics": ["safety"]}, "all") == 1
    assert await svc.count_recipients({}, "zalo") == 0
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


async def test_two_person_rule_for_large_campaigns(bot):
    svc = bot.runtime.campaigns
    svc.approval_threshold = 2
    await subscribe(bot, [41, 42, 43])
    campaign = await svc.create(draft(created_by="telegram:900"))
    assert campaign.state == "pending_approval" and campaign.requires_approval
    await run_all(bot)
    assert bot.fake.sent_to(41) == []
    with pytest.raises(CampaignError, match="hai người"):
        await svc.approve(campaign.id, "telegram:900")
    approved = await svc.approve(campaign.id, "telegram:901")
    assert approved.state == "scheduled" and approved.approved_by == "telegram:901"
    async with bot.store.sessions() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.target == str(campaign.id))))
    assert "campaign.approve" in actions
    await run_all(bot)
    assert len(bot.fake.sent_to(43)) == 1


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
    await run_all(bot)
    rows = await deliveries(bot, campaign.id)
    by_platform = {}
    async with bot.store.sessions() as s:
        for user in await s.scalars(select(User)):
            by_platform[user.platform_id] = (user, rows.get(user.id))
    assert by_platform["61"][1].state == "sent" and len(bot.fake.sent_to(61)) == 1  # retried after 429
    assert time.monotonic() - started >= 1.0  # retry_after honoured
    assert bot.runtime.telegram.pacer.pauses >= 1
    assert by_platform["62"][1].state == "blocked" and not by_platform["62"][0].active
    assert by_platform["63"][1].state == "failed" and "chat not found" in by_platform["63"][1].error.lower()
    assert by_platform["64"][1].state == "sent"
    async with bot.store.sessions() as s:
        sub = await s.scalar(select(Subscription).where(Subscription.user_id == by_platform["62"][0].id))
    assert not sub.active


async def test_rows_left_sending_by_a_crash_become_uncertain_not_resent(bot):
    await subscribe(bot, range(70, 80))
    campaign = await bot.runtime.campaigns.create(draft())
    runner = bot.runtime.campaign_runner
    await runner._start(campaign.id)  # deliveries created, as if a process had begun
    async with bot.store.sessions.begin() as s:
        ids = list(await s.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id).order_by(Delivery.id)))
        await s.execute(update(Delivery).where(Delivery.id.in_(ids[:2])).values(state="sent"))
        await s.execute(update(Delivery).where(Delivery.id.in_(ids[2:4])).values(state="sending"))
        await s.execute(update(Campaign).where(Campaign.id == campaign.id).values(
            claimed_by="dead-process", claimed_until=utcnow() - dt.timedelta(seconds=1)))
    await run_all(bot)
    status = await bot.runtime.campaigns.status(campaign.id)
    counts = status["deliveries"]
    assert counts == {**counts, "sent": 8, "uncertain": 2, "pending": 0, "sending": 0}
    assert status["state"] == "done"
    assert sum(len(bot.fake.sent_to(u)) for u in range(70, 80)) == 6  # only the 6 never tried were sent now


async def test_live_replies_stay_fast_during_a_broadcast(database_url):
    async with running_bot(database_url, telegram_rate_per_second=10.0) as bot:
        await subscribe(bot, range(100, 160))  # 60 messages at 10/s: about 6 s of broadcasting
        await bot.runtime.campaigns.create(draft())
        sender = asyncio.create_task(bot.runtime.campaign_runner.run_once())
        await bot.fake.wait_for_sent(lambda s: s.chat_id == 100, timeout=5)
        started = time.monotonic()
        [reply] = await bot.say(1, "quên mật khẩu vneid")
        latency = time.monotonic() - started - 0.25  # minus the harness's settle time
        assert "Quên mật khẩu" in reply.plain_text
        assert latency < 1.0, latency
        assert not sender.done()  # the broadcast was still running
        await sender
        assert sum(len(bot.fake.sent_to(u)) for u in range(100, 160)) == 60


async def test_quiz_image_and_links_are_delivered(bot):
    await subscribe(bot, [81])
    await bot.runtime.campaigns.create(draft(
        image_url="https://example.gov.vn/anh.jpg",
        quiz=Quiz("Mã OTP có được đưa cho người khác không?", ["Có", "Không"], 1, "Không bao giờ chia sẻ OTP."),
        links=[__import__("handlers.messages", fromlist=["Link"]).Link("Cổng DVC", "https://dichvucong.gov.vn")]))
    await run_all(bot)
    methods = [m.method for m in bot.fake.sent_to(81)]
    assert methods == ["sendPhoto", "sendMessage", "sendPoll"]
    poll = bot.fake.sent_to(81)[2]
    assert poll.params["type"] == "quiz"
    text = bot.fake.sent_to(81)[1]
    assert any(b.get("url") == "https://dichvucong.gov.vn" for row in text.reply_markup["inline_keyboard"] for b in row)


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


async def test_citizens_cannot_run_or_forge_campaign_actions(bot):
    await subscribe(bot, [95])
    campaign = await bot.runtime.campaigns.create(draft(created_by="telegram:900"), confirm=False)
    [denied] = await bot.say(1, "/chiendich")
    assert "chỉ dành cho cán bộ" in denied.plain_text
    [denied] = await bot.say(1, f"/chiendich duyet {campaign.id}")
    assert "chỉ dành cho cán bộ" in denied.plain_text
    before = len(bot.fake.sent_to(1))
    bot.fake.user_presses(1, bot.fake.sent_to(1)[-1].message_id, f"camp:ok:{campaign.id}", strict=False)
    await bot.fake.wait_for_sent(before + 1, chat_id=1)
    assert "chỉ dành cho cán bộ" in bot.fake.sent_to(1)[-1].plain_text
    assert (await bot.runtime.campaigns.get(campaign.id)).state == "draft"
