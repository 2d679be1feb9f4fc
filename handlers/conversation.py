"""Routes an incoming message to the feature that answers it.

Channel adapters call `Conversation.respond`. Every message passes the middleware chain
(handlers/middleware.py: errors, de-duplication, the sender, flood limit), then the route
table (handlers/router.py) that the features fill: hand-off, subscriptions, privacy, staff,
campaigns (one module each beside this one), and the menus and FAQ answers here; the
conversation skills around a free-text question are handlers/dialogue.py's.
"""

from __future__ import annotations

import logging
import unicodedata
from urllib.parse import urlparse

from bot import metrics
from bot.campaigns.service import CampaignService
from bot.contracts import texts
from bot.contracts.menus import entry_token, feedback_row, menu_buttons, resolve_entry
from bot.contracts.messages import Button, IncomingMessage, Link, Messenger, Reply
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
from bot.handoff.service import HandoffService
from bot.matching import Decision, MatchResult
from bot.matching.live import LiveKnowledge
from bot.privacy import loggable
from bot.storage.pending import DATABASE_ERRORS, PendingLogs, PendingQuestion
from bot.storage.store import Store
from handlers import freshness
from handlers.campaigns import CampaignFeature
from handlers.dialogue import DialogueFeature
from handlers.handoff import HandoffFeature, human_action
from handlers.ids import id_reply
from handlers.middleware import (
    Deduplicate,
    FloodGuard,
    FloodRule,
    LoadUser,
    chain,
    handle_errors,
)
from handlers.privacy import PrivacyFeature
from handlers.router import ConversationConfig, FeatureContext, Outcome, Result, Router, Routes, Turn
from handlers.staff import StaffFeature
from handlers.subscriptions import SubscriptionFeature
from handlers.verdict import Kind, Verdict
from knowledge.schema import CATEGORIES, Entry

# Re-exported: channels, the web API and tests name them here.
__all__ = ["Conversation", "ConversationConfig", "FloodGuard", "Outcome", "Turn"]

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000  # longer questions are cut before matching; nobody types more
STOP_WORDS = {"dừng", "dung", "stop", "huỷ", "hủy", "huy"}


def _link_label(url: str) -> str:
    return urlparse(url).netloc or url


