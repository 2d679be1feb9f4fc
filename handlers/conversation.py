"""Routes an incoming message to the feature that answers it: the conversation with storage.

Channel adapters call `Conversation.respond`. Every message passes the middleware chain
(handlers/middleware.py: errors, de-duplication, the sender, flood limit), then the route
table (handlers/router.py) that the features fill: hand-off, subscriptions, privacy, staff,
campaigns (one module each beside this one), and the menus and FAQ answers of the
storage-free core (handlers/answering.py), which this class extends; the conversation skills
around a free-text question are handlers/dialogue.py's.

A `Conversation` requires a `Store`: previews and tests without a database use the core,
`Answerer`, which has no features that keep state.
"""

from __future__ import annotations

import logging

from bot.campaigns.service import CampaignService
from bot.contracts.menus import resolve_entry
from bot.contracts.messages import IncomingMessage, Messenger, Reply
from bot.contracts.payloads import Feedback
from bot.handoff.service import HandoffService
from bot.matching import MatchResult
from bot.matching.live import LiveKnowledge
from bot.privacy import loggable
from bot.storage.pending import DATABASE_ERRORS, PendingLogs, PendingQuestion
from bot.storage.store import Store
from handlers.answering import Answerer
from handlers.campaigns import CampaignFeature
from handlers.dialogue import StoredMemory
from handlers.handoff import HandoffFeature
from handlers.middleware import Deduplicate, FloodGuard, LoadUser, Step, handle_errors
from handlers.privacy import PrivacyFeature
from handlers.router import ConversationConfig, FeatureContext, Outcome, Result, Turn
from handlers.staff import StaffFeature
from handlers.subscriptions import SubscriptionFeature

# Re-exported: channels, the web API and tests name them here.
__all__ = ["Answerer", "Conversation", "ConversationConfig", "FloodGuard", "Outcome", "Turn"]

log = logging.getLogger(__name__)


class Conversation(Answerer):
    """Channel-neutral dialogue with storage: every channel adapter calls `respond` and sends the replies."""

    def __init__(self, knowledge: LiveKnowledge, store: Store,
                 messenger: Messenger | None = None, config: ConversationConfig | None = None,
                 campaigns: CampaignService | None = None, handoffs: HandoffService | None = None):
        config = config or ConversationConfig()
        self.store = store
        self.messenger = messenger
        self.pending = PendingLogs()
        ctx = FeatureContext(knowledge, store, messenger, config)
        self.handoff = HandoffFeature(ctx, handoffs)
        self.subscriptions = SubscriptionFeature(ctx)
        self.privacy = PrivacyFeature(ctx)
        self.staff = StaffFeature(ctx)
        self.campaigns = CampaignFeature(ctx, campaigns)
        super().__init__(knowledge, config, StoredMemory(store))
        for feature in (self.handoff, self.subscriptions, self.privacy, self.staff, self.campaigns):
            self.router.add(feature.routes())

    def middleware(self) -> list[Step]:
        return [handle_errors, Deduplicate(self.store), LoadUser(self.store, self.pending), self.flood]

    async def on_team_message(self, msg: IncomingMessage) -> list[Reply]:
        return await self.handoff.on_team_message(msg)

    async def on_stop(self, turn: Turn) -> list[Reply]:
        return await self.subscriptions.unsubscribe(turn)

    async def read_state(self, turn: Turn, text: str) -> Result | None:
        if turn.user is None:
            return None
        state, reader = self.router.state(turn.user.state)
        return await reader(turn, state, text) if reader is not None else None

    async def log_question(self, turn: Turn, text: str, result: MatchResult,
                           streak: int | None = None, decision: str | None = None) -> int | None:
        """Store the question (redacted) with the sender's new fallback streak, in one
        transaction; queue it when the database is unreachable. `decision` overrides the
        matcher's (small talk is logged as "smalltalk")."""
        store = self.store
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

    async def record_outcome(self, turn: Turn, question_id: int, outcome: str, faq_id: str | None = None) -> None:
        if turn.user is not None:
            await self.store.questions.set_outcome(question_id, turn.user, outcome, faq_id)

    async def record_feedback(self, turn: Turn, pressed: Feedback) -> None:
        if turn.user is not None:
            await self.store.questions.add_feedback(turn.user, pressed.question or None,
                                                    resolve_entry(self.knowledge.kb, pressed.entry),
                                                    helpful=pressed.vote == "up")
