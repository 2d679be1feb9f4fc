"""Hand-off to the community team: citizen side (ask, follow up, leave) and team side
(reply in the team group, mark done, turn into a draft FAQ entry).

The thread state lives in the database, so a restart loses nothing: a team reply is
stored first, then delivered, and undelivered replies are retried (`redeliver`) unless
they can never arrive (the citizen blocked the bot, the platform refused the message),
in which case the team is told. A citizen has one thread at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from bot.channels.errors import OutsideWindow, RecipientGone, Rejected, SendError
from bot.channels.registry import ChannelUnavailable
from bot.privacy import loggable, redact
from bot.storage.store import HandoffInfo, UserInfo
from handlers import texts
from handlers.menus import back_to_bot_row, menu_buttons
from handlers.messages import Button, IncomingMessage, Reply

if TYPE_CHECKING:
    from handlers.conversation import Conversation, Turn

log = logging.getLogger(__name__)

# "Gặp cán bộ" from the menu sends the latest question only if it is this recent and the
# bot did not help; a button under a question's reply may send that question within a day.
MENU_QUESTION_WINDOW = dt.timedelta(hours=1)
BUTTON_QUESTION_WINDOW = dt.timedelta(hours=24)

# Outcomes of relaying a team reply to the citizen.
SENT, QUEUED, WINDOW, GONE, REJECTED = "sent", "queued", "window", "gone", "rejected"
_NOT_SENT_ERRORS = (SendError, ChannelUnavailable)


class HandoffFeature:
    def __init__(self, conversation: Conversation):
        self.conv = conversation

    @property
    def store(self):
        return self.conv.store

    @property
    def delivery_lease(self) -> dt.timedelta:
        """How long a process may take to deliver a team reply (live retries last ~2 min)
        before another round of `redeliver` may try it."""
        return dt.timedelta(seconds=self.conv.config.delivery_lease_seconds)

    def offer_reply(self, question_ref: str = "0") -> Reply:
        return Reply(texts.OFFER_TEAM_AFTER_FALLBACKS, [[Button(texts.SEND_TO_TEAM, human_action(question_ref))]],
                     kind="offer")

    # --- citizen side ---------------------------------------------------------------
    async def on_citizen_action(self, turn: Turn, name: str, arg: str) -> list[Reply]:
        if self.store is None or turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        if name == "human":
            return await self.ask(turn.user, int(arg) if arg.isdigit() and arg != "0" else None)
        if arg == "leave":
            await self.store.update_user(turn.user.id, state="")
            return [Reply(texts.HANDOFF_LEFT, menu_buttons(), kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]

    async def ask(self, user: UserInfo, question_id: int | None) -> list[Reply]:
        """The citizen wants a person: reuse their open thread, send the question they mean,
        or ask them to type it (never an old question they did not pick)."""
        assert self.store is not None
        window = BUTTON_QUESTION_WINDOW if question_id is not None else MENU_QUESTION_WINDOW
        question = await self.store.question_for_handoff(user, window, question_id)
        current = await self.store.open_handoff_of(user)
        if current is not None:
            await self.store.update_user(user.id, state=f"relay:{current.id}", fallback_streak=0)
            if question is not None and question[0] != current.question_id:
                await self.add_to_thread(current, question[1])
                return [Reply(texts.HANDOFF_ADDED.format(id=current.id), [back_to_bot_row()], kind="handoff")]
            return [Reply(texts.HANDOFF_ALREADY_OPEN.format(id=current.id), [back_to_bot_row()], kind="handoff")]
        if question is None:
            await self.store.update_user(user.id, state="await_handoff_question")
            return [Reply(texts.ASK_QUESTION_FOR_TEAM, [back_to_bot_row()], kind="notice")]
        return await self.open(user, question[1], question[0])

    async def on_citizen_text_in_state(self, turn: Turn, text: str) -> list[Reply] | None:
        """Messages while waiting for a person go to the team, not to the matcher.

        Redacted here, where every typed message on its way to the team passes: the team group,
        its forum topic's name and the stored thread never see a phone, ID or card number."""
        user = turn.user
        assert user is not None and self.store is not None
        text = redact(text)
        if user.state == "await_handoff_question":
            logged, normalized = loggable(text, self.conv.knowledge.normalizer.normalized)
            question_id = await self.store.log_question(user, logged, normalized, "handoff", None, 0.0, [])
            return await self.open(user, text, question_id)
        if user.state.startswith("relay:"):
            handoff = await self.store.get_handoff(int(user.state.split(":", 1)[1]))
            if handoff is None or handoff.state == "closed":
                await self.store.update_user(user.id, state="")
                return None
            await self.add_to_thread(handoff, text)
            return [Reply(texts.HANDOFF_FOLLOWUP_SENT, [back_to_bot_row()], kind="notice")]
        return None

    async def add_to_thread(self, handoff: HandoffInfo, text: str) -> None:
        assert self.store is not None
        if handoff.team_chat_id and self.conv.messenger is not None:
            await self.post_to_team(handoff, texts.GROUP_FOLLOWUP.format(id=handoff.id, text=text), text)
        else:  # no team group: kept for the dashboard's hand-off page
            await self.store.add_handoff_message(handoff.id, "citizen", text)

    async def open(self, user: UserInfo, text: str, question_id: int | None) -> list[Reply]:
        assert self.store is not None
        team_chat = self.conv.config.team_chat_for(user.ward)
        handoff = await self.store.open_handoff(user, team_chat or "", question_id)
        await self.store.update_user(user.id, state=f"relay:{handoff.id}", fallback_streak=0)
        if team_chat and self.conv.messenger is not None:
            ward_name = self.conv.config.wards.get(user.ward or "", "")
            body = texts.GROUP_NEW.format(id=handoff.id, ward=f" ({ward_name})" if ward_name else "", text=text)
            thread_id = await self.conv.messenger.create_topic(
                self.conv.config.team_channel, team_chat, f"#{handoff.id} {text[:60]}")
            if thread_id is not None:
                await self.store.set_handoff_thread(handoff.id, thread_id)
                handoff = await self.store.get_handoff(handoff.id) or handoff
            if await self.post_to_team(handoff, body, text, buttons=True):
                return [Reply(texts.HANDOFF_SENT.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]
        else:
            await self.store.add_handoff_message(handoff.id, "citizen", text)
        # Kept for the dashboard: staff can answer there, and the answer reaches the citizen here.
        return [Reply(texts.HANDOFF_NO_TEAM.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]

    async def post_to_team(self, handoff: HandoffInfo, body: str, original: str, buttons: bool = False) -> bool:
        """Post a citizen message to the thread's team group; the message is stored either way.

        False when the group cannot be reached (wrong TEAM_CHATS id, bot removed, group
        upgraded to a supergroup): the thread then continues on the dashboard only, and the
        operator gets an error in the log."""
        assert self.store is not None and self.conv.messenger is not None
        rows = [[Button(texts.MARK_DONE, f"ho:close:{handoff.id}"),
                 Button(texts.MAKE_DRAFT, f"ho:draft:{handoff.id}")]] if buttons else []
        try:
            message_id = await self.conv.messenger.send(
                self.conv.config.team_channel, handoff.team_chat_id, Reply(body, rows, kind="team"),
                thread_id=handoff.thread_id)
            problem = None if message_id is not None else "no message id returned"
        except _NOT_SENT_ERRORS as exc:
            message_id, problem = None, f"{type(exc).__name__}: {exc}"
        if problem is not None:
            log.error("hand-off #%s: cannot post to team chat %s (%s); check TEAM_CHATS and that the bot is "
                      "a member of that group. The thread stays on the dashboard.",
                      handoff.id, handoff.team_chat_id, problem)
            await self.store.add_handoff_message(handoff.id, "citizen", original)
            await self.store.detach_handoff_from_team(handoff.id)
            return False
        await self.store.add_handoff_message(handoff.id, "citizen", original, team_chat_id=handoff.team_chat_id,
                                             group_message_id=message_id, delivered=True)
        return True

    # --- team side --------------------------------------------------------------------
    async def on_team_message(self, msg: IncomingMessage) -> list[Reply]:
        config = self.conv.config
        if self.store is None or not config.is_team_chat(msg.chat):
            return []  # the bot ignores groups that are not configured team chats
        if msg.action is not None:
            return await self._team_action(msg)
        if msg.text is None or msg.text.startswith("/"):
            return []
        handoff = None
        if msg.reply_to_message_id is not None and msg.reply_to_bot:
            handoff = await self.store.find_handoff_by_group_message(msg.chat, msg.reply_to_message_id)
        if handoff is None and msg.thread_id is not None:
            handoff = await self.store.find_handoff_by_thread(msg.chat, msg.thread_id)
        if handoff is None:
            # Team members talking among themselves are left alone; only a reply to one of
            # the bot's own messages that matches no thread gets a hint.
            hint = msg.reply_to_bot and msg.reply_to_message_id is not None and msg.thread_id is None
            return [Reply(texts.GROUP_UNKNOWN_THREAD, kind="notice")] if hint else []
        author = msg.author or f"{msg.channel}:{msg.user_id}"
        message_id = await self.store.add_handoff_message(handoff.id, "team", msg.text, author=author,
                                                          team_chat_id=msg.chat, lease=self.delivery_lease)
        await self.store.mark_handoff_answered(handoff, author)
        outcome, reason = await self.relay(message_id, handoff, msg.text)
        note = self._relay_note(handoff, outcome, reason, live=True)
        return [Reply(note, kind="notice")] if note else []

    async def relay(self, message_id: int, handoff: HandoffInfo, text: str) -> tuple[str, str]:
        """Send a stored team reply to the citizen: (outcome, reason). QUEUED and WINDOW
        replies stay stored and are retried; GONE and REJECTED ones never will be."""
        assert self.store is not None
        user = await self.store.get_user(handoff.user_id)
        if user is None:
            await self.store.mark_undeliverable(message_id, "citizen record deleted")
            return GONE, "citizen record deleted"
        if self.conv.messenger is None:
            return QUEUED, "no channels"
        reply = Reply(texts.TEAM_REPLY.format(id=handoff.id, text=text), [back_to_bot_row()], kind="team_reply")
        try:
            await self.conv.messenger.send(user.channel, user.platform_id, reply)
        except RecipientGone as exc:
            await self.store.mark_undeliverable(message_id, f"recipient gone: {exc.reason}")
            await self.store.close_handoff(handoff.id)
            return GONE, exc.reason
        except OutsideWindow as exc:
            log.info("team reply for hand-off %s waits for the citizen to write again", handoff.id)
            return WINDOW, exc.reason
        except Rejected as exc:
            log.warning("team reply for hand-off %s refused by %s: %s", handoff.id, user.channel, exc.reason)
            await self.store.mark_undeliverable(message_id, f"rejected: {exc.reason}")
            return REJECTED, exc.reason
        except Exception as exc:
            log.warning("team reply for hand-off %s not delivered yet; will retry", handoff.id, exc_info=True)
            return QUEUED, str(exc)
        await self.store.mark_delivered(message_id)
        return SENT, ""

    async def deliver(self, message_id: int, handoff: HandoffInfo, text: str) -> bool:
        """Relay a stored team reply; True when it reached the citizen (used by the dashboard)."""
        return (await self.relay(message_id, handoff, text))[0] == SENT

    @staticmethod
    def _relay_note(handoff: HandoffInfo, outcome: str, reason: str, live: bool) -> str | None:
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

    async def redeliver(self) -> int:
        """Deliver team replies stored but not sent (the process stopped mid-relay, the API was
        down, the citizen's channel only allows replies after they write again)."""
        if self.store is None:
            return 0
        sent = 0
        for message_id, handoff_id, text in await self.store.claim_undelivered_team_replies(self.delivery_lease):
            handoff = await self.store.get_handoff(handoff_id)
            if handoff is None:
                continue
            outcome, reason = await self.relay(message_id, handoff, text)
            sent += outcome == SENT
            note = self._relay_note(handoff, outcome, reason, live=False)
            if note:
                await self._tell_team(handoff, note)
        return sent

    async def _tell_team(self, handoff: HandoffInfo, text: str, reply_to: int | None = None) -> int | None:
        """A notice in the thread's team group; None when there is none or it failed."""
        if not handoff.team_chat_id or self.conv.messenger is None:
            return None
        try:
            return await self.conv.messenger.send(self.conv.config.team_channel, handoff.team_chat_id,
                                                  Reply(text, kind="team"), thread_id=handoff.thread_id,
                                                  reply_to=reply_to)
        except _NOT_SENT_ERRORS as exc:
            log.warning("hand-off #%s: notice to team chat %s failed: %s", handoff.id, handoff.team_chat_id, exc)
            return None

    async def _tell_citizen(self, handoff: HandoffInfo, reply: Reply) -> None:
        assert self.store is not None
        user = await self.store.get_user(handoff.user_id)
        if user is None or self.conv.messenger is None:
            return
        try:
            await self.conv.messenger.send(user.channel, user.platform_id, reply)
        except _NOT_SENT_ERRORS as exc:
            log.warning("could not tell the citizen about hand-off %s: %s", handoff.id, type(exc).__name__)

    async def _team_action(self, msg: IncomingMessage) -> list[Reply]:
        assert self.store is not None and msg.action is not None
        parts = msg.action.split(":")
        if len(parts) != 3 or parts[0] != "ho" or not parts[2].isdigit():
            return []
        handoff = await self.store.get_handoff(int(parts[2]))
        if handoff is None or handoff.team_chat_id != msg.chat:
            return []  # a button from another group cannot touch this thread
        who = msg.author or f"{msg.channel}:{msg.user_id}"
        if parts[1] == "close":
            closed = await self.store.close_handoff(handoff.id)
            if closed is None:
                return [Reply(texts.GROUP_ALREADY_CLOSED.format(id=handoff.id), kind="notice")]
            await self.store.audit(who, "handoff.close", str(handoff.id))
            await self._tell_citizen(handoff, Reply(texts.TEAM_CLOSED_TO_CITIZEN.format(id=handoff.id),
                                                    menu_buttons(), kind="notice"))
            if msg.message_id is not None and self.conv.messenger is not None:
                # "Đã xử lý" is done; drafting an FAQ entry from the answer stays possible.
                await self.conv.messenger.edit_buttons(self.conv.config.team_channel, msg.chat, msg.message_id,
                                                       [[Button(texts.MAKE_DRAFT, f"ho:draft:{handoff.id}")]])
            return [Reply(texts.GROUP_CLOSED.format(id=handoff.id, who=who), kind="notice")]
        if parts[1] == "draft":
            answer = await self.store.last_team_text(handoff.id)
            if not answer:
                return [Reply(texts.GROUP_NOTHING_TO_DRAFT.format(id=handoff.id), kind="notice")]
            question = await self.store.first_citizen_text(handoff.id)
            await self.store.add_draft("handoff", question, answer, who, handoff.id)
            await self.store.audit(who, "handoff.draft", str(handoff.id))
            return [Reply(texts.GROUP_DRAFTED.format(id=handoff.id), kind="notice")]
        return []

    # --- scheduled -------------------------------------------------------------------------
    async def remind_and_close(self, remind_after: dt.timedelta, close_after: dt.timedelta) -> None:
        """Raise unanswered threads again in the group (as a reply to the question, and
        replying to the reminder reaches the citizen too); close idle ones, telling both sides."""
        if self.store is None:
            return
        for handoff in await self.store.handoffs_to_remind(remind_after):
            if not handoff.team_chat_id:
                continue
            original = await self.store.first_group_message_id(handoff.id)
            posted = await self._tell_team(handoff, texts.GROUP_REMINDER.format(id=handoff.id), reply_to=original)
            if posted is not None:
                await self.store.add_team_post(handoff.id, handoff.team_chat_id, posted)
        hours = max(1, round(close_after.total_seconds() / 3600))
        for handoff_id in await self.store.idle_handoffs(close_after):
            closed = await self.store.close_handoff(handoff_id)
            if closed is None:
                continue  # another process closed it first
            await self._tell_citizen(closed, Reply(texts.AUTO_CLOSED_TO_CITIZEN.format(id=closed.id), menu_buttons(),
                                                   kind="notice"))
            await self._tell_team(closed, texts.GROUP_AUTO_CLOSED.format(id=closed.id, hours=hours))


def human_action(question_ref: str = "0") -> str:
    """Button action for "send to the team"; carries the question it is about, if any."""
    return f"human:{question_ref}" if question_ref not in ("", "0") else "human"
