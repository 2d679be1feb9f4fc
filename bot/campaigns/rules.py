"""Per-channel campaign rules: a platform's limits, checked before each campaign message.

The scheduler (bot/campaigns/scheduler.py) holds `rules: dict[channel name, rule]`. Before each
window of deliveries it awaits `rule.prepare(store)` (when the rule has one; `store` is the
campaign repository, bot/storage/campaigns.py) so a rule can
read state such as this month's usage; then, for each recipient on that channel, it calls
`rule(last_inbound_at)`: None = send, a string = skip with that reason, never sent and
counted in the campaign status. Telegram needs no rule; the Zalo OA has messaging windows and
quotas (/work/shared/notes/platforms.md section 3.5), configurable because Zalo's terms change.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from bot.localtime import VN_TZ as LOCAL_TZ
from bot.storage.models import utcnow

if TYPE_CHECKING:
    from bot.storage.campaigns import CampaignStore

WINDOW_REASON = "{channel}: no message from the citizen within {hours:g} h (messaging window)"
QUOTA_REASON = "{channel}: monthly quota of {quota} campaign messages reached"


class CampaignRule(Protocol):
    async def prepare(self, store: CampaignStore) -> None:
        """Read whatever the rule needs before a window of deliveries."""

    def __call__(self, last_inbound: dt.datetime | None) -> str | None:
        """A reason to skip this recipient, or None to send."""


class MessagingWindowRule:
    """Send only to citizens who wrote within `window_hours`, and at most `monthly_quota`
    campaign messages per calendar month (Vietnam time; 0 = no quota) on `channel`."""

    def __init__(self, channel: str, window_hours: float, monthly_quota: int = 0):
        self.channel = channel
        self.window = dt.timedelta(hours=window_hours)
        self.window_hours = window_hours
        self.quota = monthly_quota
        self.remaining: int | None = None

    @property
    def window_reason(self) -> str:
        return WINDOW_REASON.format(channel=self.channel, hours=self.window_hours)

    async def prepare(self, store: CampaignStore) -> None:
        """Count this month's campaign messages on the channel (sent or maybe sent)."""
        if not self.quota:
            self.remaining = None
            return
        local = utcnow().astimezone(LOCAL_TZ)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        used = await store.campaign_messages_since(self.channel, month_start)
        self.remaining = max(0, self.quota - used)

    def __call__(self, last_inbound: dt.datetime | None) -> str | None:
        if last_inbound is None or utcnow() - last_inbound > self.window:
            return self.window_reason
        if self.remaining is not None:
            if self.remaining <= 0:
                return QUOTA_REASON.format(channel=self.channel, quota=self.quota)
            self.remaining -= 1
        return None
