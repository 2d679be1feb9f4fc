"""Hand-off to the community team: citizen side (ask, follow up, leave) and team side
(reply in the team group, mark done, turn into a draft FAQ entry).

The thread state lives in the database, so a restart loses nothing: a team reply is
stored first, then delivered, and undelivered replies are retried (`redeliver`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from bot.storage.store import HandoffInfo, UserInfo
from handlers import texts
from handlers.menus import back_to_bot_row, menu_buttons
from handlers.messages import Button, IncomingMessage, Reply

if TYPE_CHECKING:
    from handlers.conversation import Conversation, Turn

log = logging.getLogger(__name__)



class HandoffFeature:
    def __init__(self, conversation: Conversation):
        self.conv = conversation

    @property
    def store(self):
        return self.conv.store

    @property
    def delivery_lease(self) -> dt.timedelta:
        """How long a process may take to deliver a team reply (live retries last ~90 s)
        before another round of `redeliver` may try it."""
        return dt.timedelta(seconds=self.conv.config.delivery_lease_seconds)

    def offer_reply(self) -> Reply:
        return Reply(texts.OFFER_TEAM_AFTER_FALLBACKS, [[Button(texts.SEND_TO_TEAM, "human")]], kind="offer")

    # --- citizen side ---------------------------------------------------------------
    async def on_citizen_action(self, turn: Turn, name: str, arg: str) -> list[Reply]:
        if self.store is None or turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        if name == "human":
            last = await self.store.last_question(turn.user)
            if last is None:
                await self.store.update_user(turn.user.id, state="await_handoff_question")
                return [Reply(texts.ASK_QUESTION_FOR_TEAM, [back_to_bot_row()], kind="notice")]
            question_id, text = last
            return await self.open(turn.user, text, question_id)
        if arg == "leave":
            await self.store.update_user(turn.user.id, state="")
            return [Reply(texts.HANDOFF_LEFT, menu_buttons(), kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]

    async def on_citizen_text_in_state(self, turn: Turn, text: str) -> list[Reply] | None:
        """Messages while waiting for a person go to the team, not to the matcher."""
        user = turn.user
        assert user is not None and self.store is not None
        if user.state == "await_handoff_question":
            question_id = await self.store.log_question(user, text, text, "handoff", None, 0.0, [])
            return await self.open(user, text, question_id)
        if user.state.startswith("relay:"):
            handoff = await self.store.get_handoff(int(user.state.split(":", 1)[1]))
            if handoff is None or handoff.state == "closed":
                await self.store.update_user(user.id, state="")
                return None
            if handoff.team_chat_id and self.conv.messenger is not None:
                await self.post_to_team(handoff, texts.GROUP_FOLLOWUP.format(id=handoff.id, text=text), "citizen",
                                        text)
            else:  # no team group: kept for the dashboard's hand-off page
                await self.store.add_handoff_message(handoff.id, "citizen", text)
            return [Reply(texts.HANDOFF_FOLLOWUP_SENT, [back_to_bot_row()], kind="notice")]
        return None

    async def open(self, user: UserInfo, text: str, question_id: int | None) -> list[Reply]:
        assert self.store is not None
        team_chat = self.conv.config.team_chat_for(user.ward)
        handoff = await self.store.open_handoff(user, team_chat or "", question_id)
        await self.store.update_user(user.id, state=f"relay:{handoff.id}", fallback_streak=0)
        if not team_chat or self.conv.messenger is None:
            await self.store.add_handoff_message(handoff.id, "citizen", text)
            return [Reply(texts.HANDOFF_NO_TEAM.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]
        ward_name = self.conv.config.wards.get(user.ward or "", "")
        body = texts.GROUP_NEW.format(id=handoff.id, ward=f" ({ward_name})" if ward_name else "", text=text)
        thread_id = await self.conv.messenger.create_topic(
            self.conv.config.team_channel, team_chat, f"#{handoff.id} {text[:60]}")
        if thread_id is not None:
            await self.store.set_handoff_thread(handoff.id, thread_id)
            handoff = await self.store.get_handoff(handoff.id) or handoff
        await self.post_to_team(handoff, body, "citizen", text, buttons=True)
        return [Reply(texts.HANDOFF_SENT.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]

    async def post_to_team(self, handoff: HandoffInfo, body: str, direction: str, original: str,
                           buttons: bool = False) -> None:
        assert self.store is not None and self.conv.messenger is not None
        rows = [[Button(texts.MARK_DONE, f"ho:close:{handoff.id}"),
                 Button(texts.MAKE_DRAFT, f"ho:draft:{handoff.id}")]] if buttons else []
        message_id = await self.conv.messenger.send(
            self.conv.config.team_channel, handoff.team_chat_id, Reply(body, rows, kind="team"),
            thread_id=handoff.thread_id)
        await self.store.add_handoff_message(handoff.id, direction, original, team_chat_id=handoff.team_chat_id,
                                             group_message_id=message_id, delivered=True)

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
        if msg.reply_to_message_id is not None:
            handoff = await self.store.find_handoff_by_group_message(msg.chat, msg.reply_to_message_id)
        if handoff is None and msg.thread_id is not None:
            handoff = await self.store.find_handoff_by_thread(msg.chat, msg.thread_id)
        if handoff is None:
            return [Reply(texts.GROUP_UNKNOWN_THREAD, kind="notice")] if msg.reply_to_message_id else []
        author = msg.author or f"{msg.channel}:{msg.user_id}"
        message_id = await self.store.add_handoff_message(handoff.id, "team", msg.text, author=author,
                                                          team_chat_id=msg.chat, lease=self.delivery_lease)
        await self.store.mark_handoff_answered(handoff, author)
        delivered = await self.deliver(message_id, handoff, msg.text)
        note = texts.GROUP_RELAYED.format(id=handoff.id)
        if handoff.state == "closed":
            note = texts.GROUP_THREAD_CLOSED.format(id=handoff.id)
        return [Reply(note, kind="notice")] if delivered else []

    async def deliver(self, message_id: int, handoff: HandoffInfo, text: str) -> bool:
        """Send a stored team reply to the citizen; it stays queued if sending fails."""
        assert self.store is not None
        user = await self.store.get_user(handoff.user_id)
        if user is None or self.conv.messenger is None:
            return False
        reply = Reply(texts.TEAM_REPLY.format(id=handoff.id, text=text), [back_to_bot_row()], kind="team_reply")
        try:
            await self.conv.messenger.send(user.channel, user.platform_id, reply)
        except Exception:
            log.warning("team reply for hand-off %s not delivered yet; will retry", handoff.id, exc_info=True)
            return False
        await self.store.mark_delivered(message_id)
        return True

    async def redeliver(self) -> int:
        """Deliver team replies stored but not sent (e.g. the process stopped mid-relay)."""
        if self.store is None:
            return 0
        sent = 0
        for message_id, handoff_id, text in await self.store.claim_undelivered_team_replies(self.delivery_lease):
            handoff = await self.store.get_handoff(handoff_id)
            if handoff is not None and await self.deliver(message_id, handoff, text):
                sent += 1
        return sent

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
            await self.store.close_handoff(handoff.id)
            await self.store.audit(who, "handoff.close", str(handoff.id))
            user = await self.store.get_user(handoff.user_id)
            if user is not None and self.conv.messenger is not None:
                try:
                    await self.conv.messenger.send(
                        user.channel, user.platform_id,
                        Reply(texts.TEAM_CLOSED_TO_CITIZEN.format(id=handoff.id), menu_buttons(), kind="notice"))
                except Exception:
                    log.warning("could not tell the citizen hand-off %s closed", handoff.id, exc_info=True)
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
    async def remind_and_close(self, remind_after, close_after) -> None:
        """Raise unanswered threads again in the group; close idle ones."""
        if self.store is None:
            return
        if self.conv.messenger is not None:
            for handoff in await self.store.handoffs_to_remind(remind_after):
                if not handoff.team_chat_id:
                    continue
                try:
                    await self.conv.messenger.send(
                        self.conv.config.team_channel, handoff.team_chat_id,
                        Reply(texts.GROUP_REMINDER.format(id=handoff.id), kind="team"), thread_id=handoff.thread_id)
                except Exception:
                    log.warning("reminder for hand-off %s failed", handoff.id, exc_info=True)
        for handoff_id in await self.store.idle_handoffs(close_after):
            await self.store.close_handoff(handoff_id)
