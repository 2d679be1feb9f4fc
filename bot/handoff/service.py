"""Hand-off threads between a citizen and the community team: every operation, once, for the
conversation (citizen and team group), the dashboard and the periodic jobs.

The thread state lives in the database, so a restart loses nothing: a team reply is stored
first, then delivered, and undelivered replies are retried (`redeliver`) unless they can never
arrive (the citizen blocked the bot, the platform refused the message), in which case the team
is told. A citizen has one thread at a time.

Layering: storage below, the conversation and the dashboard above. Messages leave through a
`Messenger` (the channel registry implements it); no channel or dashboard code is imported.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

from bot.contracts import texts
from bot.contracts.delivery import ChannelUnavailable, OutsideWindow, RecipientGone, Rejected, SendError
from bot.contracts.menus import back_to_bot_row, menu_buttons
from bot.contracts.messages import Button, Messenger, Reply
from bot.contracts.payloads import CloseThread, DraftFromThread
from bot.contracts.states import Relaying
from bot.privacy import redact
from bot.storage.store import HandoffInfo, Store, UserInfo

log = logging.getLogger(__name__)

# Outcomes of relaying a team reply to the citizen.
SENT, QUEUED, WINDOW, GONE, REJECTED = "sent", "queued", "window", "gone", "rejected"
_NOT_SENT_ERRORS = (SendError, ChannelUnavailable)


class TeamRouting(Protocol):
    """Where a ward's threads go (handlers.conversation.ConversationConfig provides it)."""

    wards: dict[str, str]  # slug -> display name
    team_channel: str
    delivery_lease_seconds: float

    def team_chat_for(self, ward: str | None) -> str | None: ...


@dataclass(frozen=True)
class Relay:
    """What became of a team reply: the outcome, the platform's reason, and the note for the
    team group (None when there is nothing to say)."""

    outcome: str
    reason: str = ""
    note: str | None = None

    @property
    def sent(self) -> bool:
        return self.outcome == SENT


def draft_buttons(handoff_id: int) -> list[list[Button]]:
    """What stays under a thread's question in the team group once it is closed."""
    return [[Button(texts.MAKE_DRAFT, DraftFromThread(handoff_id).pack())]]


