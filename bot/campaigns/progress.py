"""Progress messages and final reports to the staff member who launched a campaign.

A campaign with a report chat gets a progress message when it starts, edited every few
seconds with counts and an ETA (channels that cannot edit get a new message now and then),
and one final report when it ends. Several processes run this: each update and each report
is claimed in the database first (`progress_at`, `reported_at`), so it is posted once.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter

from bot.campaigns.sender import ChannelSender, message_parts
from bot.campaigns.service import LOCAL_TZ, campaign_reply
from bot.contracts.messages import Reply
from bot.storage.campaigns import FINAL_STATES, CampaignStore
from bot.storage.models import Campaign, utcnow

log = logging.getLogger(__name__)

PROGRESS_EVERY = 5.0  # seconds between edits of the staff's progress message
PROGRESS_MESSAGE_EVERY = 600.0  # channels that cannot edit get a new message this often
STATE_LABELS = {"sending": "đang gửi", "paused": "tạm dừng", "done": "đã gửi xong",
                "expired": "hết hạn", "cancelled": "đã hủy"}


def _duration(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} phút"
    return f"{minutes // 60} giờ {minutes % 60} phút"


class ProgressReporter:
    def __init__(self, store: CampaignStore, sender: ChannelSender):
        self.store = store
        self.sender = sender
        self.every = PROGRESS_EVERY

    def _report_channel(self, campaign: Campaign) -> str | None:
        """The channel to report on, if the campaign has a report chat there and it runs here."""
        if not campaign.report_channel or not campaign.report_chat:
            return None
        return campaign.report_channel if self.sender.can_report(campaign.report_channel) else None

    async def counts(self, campaign_id: int) -> dict[str, Counter]:
        """Delivery counts by channel and state."""
        return await self.store.counts_by_channel(campaign_id)

    def eta_seconds(self, campaign: Campaign, by_channel: dict[str, Counter]) -> float:
        """Time left at each channel's configured rate (channels send in parallel)."""
        parts = message_parts(campaign_reply(campaign))
        longest = 0.0
        for channel, counts in by_channel.items():
            rate, wait = self.sender.rate(channel)
            remaining = counts["pending"] + counts["sending"]
            if remaining:
                longest = max(longest, wait + remaining * parts / rate)
        return longest

    def render(self, campaign: Campaign, by_channel: dict[str, Counter], state: str) -> Reply:
        counts = sum(by_channel.values(), Counter())
        total = sum(counts.values())
        remaining = counts["pending"] + counts["sending"]
        line = (f"📣 Chiến dịch #{campaign.id} \"{campaign.title}\" — {STATE_LABELS.get(state, state)}\n"
                f"Đã gửi {counts['sent']}/{total} · lỗi {counts['failed']} · chặn bot {counts['blocked']} · "
                f"bỏ qua {counts['skipped']} · không chắc chắn {counts['uncertain']} · còn lại {remaining}")
        if state == "sending" and remaining:
            seconds = self.eta_seconds(campaign, by_channel)
            eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
            line += f"\nDự kiến xong lúc {eta.astimezone(LOCAL_TZ):%H:%M} (còn khoảng {_duration(seconds)})"
        if state in FINAL_STATES:
            head = {"done": "✅ Kết thúc.", "expired": "⌛ Hết hạn: tin chưa gửi đã được bỏ.",
                    "cancelled": "🛑 Đã hủy: tin chưa gửi đã được bỏ."}[state]
            line = f"{head} {line}"
            if counts["uncertain"]:
                line += ("\nTin \"không chắc chắn\": đang gửi thì tiến trình dừng, có thể đã tới người nhận; "
                         "không gửi lại để tránh trùng.")
        return Reply(line, kind="notice")

    async def open(self, campaign_id: int) -> None:
        """Post the progress message of a campaign that has just started."""
        campaign = await self.store.get(campaign_id)
        channel = self._report_channel(campaign) if campaign else None
        if channel is None or campaign.report_message_id is not None:
            return
        try:
            message_id = await self.sender.post(channel, campaign.report_chat,
                                                self.render(campaign, await self.counts(campaign_id), "sending"))
        except Exception:
            log.warning("could not post campaign progress", exc_info=True)
            return
        await self.store.set_report_message(campaign_id, message_id)

    async def round(self) -> None:
        """Edit the progress message of running campaigns; one process per edit (progress_at)."""
        now = utcnow()
        campaigns = await self.store.progress_due(now - dt.timedelta(seconds=self.every))
        for campaign in campaigns:
            channel = self._report_channel(campaign)
            if channel is None:
                continue
            edits = self.sender.edits_messages(channel) and campaign.report_message_id is not None
            every = self.every if edits else max(self.every, PROGRESS_MESSAGE_EVERY)
            if not await self.store.claim_progress(campaign.id, now - dt.timedelta(seconds=every), now):
                continue
            reply = self.render(campaign, await self.counts(campaign.id), campaign.state)
            try:
                if edits:
                    await self.sender.edit(channel, campaign.report_chat, campaign.report_message_id, reply)
                else:
                    await self.sender.post(channel, campaign.report_chat, reply)
            except Exception:
                log.warning("could not update campaign %s progress", campaign.id, exc_info=True)

    async def report_finished(self) -> None:
        """One final report per finished campaign (done, expired, cancelled once it had started)."""
        for campaign in await self.store.finished_unreported():
            channel = self._report_channel(campaign)
            if channel is None:
                continue
            if not await self.store.claim_report(campaign.id):
                continue
            by_channel = await self.counts(campaign.id)
            try:
                if campaign.report_message_id is not None and self.sender.edits_messages(channel):
                    await self.sender.edit(channel, campaign.report_chat, campaign.report_message_id,
                                           self.render(campaign, by_channel, campaign.state))
                await self.sender.post(channel, campaign.report_chat, self.render(campaign, by_channel, campaign.state))
            except Exception:
                log.warning("could not post the report of campaign %s", campaign.id, exc_info=True)
