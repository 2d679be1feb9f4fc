"""The delivery engine, assembled: crash-safe, paced, per-channel sending of due campaigns.

The work is split by responsibility:
- bot/campaigns/scheduler.py: what is due, the per-channel leases and windows, the loop;
- bot/campaigns/sender.py: every call to a channel adapter (deliveries, pacers, reports);
- bot/campaigns/progress.py: progress messages and final reports to the staff;
- bot/storage/campaigns.py: every campaign query.

`CampaignRunner` wires the three together and is what the runtime and the tests hold.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING

from bot.campaigns.progress import ProgressReporter
from bot.campaigns.scheduler import LEASE, ChannelRule, Scheduler
from bot.campaigns.sender import ChannelSender
from bot.storage.campaigns import CampaignStore
from bot.storage.models import Campaign

if TYPE_CHECKING:
    from bot.contracts.messages import Reply  # contract type, for annotations only


class CampaignRunner:
    def __init__(self, sessions, channels, *, window: int | None = None,
                 rules: dict[str, ChannelRule] | None = None, on_unreachable=None, owner: str | None = None,
                 poll_seconds: float = 2.0, lease: dt.timedelta = LEASE, approval_threshold: int | None = None):
        self.store = CampaignStore(sessions)
        self.sender = ChannelSender(self.store, channels, on_unreachable)
        self.progress = ProgressReporter(self.store, self.sender)
        self.scheduler = Scheduler(self.store, self.sender, self.progress, window=window, rules=rules,
                                   owner=owner, poll_seconds=poll_seconds, lease=lease,
                                   approval_threshold=approval_threshold)

    # --- the loop ------------------------------------------------------------------------
    async def run(self, stop) -> None:
        await self.scheduler.run(stop)

    async def run_once(self, stop=None) -> bool:
        return await self.scheduler.run_once(stop)

    async def coordinate(self) -> bool:
        return await self.scheduler.coordinate()

    def wire_pacers(self) -> None:
        self.sender.wire_pacers()

    async def store_pause(self, channel: str, seconds: float) -> None:
        await self.sender.store_pause(channel, seconds)

    # --- progress --------------------------------------------------------------------------
    async def counts(self, campaign_id: int) -> dict[str, Counter]:
        return await self.progress.counts(campaign_id)

    def eta_seconds(self, campaign: Campaign, by_channel: dict[str, Counter]) -> float:
        return self.progress.eta_seconds(campaign, by_channel)

    def render(self, campaign: Campaign, by_channel: dict[str, Counter], state: str) -> Reply:
        return self.progress.render(campaign, by_channel, state)