class HandoffService:
    def __init__(self, store: Store, messenger: Messenger | None, routing: TeamRouting):
        self.store = store
        self.messenger = messenger
        self.routing = routing

    @property
    def delivery_lease(self) -> dt.timedelta:
        """How long a process may take to deliver a team reply (live retries last ~2 min)
        before another round of `redeliver` may try it."""
        return dt.timedelta(seconds=self.routing.delivery_lease_seconds)

    # --- finding threads ---------------------------------------------------------------------
    async def get(self, handoff_id: int) -> HandoffInfo | None:
        return await self.store.handoffs.get(handoff_id)

    async def open_thread_of(self, user: UserInfo) -> HandoffInfo | None:
        return await self.store.handoffs.latest_open_of(user)

    async def thread_in_team_chat(self, chat: str, reply_to_bot_message: int | None,
                                  thread_id: int | None) -> HandoffInfo | None:
        """The thread a team-group message belongs to: the bot post it replies to, else its topic."""
        handoff = None
        if reply_to_bot_message is not None:
            handoff = await self.store.handoffs.find_by_group_message(chat, reply_to_bot_message)
        if handoff is None and thread_id is not None:
            handoff = await self.store.handoffs.find_by_thread(chat, thread_id)
        return handoff

    # --- citizen side ------------------------------------------------------------------------
    async def open(self, user: UserInfo, text: str, question_id: int | None) -> tuple[HandoffInfo, bool]:
        """Open a thread with the citizen's (redacted) question and route their next messages to
        it; (the thread, whether it reached a team group). Without a reachable group the
        thread waits on the dashboard, where staff can answer it too."""
        team_chat = self.routing.team_chat_for(user.ward)
        handoff = await self.store.handoffs.open(user, team_chat or "", question_id)
        await self.store.users.update(user.id, state=Relaying(handoff.id).pack(), fallback_streak=0)
        if not team_chat or self.messenger is None:
            await self.store.handoffs.add_message(handoff.id, "citizen", text)
            return handoff, False
        ward_name = self.routing.wards.get(user.ward or "", "")
        body = texts.GROUP_NEW.format(id=handoff.id, ward=f" ({ward_name})" if ward_name else "", text=text)
        thread_id = await self.messenger.create_topic(self.routing.team_channel, team_chat,
                                                      f"#{handoff.id} {text[:60]}")
        if thread_id is not None:
            await self.store.handoffs.set_thread(handoff.id, thread_id)
            handoff = await self.store.handoffs.get(handoff.id) or handoff
        return handoff, await self._post_to_team(handoff, body, text, buttons=True)

    async def add_citizen_message(self, handoff: HandoffInfo, text: str) -> None:
        """A follow-up from the citizen: to the team group, or kept for the dashboard."""
        if handoff.team_chat_id and self.messenger is not None:
            await self._post_to_team(handoff, texts.GROUP_FOLLOWUP.format(id=handoff.id, text=text), text)
        else:
            await self.store.handoffs.add_message(handoff.id, "citizen", text)

    async def _post_to_team(self, handoff: HandoffInfo, body: str, original: str, buttons: bool = False) -> bool:
        """Post a citizen message to the thread's team group; the message is stored either way.

        False when the group cannot be reached (wrong TEAM_CHATS id, bot removed, group
        upgraded to a supergroup): the thread then continues on the dashboard only, and the
        operator gets an error in the log."""
        assert self.messenger is not None
        rows = [[Button(texts.MARK_DONE, CloseThread(handoff.id).pack()),
                 Button(texts.MAKE_DRAFT, DraftFromThread(handoff.id).pack())]] if buttons else []
        try:
            message_id = await self.messenger.send(
                self.routing.team_channel, handoff.team_chat_id, Reply(body, rows, kind="team"),
                thread_id=handoff.thread_id)
            problem = None if message_id is not None else "no message id returned"
        except _NOT_SENT_ERRORS as exc:
            message_id, problem = None, f"{type(exc).__name__}: {exc}"
        if problem is not None:
            log.error("hand-off #%s: cannot post to team chat %s (%s); check TEAM_CHATS and that the bot is "
                      "a member of that group. The thread stays on the dashboard.",
                      handoff.id, handoff.team_chat_id, problem)
            await self.store.handoffs.add_message(handoff.id, "citizen", original)
            await self.store.handoffs.detach_from_team(handoff.id)
            return False
        await self.store.handoffs.add_message(handoff.id, "citizen", original, team_chat_id=handoff.team_chat_id,
                                             group_message_id=message_id, delivered=True)
        return True

    # --- team side ---------------------------------------------------------------------------
    async def record_team_reply(self, handoff: HandoffInfo, text: str, author: str,
                                team_chat_id: str | None = None) -> Relay:
        """Store a team member's answer (from the team group or the dashboard), mark the thread
        answered and relay it to the citizen now. The stored reply carries a delivery lease,
        so `redeliver` in another process does not send it a second time meanwhile."""
        message_id = await self.store.handoffs.add_message(handoff.id, "team", text, author=author,
                                                          team_chat_id=team_chat_id, lease=self.delivery_lease)
        await self.store.handoffs.mark_answered(handoff, author)
        outcome, reason = await self._relay(message_id, handoff, text)
        return Relay(outcome, reason, relay_note(handoff, outcome, reason, live=True))

    async def _relay(self, message_id: int, handoff: HandoffInfo, text: str) -> tuple[str, str]:
        """Send a stored team reply to the citizen: (outcome, reason). QUEUED and WINDOW
        replies stay stored and are retried; GONE and REJECTED ones never will be."""
        user = await self.store.users.get(handoff.user_id)
        if user is None:
            await self.store.handoffs.mark_undeliverable(message_id, "citizen record deleted")
            return GONE, "citizen record deleted"
        if self.messenger is None:
            return QUEUED, "no channels"
        reply = Reply(texts.TEAM_REPLY.format(id=handoff.id, text=text), [back_to_bot_row()], kind="team_reply")
        try:
            await self.messenger.send(user.channel, user.platform_id, reply)
        except RecipientGone as exc:
            await self.store.handoffs.mark_undeliverable(message_id, f"recipient gone: {exc.reason}")
            await self.store.handoffs.close(handoff.id)
            return GONE, exc.reason
        except OutsideWindow as exc:
            log.info("team reply for hand-off %s waits for the citizen to write again", handoff.id)
            return WINDOW, exc.reason
        except Rejected as exc:
            log.warning("team reply for hand-off %s refused by %s: %s", handoff.id, user.channel, exc.reason)
            await self.store.handoffs.mark_undeliverable(message_id, f"rejected: {exc.reason}")
            return REJECTED, exc.reason
        except Exception as exc:
            log.warning("team reply for hand-off %s not delivered yet; will retry", handoff.id, exc_info=True)
            return QUEUED, str(exc)
        await self.store.handoffs.mark_delivered(message_id)
        return SENT, ""

    async def close(self, handoff_id: int, actor: str) -> HandoffInfo | None:
        """Close a thread for a team member and tell the citizen; None (and nothing audited or
        sent) when it does not exist or was already closed, by anyone, anywhere."""
        closed = await self.store.handoffs.close(handoff_id)
        if closed is None:
            return None
        await self.store.audit_trail.record(actor, "handoff.close", str(handoff_id))
        await self.tell_citizen(closed, Reply(texts.TEAM_CLOSED_TO_CITIZEN.format(id=handoff_id), menu_buttons(),
                                              kind="notice"))
        return closed

    async def make_draft(self, handoff: HandoffInfo, actor: str) -> int | None:
        """A knowledge-base draft from a thread: the citizen's first message (redacted) as the
        question, the team's last reply as the answer, the thread's ward; the draft's id, or
        None when the team has not answered yet. The same draft from the group and the dashboard."""
        answer = await self.store.handoffs.last_team_text(handoff.id)
        if not answer:
            return None
        question = redact(await self.store.handoffs.first_citizen_text(handoff.id))
        return await self.store.drafts.add(actor, "handoff", kind="entry", state="draft",
                                          questions=[question] if question else [], answer=answer,
                                          handoff_id=handoff.id, ward=handoff.ward)

    async def tell_team(self, handoff: HandoffInfo, text: str, reply_to: int | None = None) -> int | None:
        """A notice in the thread's team group (best effort); its message id, None when the
        thread has no group or the notice failed."""
        if not handoff.team_chat_id or self.messenger is None:
            return None
        try:
            return await self.messenger.send(self.routing.team_channel, handoff.team_chat_id,
                                             Reply(text, kind="team"), thread_id=handoff.thread_id,
                                             reply_to=reply_to)
        except Exception as exc:
            log.warning("hand-off #%s: notice to team chat %s failed: %s", handoff.id, handoff.team_chat_id, exc)
            return None

    async def tell_citizen(self, handoff: HandoffInfo, reply: Reply) -> None:
        """A notice to the thread's citizen (best effort)."""
        user = await self.store.users.get(handoff.user_id)
        if user is None or self.messenger is None:
            return
        try:
            await self.messenger.send(user.channel, user.platform_id, reply)
        except Exception as exc:
            log.warning("could not tell the citizen about hand-off %s: %s", handoff.id, type(exc).__name__)

    # --- scheduled ---------------------------------------------------------------------------
    async def redeliver(self) -> int:
        """Deliver team replies stored but not sent (the process stopped mid-relay, the API was
        down, the citizen's channel only allows replies after they write again); how many went."""
        sent = 0
        for message_id, handoff_id, text in await self.store.handoffs.claim_undelivered_team_replies(self.delivery_lease):
            handoff = await self.store.handoffs.get(handoff_id)
            if handoff is None:
                continue
            outcome, reason = await self._relay(message_id, handoff, text)
            sent += outcome == SENT
            note = relay_note(handoff, outcome, reason, live=False)
            if note:
                await self.tell_team(handoff, note)
        return sent

    async def remind_and_close(self, remind_after: dt.timedelta, close_after: dt.timedelta) -> None:
        """Raise unanswered threads again in the group (as a reply to the question, and
        replying to the reminder reaches the citizen too); close idle ones, telling both sides."""
        for handoff in await self.store.handoffs.to_remind(remind_after):
            if not handoff.team_chat_id:
                continue
            original = await self.store.handoffs.first_group_message_id(handoff.id)
            posted = await self.tell_team(handoff, texts.GROUP_REMINDER.format(id=handoff.id), reply_to=original)
            if posted is not None:
                await self.store.handoffs.add_team_post(handoff.id, handoff.team_chat_id, posted)
        hours = max(1, round(close_after.total_seconds() / 3600))
        for handoff_id in await self.store.handoffs.idle_ids(close_after):
            closed = await self.store.handoffs.close(handoff_id)
            if closed is None:
                continue  # another process closed it first
            await self.tell_citizen(closed, Reply(texts.AUTO_CLOSED_TO_CITIZEN.format(id=closed.id), menu_buttons(),
                                                  kind="notice"))
            await self.tell_team(closed, texts.GROUP_AUTO_CLOSED.format(id=closed.id, hours=hours))


def relay_note(handoff: HandoffInfo, outcome: str, reason: str, live: bool) -> str | None:
    """What the team group is told about a relay. Retries (live=False) report only what
    changed for good, so a reply waiting for the citizen is announced once."""
    if outcome == SENT:
        closed = handoff.state == "closed"
        return (texts.GROUP_THREAD_CLOSED if closed and live else texts.GROUP_RELAYED).format(id=handoff.id)
    if outcome == GONE:
        return texts.GROUP_CITIZEN_GONE.format(id=handoff.id)
    if outcome == REJECTED:
        return texts.GROUP_RELAY_REJECTED.format(id=handoff.id, reason=reason[:120] or "không rõ lý do")
    if not live:
        return None
    return (texts.GROUP_RELAY_WINDOW if outcome == WINDOW else texts.GROUP_RELAY_PENDING).format(id=handoff.id)
