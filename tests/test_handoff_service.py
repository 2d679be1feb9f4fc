"""The team group and the dashboard act on hand-off threads through one service, so they behave
alike: closing is idempotent wherever it happens, and a draft is the same draft from both.

The team group is driven through the conversation (`Conversation.handle`, no HTTP), the
dashboard over real HTTP; both on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.contracts import texts
from bot.contracts.messages import IncomingMessage
from bot.storage.models import AuditLog, FaqDraft, WebOutbox
from bot.storage.store import HandoffInfo
from tests.dashboard_harness import running_site

ROOT = Path(__file__).resolve().parent.parent
TEAM = "-100777"
MEMBER = "Lan (telegram:42)"
QUESTION = "Tôi là Hoa, số 0912345678, hỏi thủ tục đăng ký kinh doanh karaoke"
ANSWER = "Bạn nộp hồ sơ ở bộ phận một cửa của phường nhé."
DRAFT_FIELDS = ("source", "kind", "state", "question", "questions", "answer", "ward", "entry_id", "category", "title",
                "keywords", "links", "related", "wards", "entry_source")


@pytest.fixture
async def site(database_url):
    async with running_site(database_url, team_chats=f"default:{TEAM}") as s:
        await s.account("admin", "admin")
        yield s


async def thread(site, citizen: str, answered: bool = True) -> HandoffInfo:
    """A web citizen of phuong-a with a thread in the team group (as if its post had gone out)."""
    store = site.runtime.store
    user = await store.users.touch("web", citizen, "phuong-a")
    handoff = await store.handoffs.open(user, TEAM, None)
    await store.handoffs.add_message(handoff.id, "citizen", QUESTION, team_chat_id=TEAM, group_message_id=1,
                                    delivered=True)
    if answered:
        await store.handoffs.add_message(handoff.id, "team", ANSWER, author=MEMBER, team_chat_id=TEAM)
    return handoff


async def press_in_team_group(site, action: str) -> list[str]:
    """A team member presses a button under a thread's post; the texts the group gets back."""
    msg = IncomingMessage(channel="telegram", user_id="42", chat_id=TEAM, chat_type="group", action=action,
                          author=MEMBER)
    return [reply.text for reply in await site.runtime.conversation.handle(msg)]


async def audit(site, action: str) -> list[tuple[str, str | None, dict]]:
    async with site.runtime.store.sessions() as s:
        rows = await s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
        return [(row.actor, row.target, row.detail) for row in rows]


async def outbox_texts(site, citizen: str) -> list[str]:
    user = await site.runtime.store.users.touch("web", citizen)
    async with site.runtime.store.sessions() as s:
        rows = await s.scalars(select(WebOutbox).where(WebOutbox.user_id == user.id).order_by(WebOutbox.id))
        return [row.payload["text"] for row in rows]


async def test_closing_a_closed_thread_does_nothing_from_the_dashboard_or_the_group(site):
    first, second = await thread(site, "web-1"), await thread(site, "web-2")
    admin = await site.client("admin")

    page = f"/dashboard/handoffs/{first.id}"
    assert "Đã đóng câu hỏi." in (await admin.post(f"{page}/close", {}, csrf_from=page)).text
    again = await admin.post(f"{page}/close", {}, csrf_from=page)  # a second click, or a second tab
    assert again.status == 200 and "đã được đóng trước đó" in again.text
    assert await press_in_team_group(site, f"ho:close:{first.id}") == [
        texts.GROUP_ALREADY_CLOSED.format(id=first.id)]

    # Closed in the team group first: the dashboard's close then changes nothing either.
    assert await press_in_team_group(site, f"ho:close:{second.id}") == [
        texts.GROUP_CLOSED.format(id=second.id, who=MEMBER)]
    page = f"/dashboard/handoffs/{second.id}"
    assert "đã được đóng trước đó" in (await admin.post(f"{page}/close", {}, csrf_from=page)).text

    assert [(actor, target) for actor, target, _ in await audit(site, "handoff.close")] == [
        ("dashboard:admin", str(first.id)), (MEMBER, str(second.id))]
    for citizen, handoff in (("web-1", first), ("web-2", second)):  # each citizen told once
        assert await outbox_texts(site, citizen) == [texts.TEAM_CLOSED_TO_CITIZEN.format(id=handoff.id)]


async def test_a_draft_from_the_team_group_and_one_from_the_dashboard_carry_the_same_fields(site):
    in_group, on_dashboard = await thread(site, "web-1"), await thread(site, "web-2")
    assert await press_in_team_group(site, f"ho:draft:{in_group.id}") == [texts.GROUP_DRAFTED.format(id=in_group.id)]
    admin = await site.client("admin")
    page = f"/dashboard/handoffs/{on_dashboard.id}"
    made = await admin.post(f"{page}/draft", {}, csrf_from=page)
    assert "/dashboard/kb/drafts/" in made.url and "karaoke" in made.text

    async with site.runtime.store.sessions() as s:
        drafts = {row.handoff_id: row for row in await s.scalars(select(FaqDraft))}
    group, dashboard = drafts[in_group.id], drafts[on_dashboard.id]
    assert {f: getattr(group, f) for f in DRAFT_FIELDS} == {f: getattr(dashboard, f) for f in DRAFT_FIELDS}
    assert (group.source, group.kind, group.state, group.ward, group.answer) == (
        "handoff", "entry", "draft", "phuong-a", ANSWER)
    assert group.questions == [group.question] and "karaoke" in group.question
    assert "0912345678" not in group.question  # the citizen's phone number never reaches a draft
    assert (group.created_by, dashboard.created_by) == (MEMBER, "dashboard:admin")
    assert [(actor, target, detail["source"], detail["handoff_id"])
            for actor, target, detail in await audit(site, "kb.draft.create")] == [
        (MEMBER, str(group.id), "handoff", in_group.id), ("dashboard:admin", str(dashboard.id), "handoff", on_dashboard.id)]

    # A ward-limited account sees both in its ward's draft list.
    await site.account("lan", "staff", ward="phuong-a")
    listing = (await (await site.client("lan")).get("/dashboard/kb/drafts")).text
    assert f"#{group.id}" in listing and f"#{dashboard.id}" in listing


async def test_nothing_to_draft_before_the_team_answered(site):
    unanswered = await thread(site, "web-1", answered=False)
    assert await press_in_team_group(site, f"ho:draft:{unanswered.id}") == [
        texts.GROUP_NOTHING_TO_DRAFT.format(id=unanswered.id)]
    admin = await site.client("admin")
    page = f"/dashboard/handoffs/{unanswered.id}"
    refused = await admin.post(f"{page}/draft", {}, csrf_from=page)
    assert "chưa có câu trả lời của cán bộ" in refused.text
    async with site.runtime.store.sessions() as s:
        assert (await s.scalars(select(FaqDraft))).all() == []


def test_the_service_sits_below_the_conversation_the_dashboard_and_the_channels():
    """It reaches citizens and groups through a Messenger, never through a concrete adapter."""
    code = ("import sys, bot.handoff.service; "
            "print('\\n'.join(m for m in sys.modules if m.startswith(('bot.', 'handlers.'))))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=ROOT).stdout.split())
    above = {"bot.runtime", "bot.web", "bot.jobs", "handlers.conversation", "handlers.handoff", "bot.channels.web",
             "bot.channels.telegram", "bot.channels.zalo_oa", "bot.channels.zalo_bot", "bot.channels.zalo_common"}
    assert "bot.handoff.service" in loaded
    assert not loaded & above and not [m for m in loaded if m.startswith("bot.dashboard")]
