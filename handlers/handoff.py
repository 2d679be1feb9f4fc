"""Hand-off, conversation side: what the citizen and the team group type and press, and the
replies they get. The thread operations themselves (open, relay, close, drafts, redelivery,
reminders) are bot/handoff/service.py's, shared with the dashboard and the periodic jobs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bot.handoff.service import HandoffService, draft_buttons
from bot.privacy import loggable, redact
from bot.storage.store import UserInfo
from handlers import texts
from handlers.menus import back_to_bot_row, menu_buttons
from handlers.messages import Button, IncomingMessage, Reply

if TYPE_CHECKING:
    from handlers.conversation import Conversation, Turn

# "Gặp cán bộ" from the menu sends the latest question only if it is this recent and the
# bot did not help; a button under a question's reply may send that question within a day.
MENU_QUESTION_WINDOW = dt.timedelta(hours=1)
BUTTON_QUESTION_WINDOW = dt.timedelta(hours=24)


class HandoffFeature:
    def __init__(self, conversation: Conversation, service: HandoffService | None = None):
        self.conv = conversation
        if service is None and conversation.store is not None:
            service = HandoffService(conversation.store, conversation.messenger, conversation.config)
        self.service = service  # None without storage (previews, the terminal chat)

    def offer_reply(self, question_ref: str = "0") -> Reply:
        return Reply(texts.OFFER_TEAM_AFTER_FALLBACKS, [[Button(texts.SEND_TO_TEAM, human_action(question_ref))]],
                     kind="offer")

    # --- citizen side ---------------------------------------------------------------
    async def on_citizen_action(self, turn: Turn, name: str, arg: str) -> list[Reply]:
        if self.service is None or turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        if name == "human":
            return await self.ask(turn.user, int(arg) if arg.isdigit() and arg != "0" else None)
        if arg == "leave":
            await self.service.store.update_user(turn.user.id, state="")
            return [Reply(texts.HANDOFF_LEFT, menu_buttons(), kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]

    async def ask(self, user: UserInfo, question_id: int | None) -> list[Reply]:
        """The citizen wants a person: reuse their open thread, send the question they mean,
        or ask them to type it (never an old question they did not pick)."""
        assert self.service is not None
        store = self.service.store
        window = BUTTON_QUESTION_WINDOW if question_id is not None else MENU_QUESTION_WINDOW
        question = await store.question_for_handoff(user, window, question_id)
        current = await self.service.open_thread_of(user)
        if current is not None:
            await store.update_user(user.id, state=f"relay:{current.id}", fallback_streak=0)
            if question is not None and question[0] != current.question_id:
                await self.service.add_citizen_message(current, question[1])
                return [Reply(texts.HANDOFF_ADDED.format(id=current.id), [back_to_bot_row()], kind="handoff")]
            return [Reply(texts.HANDOFF_ALREADY_OPEN.format(id=current.id), [back_to_bot_row()], kind="handoff")]
        if question is None:
            await store.update_user(user.id, state="await_handoff_question")
            return [Reply(texts.ASK_QUESTION_FOR_TEAM, [back_to_bot_row()], kind="notice")]
        return await self.open(user, question[1], question[0])

    async def on_citizen_text_in_state(self, turn: Turn, text: str) -> list[Reply] | None:
        """Messages while waiting for a person go to the team, not to the matcher.

        Redacted here, where every typed message on its way to the team passes: the team group,
        its forum topic's name and the stored thread never see a phone, ID or card number."""
        user = turn.user
        assert user is not None
        if self.service is None:
            return None
        store = self.service.store
        text = redact(text)
        if user.state == "await_handoff_question":
            logged, normalized = loggable(text, self.conv.knowledge.normalizer.normalized)
            question_id = await store.log_question(user, logged, normalized, "handoff", None, 0.0, [])
            return await self.open(user, text, question_id)
        if user.state.startswith("relay:"):
            handoff = await self.service.get(int(user.state.split(":", 1)[1]))
            if handoff is None or handoff.state == "closed":
                await store.update_user(user.id, state="")
                return None
            await self.service.add_citizen_message(handoff, text)
            return [Reply(texts.HANDOFF_FOLLOWUP_SENT, [back_to_bot_row()], kind="notice")]
        return None

    async def open(self, user: UserInfo, text: str, question_id: int | None) -> list[Reply]:
        assert self.service is not None
        handoff, reached_team = await self.service.open(user, text, question_id)
        if reached_team:
            return [Reply(texts.HANDOFF_SENT.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]
        # Kept for the dashboard: staff can answer there, and the answer reaches the citizen here.
        return [Reply(texts.HANDOFF_NO_TEAM.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]

    # --- team side --------------------------------------------------------------------
    async def on_team_message(self, msg: IncomingMessage) -> list[Reply]:
        if self.service is None or not self.conv.config.is_team_chat(msg.chat):
            return []  # the bot ignores groups that are not configured team chats
        if msg.action is not None:
            return await self._team_action(msg)
        if msg.text is None or msg.text.startswith("/"):
            return []
        handoff = await self.service.thread_in_team_chat(
            msg.chat, msg.reply_to_message_id if msg.reply_to_bot else None, msg.thread_id)
        if handoff is None:
            # Team members talking among themselves are left alone; only a reply to one of
            # the bot's own messages that matches no thread gets a hint.
            hint = msg.reply_to_bot and msg.reply_to_message_id is not None and msg.thread_id is None
            return [Reply(texts.GROUP_UNKNOWN_THREAD, kind="notice")] if hint else []
        author = msg.author or f"{msg.channel}:{msg.user_id}"
        relay = await self.service.record_team_reply(handoff, msg.text, author, team_chat_id=msg.chat)
        return [Reply(relay.note, kind="notice")] if relay.note else []

    async def _team_action(self, msg: IncomingMessage) -> list[Reply]:
        """"Đã xử lý" (ho:close:<id>) and "Tạo FAQ nháp" (ho:draft:<id>) under a thread's post."""
        assert self.service is not None and msg.action is not None
        parts = msg.action.split(":")
        if len(parts) != 3 or parts[0] != "ho" or not parts[2].isdigit():
            return []
        handoff = await self.service.get(int(parts[2]))
        if handoff is None or handoff.team_chat_id != msg.chat:
            return []  # a button from another group cannot touch this thread
        who = msg.author or f"{msg.channel}:{msg.user_id}"
        if parts[1] == "close":
            if await self.service.close(handoff.id, who) is None:
                return [Reply(texts.GROUP_ALREADY_CLOSED.format(id=handoff.id), kind="notice")]
            if msg.message_id is not None and self.conv.messenger is not None:
                # "Đã xử lý" is done; drafting an FAQ entry from the answer stays possible.
                await self.conv.messenger.edit_buttons(self.conv.config.team_channel, msg.chat, msg.message_id,
                                                       draft_buttons(handoff.id))
            return [Reply(texts.GROUP_CLOSED.format(id=handoff.id, who=who), kind="notice")]
        if parts[1] == "draft":
            if await self.service.make_draft(handoff, who) is None:
                return [Reply(texts.GROUP_NOTHING_TO_DRAFT.format(id=handoff.id), kind="notice")]
            return [Reply(texts.GROUP_DRAFTED.format(id=handoff.id), kind="notice")]
        return []


def human_action(question_ref: str = "0") -> str:
    """Button action for "send to the team"; carries the question it is about, if any."""
    return f"human:{question_ref}" if question_ref not in ("", "0") else "human"