class Conversation:
    """Channel-neutral dialogue: every channel adapter calls `respond` and sends the replies."""

    def __init__(self, knowledge: LiveKnowledge, store: Store | None = None,
                 messenger: Messenger | None = None, config: ConversationConfig | None = None,
                 campaigns: CampaignService | None = None, handoffs: HandoffService | None = None):
        self.knowledge = knowledge
        self.store = store
        self.messenger = messenger
        self.config = config or ConversationConfig()
        self.flood = FloodRule(self.config.flood_limit_per_minute)
        self.pending = PendingLogs()
        ctx = FeatureContext(knowledge, store, messenger, self.config)
        self.handoff = HandoffFeature(ctx, handoffs)
        self.subscriptions = SubscriptionFeature(ctx)
        self.privacy = PrivacyFeature(ctx)
        self.staff = StaffFeature(ctx)
        self.campaigns = CampaignFeature(ctx, campaigns)
        self.dialogue = DialogueFeature(self)
        self.router = Router([self.routes(), self.handoff.routes(), self.subscriptions.routes(),
                              self.privacy.routes(), self.staff.routes(), self.campaigns.routes()])
        self._handle = chain([handle_errors, Deduplicate(store), LoadUser(store, self.pending), self.flood],
                             self._route)

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
        msg, user = turn.msg, turn.user
        if msg.is_group:
            if msg.command == "id":  # any group, configured or not: the id goes into TEAM_CHATS
                return [id_reply(msg, self.config.team_chats)]
            return await self.handoff.on_team_message(msg)
        if msg.action is not None:
            return await self.on_action(turn, msg.action)
        if msg.text is None:
            return [Reply(texts.ASK_TYPE_TEXT, kind="notice")]
        if msg.command is not None:
            return await self.on_command(turn, msg.command)
        text = msg.text[:MAX_TEXT_CHARS]
        if unicodedata.normalize("NFC", text).strip().lower().rstrip(".!") in STOP_WORDS:
            return await self.subscriptions.unsubscribe(turn)
        if user is not None:
            state, reader = self.router.state(user.state)
            if reader is not None:
                handled = await reader(turn, state, text)
                if handled is not None:
                    return handled
        return await self.on_question(turn, text)

    # --- commands and buttons -------------------------------------------------
    async def on_command(self, turn: Turn, command: str) -> Result:
        handler = self.router.commands.get(command)
        if handler is None:
            return [Reply(texts.UNKNOWN_COMMAND, menu_buttons(), kind="notice")]
        return await handler(turn)

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
        question_id = await self._log_question(turn, text, result, streak)
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
            replies.append(self.handoff.offer_reply(ref))
        if result.faq_id == "bot.human" and result.decision is Decision.ANSWER:
            replies.append(self.handoff.offer_reply(ref))
        return Outcome(replies, result, question_id, verdict)

    def shown_ids(self, ids: list[str]) -> list[str]:
        """The entries a suggestion shows (the first three that exist), in order."""
        kb = self.knowledge.kb
        return [i for i in dict.fromkeys(ids) if kb.get(i) is not None][:3]

    async def _log_question(self, turn: Turn, text: str, result: MatchResult,
                            streak: int | None = None, decision: str | None = None) -> int | None:
        """Store the question (redacted) with the sender's new fallback streak, in one
        transaction; queue it when the database is unreachable. `decision` overrides the
        matcher's (small talk is logged as "smalltalk")."""
        store = self.store
        if store is None:
            return None
        logged, normalized = loggable(text, self.knowledge.normalizer.normalized, result.normalized)
        values = (decision or result.decision.value, result.faq_id, result.score, list(result.alternatives))
        if turn.user is not None:
            changed = streak if streak != turn.user.fallback_streak else None
            try:
                return await store.questions.log(turn.user, logged, normalized, *values, streak=changed)
            except DATABASE_ERRORS as exc:
                store.outage.failed(exc)
            except Exception as exc:  # a row the database refuses fails alone: the citizen is answered
                log.warning("question log not stored (refused by the database: %s)", type(exc).__name__)
                return None
        ward = turn.user.ward if turn.user else turn.msg.ward
        self.pending.add(PendingQuestion(turn.msg.channel, store.users.key_for(turn.msg.channel, turn.msg.user_id),
                                         logged, normalized, *values, ward=ward))
        return None

    async def on_pick(self, turn: Turn, pressed: Pick) -> list[Reply]:
        faq_id = resolve_entry(self.knowledge.kb, pressed.entry)
        if faq_id is None:
            return self.unknown_action()
        if self.store and turn.user and pressed.question:
            await self.store.questions.set_outcome(pressed.question, turn.user, "picked", faq_id)
        await self.dialogue.remember(turn, faq_id)
        return self.entry_replies(turn, faq_id, str(pressed.question))

    async def on_not_these(self, turn: Turn, pressed: NotThese | None = None) -> list[Reply]:
        if self.store and turn.user and pressed is not None:
            await self.store.questions.set_outcome(pressed.question, turn.user, "not_these")
        return [Reply(texts.NOT_THESE_REPLY, menu_buttons(), kind="fallback")]

    async def on_feedback(self, turn: Turn, pressed: Feedback) -> list[Reply]:
        if pressed.vote not in ("up", "down"):
            return self.unknown_action()
        if self.store and turn.user:
            await self.store.questions.add_feedback(turn.user, pressed.question or None,
                                          resolve_entry(self.knowledge.kb, pressed.entry), helpful=pressed.vote == "up")
        if pressed.vote == "up":
            return [Reply(texts.FEEDBACK_THANKS_UP, kind="notice")]
        return [Reply(texts.FEEDBACK_THANKS_DOWN, [[Button(texts.SEND_TO_TEAM, human_action(str(pressed.question)))]],
                      kind="notice")]

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

