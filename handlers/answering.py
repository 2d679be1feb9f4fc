"""The storage-free core of the conversation: the knowledge base read and answered.

`Answerer` matches a question, reads small talk and two questions in one message
(handlers/dialogue.py), renders an answer, a suggestion, a category or the fallback, and
answers the menus' commands and buttons. It needs no database, so `/api/ask` previews
(`Runtime.preview`), `match` and the property tests use it as it is.

`Conversation` (handlers/conversation.py) is this core with storage: it requires a `Store`,
adds the middleware that records senders and events, the features that keep state
(hand-off, subscriptions, privacy, staff, campaigns), question logs and follow-up context.
It fills in the hooks below (`middleware`, `log_question`, `record_outcome`, ...), which the
core leaves empty: with no database there is nothing to record and no one to hand over to.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlparse

from bot import metrics
from bot.contracts import texts
from bot.contracts.menus import entry_token, feedback_row, menu_buttons, resolve_entry
from bot.contracts.messages import Button, IncomingMessage, Link, Reply
from bot.contracts.payloads import (
    AlsoAsked,
    Category,
    FacetChoice,
    Feedback,
    Menu,
    NotThese,
    Pick,
    ShowEntry,
    numbers_fit,
)
from bot.matching import Decision, MatchResult
from bot.matching.live import LiveKnowledge
from handlers import freshness
from handlers.dialogue import DialogueFeature, Memory, NoMemory
from handlers.handoff import human_action, offer_reply
from handlers.ids import id_reply
from handlers.middleware import FloodRule, Step, chain, handle_errors
from handlers.router import ConversationConfig, Outcome, Result, Router, Routes, Turn
from handlers.verdict import Kind, Verdict
from knowledge.schema import CATEGORIES, Entry

MAX_TEXT_CHARS = 2000  # longer questions are cut before matching; nobody types more
STOP_WORDS = {"dừng", "dung", "stop", "huỷ", "hủy", "huy"}
# The commands of the features that keep state (handlers/conversation.py registers them) and
# what the core answers to them: "not available here" or, staff's, "staff only" (nobody is staff
# without a database), rather than "unknown command". tests/test_router.py checks the list
# against the full conversation's routes.
STORAGE_COMMANDS = {
    **dict.fromkeys(("dangky", "huydangky", "quyenriengtu", "xoadulieu"), texts.NO_STORAGE),
    **dict.fromkeys(("thongke", "chuatraloi", "staff", "chiendich"), texts.STAFF_ONLY),
}


def _link_label(url: str) -> str:
    return urlparse(url).netloc or url


def is_stop_word(text: str) -> bool:
    """"dừng", "stop", ...: the citizen wants no more messages."""
    return unicodedata.normalize("NFC", text).strip().lower().rstrip(".!") in STOP_WORDS


class Answerer:
    """Channel-neutral answering from the knowledge base alone: `respond` to a message."""

    def __init__(self, knowledge: LiveKnowledge, config: ConversationConfig | None = None,
                 memory: Memory | None = None):
        self.knowledge = knowledge
        self.config = config or ConversationConfig()
        self.flood = FloodRule(self.config.flood_limit_per_minute)
        self.dialogue = DialogueFeature(self, memory or NoMemory())
        self.router = Router([self.routes()])
        self._handle = chain(self.middleware(), self._route)

    def middleware(self) -> list[Step]:
        """The steps before routing (handlers/middleware.py); the core has no sender to load."""
        return [handle_errors, self.flood]

    def routes(self) -> Routes:
        """The menus and answers (and the skills' buttons, handlers/dialogue.py)."""
        return Routes(
            commands={"start": self.greet, "menu": self.show_menu, "help": self.show_help, "id": self.show_id},
            actions={Menu: lambda turn, _: self.show_menu(turn), Category: self.on_category,
                     ShowEntry: self.on_entry, Pick: self.on_pick, NotThese: self.on_not_these,
                     Feedback: self.on_feedback, AlsoAsked: self.on_skill_action, FacetChoice: self.on_skill_action},
            malformed={"menu": self.show_menu, "no": self.on_not_these,
                       **dict.fromkeys(self.dialogue.ACTIONS, self.on_skill_action)},
        )

    async def handle(self, msg: IncomingMessage) -> list[Reply]:
        return (await self.respond(msg)).replies

    async def respond(self, msg: IncomingMessage) -> Outcome:
        result = await self._handle(Turn(msg, None))
        return result if isinstance(result, Outcome) else Outcome(result)

    async def _route(self, turn: Turn) -> Result:
        msg = turn.msg
        if msg.is_group:
            if msg.command == "id":  # any group, configured or not: the id goes into TEAM_CHATS
                return [id_reply(msg, self.config.team_chats)]
            return await self.on_team_message(msg)
        if msg.action is not None:
            return await self.on_action(turn, msg.action)
        if msg.text is None:
            return [Reply(texts.ASK_TYPE_TEXT, kind="notice")]
        if msg.command is not None:
            return await self.on_command(turn, msg.command)
        text = msg.text[:MAX_TEXT_CHARS]
        if is_stop_word(text):
            return await self.on_stop(turn)
        handled = await self.read_state(turn, text)
        if handled is not None:
            return handled
        return await self.on_question(turn, text)

    # --- what storage adds (handlers/conversation.py); nothing without it ---------------------
    async def on_team_message(self, msg: IncomingMessage) -> list[Reply]:
        """A team group's message: the core has no hand-off threads, so it stays silent."""
        return []

    async def on_stop(self, turn: Turn) -> list[Reply]:
        """"dừng": without storage there is no subscription to end."""
        return [Reply(texts.NO_STORAGE, kind="notice")]

    async def read_state(self, turn: Turn, text: str) -> Result | None:
        """Text read by the sender's stored dialogue state; None: it is a question."""
        return None

    async def log_question(self, turn: Turn, text: str, result: MatchResult,
                           streak: int | None = None, decision: str | None = None) -> int | None:
        """The question's id once stored; the core stores nothing."""
        return None

    async def record_outcome(self, turn: Turn, question_id: int, outcome: str, faq_id: str | None = None) -> None:
        """What the citizen did after a suggestion ("picked", "not_these"); not recorded here."""

    async def record_feedback(self, turn: Turn, pressed: Feedback) -> None:
        """A 👍/👎 under an answer; not recorded here."""

    # --- commands and buttons -------------------------------------------------
    async def on_command(self, turn: Turn, command: str) -> Result:
        handler = self.router.commands.get(command)
        if handler is not None:
            return await handler(turn)
        if command in STORAGE_COMMANDS:
            return [Reply(STORAGE_COMMANDS[command], kind="notice")]
        return [Reply(texts.UNKNOWN_COMMAND, menu_buttons(), kind="notice")]

    async def on_action(self, turn: Turn, action: str) -> Result:
        if numbers_fit(action):
            pressed, handler = self.router.action(action)
            if handler is not None:
                return await (handler(turn, pressed) if pressed is not None else handler(turn))  # type: ignore[call-arg]
        return self.unknown_action()

    @staticmethod
    def unknown_action() -> list[Reply]:
        return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]

    async def greet(self, turn: Turn) -> list[Reply]:
        return [Reply(texts.GREETING, menu_buttons(), kind="menu")]

    async def show_menu(self, turn: Turn) -> list[Reply]:
        return [Reply(texts.MENU_PROMPT, menu_buttons(), kind="menu")]

    async def show_id(self, turn: Turn) -> list[Reply]:
        return [id_reply(turn.msg, self.config.team_chats)]

    async def show_help(self, turn: Turn) -> list[Reply]:
        return self.entry_replies(turn, "bot.help")

    async def on_category(self, turn: Turn, pressed: Category) -> list[Reply]:
        if pressed.category not in CATEGORIES:
            return self.unknown_action()
        return [self.category_reply(pressed.category)]

    async def on_entry(self, turn: Turn, pressed: ShowEntry) -> list[Reply]:
        entry_id = resolve_entry(self.knowledge.kb, pressed.entry)
        if entry_id is None:
            return self.unknown_action()
        await self.dialogue.remember(turn, entry_id)
        return self.entry_replies(turn, entry_id)

    async def on_skill_action(self, turn: Turn, pressed: object = None) -> list[Reply]:
        """A conversation skill's button (handlers/dialogue.py reads its own payloads)."""
        return await self.dialogue.on_action(turn, turn.msg.action or "")

    async def on_pick(self, turn: Turn, pressed: Pick) -> list[Reply]:
        faq_id = resolve_entry(self.knowledge.kb, pressed.entry)
        if faq_id is None:
            return self.unknown_action()
        if pressed.question:
            await self.record_outcome(turn, pressed.question, "picked", faq_id)
        await self.dialogue.remember(turn, faq_id)
        return self.entry_replies(turn, faq_id, str(pressed.question))

    async def on_not_these(self, turn: Turn, pressed: NotThese | None = None) -> list[Reply]:
        if pressed is not None:
            await self.record_outcome(turn, pressed.question, "not_these")
        return [Reply(texts.NOT_THESE_REPLY, menu_buttons(), kind="fallback")]

    async def on_feedback(self, turn: Turn, pressed: Feedback) -> list[Reply]:
        if pressed.vote not in ("up", "down"):
            return self.unknown_action()
        await self.record_feedback(turn, pressed)
        if pressed.vote == "up":
            return [Reply(texts.FEEDBACK_THANKS_UP, kind="notice")]
        return [Reply(texts.FEEDBACK_THANKS_DOWN, [[Button(texts.SEND_TO_TEAM, human_action(str(pressed.question)))]],
                      kind="notice")]

    # --- free-text questions -------------------------------------------------
    async def on_question(self, turn: Turn, text: str) -> list[Reply] | Outcome:
        """Small talk, follow-ups and two-question messages first (handlers/dialogue.py)."""
        return await self.dialogue.on_question(turn, text)

    def match(self, text: str) -> MatchResult:
        with metrics.Timer() as timer:
            result = self.knowledge.matcher.match(text)
        metrics.MATCH_SECONDS.observe(timer.seconds)
        return result

    async def answer_single(self, turn: Turn, text: str, result: MatchResult) -> Outcome:
        """One question, as the matcher judged it: answer, suggest, not covered or fall back."""
        metrics.QUESTIONS.labels(turn.msg.channel, result.decision.value).inc()
        user = turn.user
        streak = None
        if user is not None:
            streak = user.fallback_streak + 1 if result.decision is Decision.FALLBACK else 0
        question_id = await self.log_question(turn, text, result, streak)
        ref = str(question_id or 0)
        offered = False
        if result.decision is Decision.ANSWER and result.faq_id:
            replies = self.entry_replies(turn, result.faq_id, ref)
            verdict = Verdict(Kind.ANSWER, result.faq_id)
            await self.dialogue.remember(turn, result.faq_id)
        elif result.decision is Decision.SUGGEST and result.faq_id:
            shown = self.shown_ids([result.faq_id, *result.alternatives])
            replies = [self.suggest_reply(shown, ref)]
            verdict = Verdict(Kind.SUGGEST, choices=tuple(shown))
            await self.dialogue.remember(turn, None, shown)
        elif result.not_covered:
            shown = self.shown_ids(list(result.alternatives))
            replies = [self.dialogue.not_covered_reply(shown, ref)]
            verdict, offered = Verdict(Kind.NOT_COVERED, choices=tuple(shown)), True
        else:
            replies = [self.fallback_reply(ref)]
            verdict = Verdict(Kind.FALLBACK)
        if streak is not None and question_id is not None and streak >= 2 and not offered:
            replies.append(offer_reply(ref))
        if result.faq_id == "bot.human" and result.decision is Decision.ANSWER:
            replies.append(offer_reply(ref))
        return Outcome(replies, result, question_id, verdict)

    def shown_ids(self, ids: list[str]) -> list[str]:
        """The entries a suggestion shows (the first three that exist), in order."""
        kb = self.knowledge.kb
        return [i for i in dict.fromkeys(ids) if kb.get(i) is not None][:3]

    # --- reply builders -------------------------------------------------------
    def category_reply(self, category: str) -> Reply:
        entries = self.knowledge.kb.in_category(category)
        rows = [[Button(e.title, ShowEntry(entry_token(e.id)).pack())] for e in entries]
        rows.append([Button(texts.MENU, Menu().pack())])
        return Reply(texts.CATEGORY_PROMPT.format(label=CATEGORIES[category]), rows, kind="menu")

    def entry_replies(self, turn: Turn, entry_id: str, question_ref: str = "0") -> list[Reply]:
        ward = turn.user.ward if turn.user else turn.msg.ward
        entry = self.knowledge.kb.get(entry_id, ward=ward)
        if entry is None:
            return [self.fallback_reply()]
        if entry.id in self.knowledge.kb.suspended:  # staff suspended it: notice + hand-off instead
            return [freshness.suspended_reply(entry, question_ref)]
        return [self.answer_reply(entry, question_ref)]

    def answer_reply(self, entry: Entry, question_ref: str) -> Reply:
        kb = self.knowledge.kb
        rows = [
            [Button(related.title, ShowEntry(entry_token(related.id)).pack())]
            for related in (kb.get(rid) for rid in entry.related[:3])
            if related is not None
        ]
        rows.append(feedback_row(question_ref, entry.id))
        rows.append([Button(texts.MENU, Menu().pack())])
        text = f"{entry.title}\n\n{entry.answer_text}\n\n{freshness.source_line(entry)}{texts.FEEDBACK_QUESTION}"
        links = [Link(_link_label(url), url) for url in entry.links]
        return Reply(text, rows, links, kind="answer")

    def suggest_reply(self, ids: list[str], question_ref: str = "0") -> Reply:
        kb = self.knowledge.kb
        rows = [[Button(e.title, Pick(int(question_ref), entry_token(e.id)).pack())]
                for e in (kb.get(i) for i in ids[:3]) if e is not None]
        rows.append([Button(texts.NOT_THESE, NotThese(int(question_ref)).pack())])
        return Reply(texts.SUGGEST, rows, kind="suggest")

    def fallback_reply(self, question_ref: str = "0") -> Reply:
        rows = menu_buttons(with_staff=False)
        rows.append([Button(texts.SEND_TO_TEAM, human_action(question_ref))])
        return Reply(texts.FALLBACK, rows, kind="fallback")
