"""Routes an incoming message to the feature that answers it.

Channel adapters call `Conversation.respond`; features live one per module beside
this one (faq answering here, hand-off, subscriptions, privacy, staff).
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections import defaultdict, deque
from dataclasses import dataclass, field
from urllib.parse import urlparse

from bot.campaigns.service import CampaignService
from bot.handoff.service import HandoffService
from bot.matching import Decision, MatchResult
from bot.matching.live import LiveKnowledge
from bot.ops import metrics
from bot.privacy import loggable
from bot.storage.pending import DATABASE_ERRORS, PendingLogs, PendingQuestion
from bot.storage.store import Store, UserInfo
from handlers import freshness, texts
from handlers.handoff import human_action
from handlers.ids import id_reply
from handlers.menus import entry_token, menu_buttons, resolve_entry
from handlers.messages import Button, IncomingMessage, Link, Messenger, Reply, action_numbers_fit
from handlers.verdict import Kind, Verdict
from knowledge.schema import CATEGORIES, Entry

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000  # longer questions are cut before matching; nobody types more
STOP_WORDS = {"dừng", "dung", "stop", "huỷ", "hủy", "huy"}


@dataclass
class Outcome:
    """The replies to send, and the matcher's verdict when the message was a question."""

    replies: list[Reply]
    match: MatchResult | None = None
    question_id: int | None = None
    verdict: Verdict | None = None  # set for free-text messages (handlers/verdict.py)


@dataclass
class ConversationConfig:
    wards: dict[str, str] = field(default_factory=dict)  # slug -> display name
    team_chats: dict[str, str] = field(default_factory=dict)  # ward slug or "default" -> chat id
    team_channel: str = "telegram"
    flood_limit_per_minute: int = 20  # 0: no limit (terminal chat, `converse`)
    retention_days: int = 365
    delivery_lease_seconds: float = 120.0  # see bot/handoff/service.py

    def team_chat_for(self, ward: str | None) -> str | None:
        return self.team_chats.get(ward or "", self.team_chats.get("default"))

    def is_team_chat(self, chat_id: str) -> bool:
        return chat_id in self.team_chats.values()


@dataclass
class Turn:
    """One incoming message with the sender's stored record (None without storage)."""

    msg: IncomingMessage
    user: UserInfo | None


def _link_label(url: str) -> str:
    return urlparse(url).netloc or url


class FloodGuard:
    """Per-user sliding window; the first message over the limit gets one polite notice.

    Users quiet for a minute are forgotten now and then, so memory follows the number of
    people writing right now, not everyone who ever wrote."""

    PRUNE_EVERY = 1000  # checks

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._warned: set[str] = set()
        self._checks = 0

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        idle = [key for key, window in self._seen.items() if not window or now - window[-1] > 60]
        for key in idle:
            del self._seen[key]
            self._warned.discard(key)

    def check(self, key: str, now: float | None = None) -> str:
        """'ok', 'warn' (send one notice) or 'drop'."""
        now = time.monotonic() if now is None else now
        self._checks += 1
        if self._checks % self.PRUNE_EVERY == 0:
            self._prune(now)
        window = self._seen[key]
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) < self.per_minute:
            window.append(now)
            self._warned.discard(key)
            return "ok"
        if key in self._warned:
            return "drop"
        self._warned.add(key)
        return "warn"


