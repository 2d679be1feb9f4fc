"""Shared set-up for the campaign tests: subscribers, drafts, driving the engine, reading rows."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.campaigns.service import CampaignDraft
from bot.storage.models import Delivery, User

FINAL = ("done", "expired", "cancelled")


async def subscribe(bot, user_ids, ward="phuong-a", topics=(), channel="telegram"):
    for uid in user_ids:
        if channel == "telegram":
            bot.fake.add_private_chat(uid, first_name=f"Dân {uid}")
        user = await bot.store.users.touch(channel, str(uid))
        await bot.store.subscriptions.save(user.id, ward=ward, topics=list(topics), active=True)


def draft(**kw) -> CampaignDraft:
    values = {"title": "Tập huấn VNeID", "text": "Mời bà con đến nhà văn hóa lúc 8 giờ.", "created_by": "cli"}
    values.update(kw)
    return CampaignDraft(**values)


async def deliveries(bot, campaign_id) -> dict[str, Delivery]:
    """The campaign's rows by the recipient's platform id."""
    async with bot.store.sessions() as s:
        rows = await s.execute(select(User.platform_id, Delivery).join(User, User.id == Delivery.user_id)
                               .where(Delivery.campaign_id == campaign_id))
        return {platform_id: row for platform_id, row in rows}


async def run_all(bot):
    """Send everything that is due now (retries waiting for later stay pending)."""
    while await bot.runtime.campaign_runner.run_once():
        pass


async def settle(bot, *campaign_ids, within=20.0):
    """Drive the engine until the campaigns are finished (waiting out retries)."""
    deadline = time.monotonic() + within
    while True:
        worked = await bot.runtime.campaign_runner.run_once()
        states = [(await bot.runtime.campaigns.get(c)).state for c in campaign_ids]
        if all(state in FINAL for state in states):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"campaigns {campaign_ids} still {states}: "
                                 f"{[await bot.runtime.campaigns.status(c) for c in campaign_ids]}")
        if not worked:
            await asyncio.sleep(0.05)


def campaign_sends(fake, chat_ids) -> int:
    chats = {int(c) for c in chat_ids}
    return sum(1 for s in fake.sent if s.chat_id in chats)
