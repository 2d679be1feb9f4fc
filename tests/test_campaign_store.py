"""The campaign repository's guarantees against concurrent callers, on SQLite and PostgreSQL:
one sender lease per channel, one starter per campaign, each row in flight for one claimer
only, and results written only onto rows their sender still owns."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import select

from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.campaigns import CampaignStore, Outcome
from bot.storage.models import Campaign, Delivery, utcnow

LEASE = dt.timedelta(seconds=30)


@pytest.fixture
async def repo(database_url):
    engine, store = await open_store(load_settings(_env_file=None, database_url=database_url, user_key_secret="x"))
    for uid in range(1, 31):
        user = await store.users.touch("telegram", str(uid))
        await store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
    try:
        yield CampaignStore(store.sessions)
    finally:
        await engine.dispose()


async def new_campaign(repo: CampaignStore) -> int:
    row = Campaign(title="Tập huấn", text="Nội dung", created_by="cli", segment={}, channel="all", links=[],
                   state="scheduled", scheduled_at=utcnow(), recipients=30)
    return (await repo.create(row, "cli", {})).id


async def test_one_lease_holder_per_channel_among_racing_processes(repo):
    owners = [f"p{i}" for i in range(6)]
    won = await asyncio.gather(*(repo.acquire_lease("campaign-sender:telegram", o, LEASE) for o in owners))
    assert sum(won) == 1
    holder = owners[won.index(True)]
    assert await repo.acquire_lease("campaign-sender:telegram", holder, LEASE)  # renewal
    assert not await repo.acquire_lease("campaign-sender:telegram", "late", LEASE)
    assert await repo.acquire_lease("campaign-sender:zalobot", "late", LEASE)  # another channel is free
    await repo.release_lease("campaign-sender:telegram", holder)
    assert await repo.acquire_lease("campaign-sender:telegram", "late", LEASE)


async def test_a_campaign_started_by_racing_processes_gets_its_rows_once(repo):
    campaign_id = await new_campaign(repo)
    results = await asyncio.gather(*(repo.start(campaign_id, None) for _ in range(4)), return_exceptions=True)
    started = [r for r in results if not isinstance(r, BaseException) and r.outcome == "started"]
    assert len(started) == 1 and started[0].recipients == 30, results
    assert await repo.delivery_counts(campaign_id) == {"pending": 30}
    assert (await repo.get(campaign_id)).state == "sending"


async def test_two_claimers_never_put_the_same_row_in_flight(repo):
    campaign_id = await new_campaign(repo)
    await repo.start(campaign_id, None)
    now = utcnow()
    # Reading writes nothing: both claimers see the same due rows...
    first, second = await asyncio.gather(*(repo.due_deliveries("telegram", campaign_id, 30, set(), now)
                                           for _ in range(2)))
    assert [r.id for r in first] == [r.id for r in second] and len(first) == 30
    assert all(r.found and r.active and r.subscribed for r in first)
    # ...and each row goes in flight for exactly one of them.
    marks = await asyncio.gather(*(repo.mark_in_flight(r.id) for pair in zip(first, second, strict=True)
                                   for r in pair))
    assert sum(marks) == 30
    assert all(a != b for a, b in zip(marks[::2], marks[1::2], strict=True))
    assert await repo.due_deliveries("telegram", campaign_id, 30, set(), now) == []


async def test_no_row_goes_in_flight_once_its_campaign_is_paused(repo):
    campaign_id = await new_campaign(repo)
    await repo.start(campaign_id, None)
    [row] = await repo.due_deliveries("telegram", campaign_id, 1, set(), utcnow())
    changed, _ = await repo.transition(campaign_id, ("sending",), {"state": "paused"}, "cli", "campaign.pause", {})
    assert changed
    assert not await repo.mark_in_flight(row.id)
    assert await repo.delivery_counts(campaign_id) == {"pending": 30}


async def test_a_result_is_written_only_onto_a_row_its_sender_still_owns(repo):
    campaign_id = await new_campaign(repo)
    await repo.start(campaign_id, None)
    rows = await repo.due_deliveries("telegram", campaign_id, 2, set(), utcnow())
    for row in rows:
        assert await repo.mark_in_flight(row.id)
    # The sender lost its lease; the next holder resolved its rows in flight as uncertain.
    assert await repo.resolve_stuck("telegram") == [(campaign_id, 2)]
    await repo.record([Outcome(row.id, campaign_id, "sent", None, 1, 1) for row in rows])  # too late
    async with repo.sessions() as s:
        states = Counter((await s.scalars(select(Delivery.state).where(Delivery.campaign_id == campaign_id))).all())
        uncertain = (await s.get(Campaign, campaign_id)).uncertain
    assert states == {"pending": 28, "uncertain": 2} and uncertain == 2