class Conversation:
    """Channel-neutral dialogue: every channel adapter calls `respond` and sends the replies."""

    def __init__(self, knowledge: LiveKnowledge, store: Store | None = None,
                 messenger: Messenger | None = None, config: ConversationConfig | None = None,
                 campaigns: CampaignService | None = None, handoffs: HandoffService | None = None):
        from handlers.campaigns import CampaignFeature
        from handlers.dialogue import DialogueFeature
        from handlers.handoff import HandoffFeature
        from handlers.privacy import PrivacyFeature
        from handlers.staff import StaffFeature
        from handlers.subscriptions import SubscriptionFeature

        self.knowledge = knowledge
        self.store = store
        self.messenger = messenger
        self.config = config or ConversationConfig()
        self.flood = FloodGuard(self.config.flood_limit_per_minute)
        self.pending = PendingLogs()
        self.handoff = HandoffFeature(self, handoffs)
        self.subscriptions = SubscriptionFeature(self)
        self.privacy = PrivacyFeature(self)
        self.staff = StaffFeature(self)
        self.campaigns = CampaignFeature(self, campaigns)
        self.dialogue = DialogueFeature(self)

    async def handle(self, msg: IncomingMessage) -> list[Reply]:
        return (await self.respond(msg)).replies

    async def respond(self, msg: IncomingMessage) -> Outcome:
        try:
            result = await self._route(msg)
        except Exception:  # a citizen never sees a stack trace
            log.exception("handler failed for channel=%s", msg.channel)
            return Outcome(self.error_replies(msg))
        return result if isinstance(result, Outcome) else Outcome(result)

    @staticmethod
    def error_replies(msg: IncomingMessage) -> list[Reply]:
        """An honest apology (not the "no answer" fallback, which would mislead). In a team
        group only messages meant for the bot get a notice, and never the citizen menu."""
        if not msg.is_group:
            return [Reply(texts.INTERNAL_ERROR, kind="error")]
        if msg.action is not None or msg.reply_to_bot or msg.thread_id is not None:
            return [Reply(texts.GROUP_INTERNAL_ERROR, kind="error")]
        return []

    async def _route(self, msg: IncomingMessage) -> list[Reply] | Outcome:
        if msg.is_group:
            if msg.command == "id":  # any group, configured or not: the id goes into TEAM_CHATS
                return [id_reply(msg, self.config.team_chats)]
            return await self.handoff.on_team_message(msg)
        fresh, user = await self._arrive(msg)
        if not fresh:
            return []  # already handled here or by another process (the platform retried)
        if self.config.flood_limit_per_minute > 0:
            verdict = self.flood.check(f"{msg.channel}:{msg.user_id}")
            if verdict != "ok":
                return [Reply(texts.FLOOD, kind="notice")] if verdict == "warn" else []
        turn = Turn(msg, user)
        if msg.action is not None:
            if not action_numbers_fit(msg.action):
                return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]
            return await self.on_action(turn, msg.action)
        if msg.text is None:
            return [Reply(texts.ASK_TYPE_TEXT, kind="notice")]
        if msg.command is not None:
            return await self.on_command(turn, msg.command)
        text = msg.text[:MAX_TEXT_CHARS]
        if unicodedata.normalize("NFC", text).strip().lower().rstrip(".!") in STOP_WORDS:
            return await self.subscriptions.unsubscribe(turn)
        if user is not None and user.state.startswith("camp:"):
            return await self.campaigns.on_text(turn, text)
        if user is not None and user.state:
            handled = await self.handoff.on_citizen_text_in_state(turn, text)
            if handled is not None:
                return handled
        return await self.on_question(turn, text)

    async def _arrive(self, msg: IncomingMessage) -> tuple[bool, UserInfo | None]:
        """(False for a duplicate event, the sender's record). The record is None without
        storage or while the database is unreachable, in which case the bot still answers
        from the knowledge base (see `pending`)."""
        store = self.store
        if store is None:
            return True, None
        if msg.event_key is not None:
            fresh, user = await store.arrive(msg.event_key, msg.channel, msg.user_id, msg.ward or None)
        elif store.outage.skip:
            return True, None
        else:
            try:
                fresh, user = True, await store.touch_user(msg.channel, msg.user_id, msg.ward or None)
            except DATABASE_ERRORS as exc:
                store.outage.failed(exc)
                return True, None
        if user is not None:
            store.outage.recovered()
            if self.pending.items:
                await self.pending.flush(store)
        return fresh, user

    # --- commands and buttons -------------------------------------------------
    async def on_command(self, turn: Turn, command: str) -> list[Reply] | Outcome:
        simple = {
            "start": lambda: [Reply(texts.GREETING, menu_buttons(), kind="menu")],
            "menu": lambda: [Reply(texts.MENU_PROMPT, menu_buttons(), kind="menu")],
            "help": lambda: self.entry_replies(turn, "bot.help"),
            "id": lambda: [id_reply(turn.msg, self.config.team_chats)],
        }
        if command in simple:
            return simple[command]()
        features = {
            "dangky": self.subscriptions.start,
            "huydangky": self.subscriptions.unsubscribe,
            "quyenriengtu": self.privacy.explain,
            "xoadulieu": self.privacy.confirm_delete,
            "thongke": self.staff.stats,
            "chuatraloi": self.staff.unanswered,
            "staff": self.staff.manage,
            "chiendich": self.campaigns.command,
        }
        if command in features:
            return await features[command](turn)
        return [Reply(texts.UNKNOWN_COMMAND, menu_buttons(), kind="notice")]

    async def on_action(self, turn: Turn, action: str) -> list[Reply] | Outcome:
        name, _, arg = action.partition(":")
        kb = self.knowledge.kb
        if name == "menu":
            return [Reply(texts.MENU_PROMPT, menu_buttons(), kind="menu")]
        if name == "cat" and arg in CATEGORIES:
            return [self.category_reply(arg)]
        if name == "faq" and (entry_id := resolve_entry(kb, arg)) is not None:
            await self.dialogue.remember(turn, entry_id)
            return self.entry_replies(turn, entry_id)
        if name == "pick":
            return await self.on_pick(turn, arg)
        if name in self.dialogue.ACTIONS:
            return await self.dialogue.on_action(turn, action)
        if name == "no":
            return await self.on_not_these(turn, arg)
        if name == "fb":
            return await self.on_feedback(turn, arg)
        if name in ("human", "ho"):
            return await self.handoff.on_citizen_action(turn, name, arg)
        if name in ("sub", "unsub"):
            return await self.subscriptions.on_action(turn, name, arg)
        if name == "del":
            return await self.privacy.on_action(turn, arg)
        if name == "camp":
            return await self.campaigns.on_action(turn, arg)
        return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]

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
                return await store.log_question(turn.user, logged, normalized, *values, streak=changed)
            except DATABASE_ERRORS as exc:
                store.outage.failed(exc)
            except Exception as exc:  # a row the database refuses fails alone: the citizen is answered
                log.warning("question log not stored (refused by the database: %s)", type(exc).__name__)
                return None
        ward = turn.user.ward if turn.user else turn.msg.ward
        self.pending.add(PendingQuestion(turn.msg.channel, store.key_for(turn.msg.channel, turn.msg.user_id),
                                         logged, normalized, *values, ward=ward))
        return None

    async def on_pick(self, turn: Turn, arg: str) -> list[Reply]:
        qid, _, token = arg.partition(":")
        faq_id = resolve_entry(self.knowledge.kb, token)
        if faq_id is None:
            return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]
        if self.store and turn.user and qid.isdigit():
            await self.store.set_outcome(int(qid), turn.user, "picked", faq_id)
        await self.dialogue.remember(turn, faq_id)
        return self.entry_replies(turn, faq_id, qid)

    async def on_not_these(self, turn: Turn, qid: str) -> list[Reply]:
        if self.store and turn.user and qid.isdigit():
            await self.store.set_outcome(int(qid), turn.user, "not_these")
        return [Reply(texts.NOT_THESE_REPLY, menu_buttons(), kind="fallback")]

    async def on_feedback(self, turn: Turn, arg: str) -> list[Reply]:
        vote, _, rest = arg.partition(":")
        qid, _, token = rest.partition(":")
        if vote not in ("up", "down"):
            return [Reply(texts.UNKNOWN_ACTION, menu_buttons(), kind="notice")]
        qid = qid if qid.isdigit() else "0"
        if self.store and turn.user:
            await self.store.add_feedback(turn.user, int(qid) if qid != "0" else None,
                                          resolve_entry(self.knowledge.kb, token), helpful=vote == "up")
        if vote == "up":
            return [Reply(texts.FEEDBACK_THANKS_UP, kind="notice")]
        return [Reply(texts.FEEDBACK_THANKS_DOWN, [[Button(texts.SEND_TO_TEAM, human_action(qid))]], kind="notice")]

    # --- reply builders -------------------------------------------------------
    def category_reply(self, category: str) -> Reply:
        entries = self.knowledge.kb.in_category(category)
        rows = [[Button(e.title, f"faq:{entry_token(e.id)}")] for e in entries]
        rows.append([Button(texts.MENU, "menu")])
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
            [Button(related.title, f"faq:{entry_token(related.id)}")]
            for related in (kb.get(rid) for rid in entry.related[:3])
            if related is not None
        ]
        token = entry_token(entry.id)
        rows.append([Button("👍", f"fb:up:{question_ref}:{token}"), Button("👎", f"fb:down:{question_ref}:{token}")])
        rows.append([Button(texts.MENU, "menu")])
        text = f"{entry.title}\n\n{entry.answer_text}\n\n{freshness.source_line(entry)}{texts.FEEDBACK_QUESTION}"
        links = [Link(_link_label(url), url) for url in entry.links]
        return Reply(text, rows, links, kind="answer")

    def suggest_reply(self, ids: list[str], question_ref: str = "0") -> Reply:
        kb = self.knowledge.kb
        rows = [[Button(e.title, f"pick:{question_ref}:{entry_token(e.id)}")]
                for e in (kb.get(i) for i in ids[:3]) if e is not None]
        rows.append([Button(texts.NOT_THESE, f"no:{question_ref}")])
        return Reply(texts.SUGGEST, rows, kind="suggest")

    def fallback_reply(self, question_ref: str = "0") -> Reply:
        rows = menu_buttons(with_staff=False)
        rows.append([Button(texts.SEND_TO_TEAM, human_action(question_ref))])
        return Reply(texts.FALLBACK, rows, kind="fallback")
