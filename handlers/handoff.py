"""Hand-off, conversation side: what the citizen and the team group type and press, and the
replies they get. The thread operations themselves (open, relay, close, drafts, redelivery,
reminders) are bot/handoff/service.py's, shared with the dashboard and the periodic jobs.
"""

from __future__ import annotations

import datetime as dt

from bot.contracts import texts
from bot.contracts.menus import back_to_bot_row, menu_buttons
from bot.contracts.messages import Button, IncomingMessage, Reply
from bot.contracts.payloads import AskTeam, CloseThread, DraftFromThread, LeaveHandoff
from bot.contracts.states import AwaitingTeamQuestion, Relaying
from bot.handoff.service import HandoffService, draft_buttons
from bot.privacy import loggable, redact
from bot.storage.store import UserInfo
from handlers.router import FeatureContext, Router, Routes, Turn

# "Gặp cán bộ" from the menu sends the latest question only if it is this recent and the
# bot did not help; a button under a question's reply may send that question within a day.
MENU_QUESTION_WINDOW = dt.timedelta(hours=1)
BUTTON_QUESTION_WINDOW = dt.timedelta(hours=24)


class HandoffFeature:
    def __init__(self, ctx: FeatureContext, service: HandoffService | None = None):
        self.ctx = ctx
        self.service = service if service is not None else HandoffService(ctx.store, ctx.messenger, ctx.config)
        # What the team group's buttons do (a separate table: the same payload pressed in a
        # private chat is a forged one and gets the citizen's "unknown action").
        self.team_actions = Router([Routes(actions={CloseThread: self._close, DraftFromThread: self._draft})])

    def routes(self) -> Routes:
        """The citizen side; the team group's messages come through `on_team_message`."""
        return Routes(
            actions={AskTeam: self.on_ask, LeaveHandoff: self.on_leave},
            malformed={"human": self.on_ask_malformed, "ho": self.on_malformed},
            states={AwaitingTeamQuestion: self.on_question_for_team, Relaying: self.on_relayed_text},
        )

    # --- citizen side ---------------------------------------------------------------
    async def on_ask(self, turn: Turn, pressed: AskTeam) -> list[Reply]:
        if turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        return await self.ask(turn.user, pressed.question or None)

    async def on_ask_malformed(self, turn: Turn) -> list[Reply]:
        return await self.on_ask(turn, AskTeam())

    async def on_leave(self, turn: Turn, _pressed: LeaveHandoff) -> list[Reply]:
        if turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        await self.ctx.set_state(turn.user, None)
        return [Reply(texts.HANDOFF_LEFT, menu_buttons(), kind="notice")]

    async def on_malformed(self, turn: Turn) -> list[Reply]:
        if turn.user is None:
            return [Reply(texts.NO_STORAGE, kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]

    async def ask(self, user: UserInfo, question_id: int | None) -> list[Reply]:
        """The citizen wants a person: reuse their open thread, send the question they mean,
        or ask them to type it (never an old question they did not pick)."""
        store = self.service.store
        window = BUTTON_QUESTION_WINDOW if question_id is not None else MENU_QUESTION_WINDOW
        question = await store.questions.for_handoff(user, window, question_id)
        current = await self.service.open_thread_of(user)
        if current is not None:
            await self.ctx.set_state(user, Relaying(current.id), fallback_streak=0)
            if question is not None and question[0] != current.question_id:
                await self.service.add_citizen_message(current, question[1])
                return [Reply(texts.HANDOFF_ADDED.format(id=current.id), [back_to_bot_row()], kind="handoff")]
            return [Reply(texts.HANDOFF_ALREADY_OPEN.format(id=current.id), [back_to_bot_row()], kind="handoff")]
        if question is None:
            await self.ctx.set_state(user, AwaitingTeamQuestion())
            return [Reply(texts.ASK_QUESTION_FOR_TEAM, [back_to_bot_row()], kind="notice")]
        return await self.open(user, question[1], question[0])

    # Messages while waiting for a person go to the team, not to the matcher. Redacted here,
    # where every typed message on its way to the team passes: the team group, its forum
    # topic's name and the stored thread never see a phone, ID or card number.
    async def on_question_for_team(self, turn: Turn, _state: AwaitingTeamQuestion, text: str) -> list[Reply] | None:
        if turn.user is None:
            return None
        text = redact(text)
        logged, normalized = loggable(text, self.ctx.knowledge.normalizer.normalized)
        question_id = await self.service.store.questions.log(turn.user, logged, normalized, "handoff", None, 0.0, [])
        return await self.open(turn.user, text, question_id)

    async def on_relayed_text(self, turn: Turn, state: Relaying, text: str) -> list[Reply] | None:
        """None when the thread is closed meanwhile: the message is then a question for the bot."""
        if turn.user is None:
            return None
        handoff = await self.service.get(state.handoff)
        if handoff is None or handoff.state == "closed":
            await self.ctx.set_state(turn.user, None)
            return None
        await self.service.add_citizen_message(handoff, redact(text))
        return [Reply(texts.HANDOFF_FOLLOWUP_SENT, [back_to_bot_row()], kind="notice")]

    async def open(self, user: UserInfo, text: str, question_id: int | None) -> list[Reply]:
        handoff, reached_team = await self.service.open(user, text, question_id)
        if reached_team:
            return [Reply(texts.HANDOFF_SENT.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]
        # Kept for the dashboard: staff can answer there, and the answer reaches the citizen here.
        return [Reply(texts.HANDOFF_NO_TEAM.format(id=handoff.id), [back_to_bot_row()], kind="handoff")]

    # --- team side --------------------------------------------------------------------
    async def on_team_message(self, msg: IncomingMessage) -> list[Reply]:
        if not self.ctx.config.is_team_chat(msg.chat):
            return []  # the bot ignores groups that are not configured team chats
        if msg.action is not None:
            pressed, handler = self.team_actions.action(msg.action)
            return await handler(msg, pressed) if pressed is not None and handler is not None else []
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

    async def _thread_of_group(self, msg: IncomingMessage, handoff_id: int):
        """The thread a team-group button is about; None from another group (it cannot touch it)."""
        handoff = await self.service.get(handoff_id)
        return handoff if handoff is not None and handoff.team_chat_id == msg.chat else None

    @staticmethod
    def _who(msg: IncomingMessage) -> str:
        return msg.author or f"{msg.channel}:{msg.user_id}"

    async def _close(self, msg: IncomingMessage, pressed: CloseThread) -> list[Reply]:
        """"Đã xử lý" under a thread's post."""
        handoff = await self._thread_of_group(msg, pressed.handoff)
        if handoff is None:
            return []
        who = self._who(msg)
        if await self.service.close(handoff.id, who) is None:
            return [Reply(texts.GROUP_ALREADY_CLOSED.format(id=handoff.id), kind="notice")]
        if msg.message_id is not None and self.ctx.messenger is not None:
            # "Đã xử lý" is done; drafting an FAQ entry from the answer stays possible.
            await self.ctx.messenger.edit_buttons(self.ctx.config.team_channel, msg.chat, msg.message_id,
                                                  draft_buttons(handoff.id))
        return [Reply(texts.GROUP_CLOSED.format(id=handoff.id, who=who), kind="notice")]

    async def _draft(self, msg: IncomingMessage, pressed: DraftFromThread) -> list[Reply]:
        """"Tạo FAQ nháp" under a thread's post."""
        handoff = await self._thread_of_group(msg, pressed.handoff)
        if handoff is None:
            return []
        if await self.service.make_draft(handoff, self._who(msg)) is None:
            return [Reply(texts.GROUP_NOTHING_TO_DRAFT.format(id=handoff.id), kind="notice")]
        return [Reply(texts.GROUP_DRAFTED.format(id=handoff.id), kind="notice")]


def offer_reply(question_ref: str = "0") -> Reply:
    """Offer the ward's team (after repeated misses, or when the citizen asks for a person)."""
    return Reply(texts.OFFER_TEAM_AFTER_FALLBACKS, [[Button(texts.SEND_TO_TEAM, human_action(question_ref))]],
                 kind="offer")


def human_action(question_ref: str = "0") -> str:
    """Button action for "send to the team"; carries the question it is about, if any."""
    return AskTeam.about(question_ref).pack()
