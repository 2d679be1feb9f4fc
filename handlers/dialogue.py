"""The conversation skills around a free-text message, in the order they are tried:
small talk (handlers/smalltalk.py), two questions in one message (handlers/multi_question.py),
a follow-up to the previous answer (handlers/followup.py), then the single question
(`Conversation.answer_single`), which also replies to "not covered" verdicts.

The per-user context that follow-ups need is stored in the database (bot/storage/context.py),
not in this process, and is written after every answer (`StoredMemory`); the storage-free core
(handlers/answering.py) has `NoMemory`, so there every message stands alone.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

from bot import metrics
from bot.contracts import texts
from bot.contracts.menus import entry_token, feedback_row, resolve_entry
from bot.contracts.messages import Button, Reply
from bot.contracts.payloads import AlsoAsked, FacetChoice, Menu, NotThese, Pick, ShowEntry
from bot.matching import Decision, MatchResult
from bot.storage.context import ContextStore, DialogueContext
from bot.storage.pending import DATABASE_ERRORS
from bot.storage.store import Store
from handlers.followup import FollowupReader, FollowupReading, Move
from handlers.handoff import human_action
from handlers.multi_question import SHORT_ANSWER_CHARS, TwoQuestions, find_two
from handlers.router import Answering, Outcome, Turn
from handlers.smalltalk import (
    SHADOWED,
    SMALLTALK_ENTRY,
    STANDALONE,
    Detection,
    Intent,
    SmallTalk,
    replies_for,
)
from handlers.verdict import Kind, Verdict
from knowledge.schema import FACETS, Entry

log = logging.getLogger(__name__)

MAX_PART_SHOWN = 80  # characters of an unmatched second question quoted back
# Small talk that comes with other words is still small talk unless those words are a question;
# greetings and thanks need this many leftover words before they are read as one.
QUESTION_AFTER_COURTESY_WORDS = 3
# Not "làm": "bác làm theo được rồi" after a thanks is news, not a question.
QUESTION_MARKS = ("sao", "gi", "nao", "dau", "khong", "ko", "bao", "the", "ntn", "chua", "huong", "cach", "muon")


class Memory(Protocol):
    """Where the last answer is kept for the sender's next message."""

    async def load(self, turn: Turn) -> DialogueContext | None: ...

    async def save(self, turn: Turn, context: DialogueContext) -> None: ...


class NoMemory:
    """The storage-free core's: nothing is kept, so no message is read as a follow-up."""

    async def load(self, turn: Turn) -> DialogueContext | None:
        return None

    async def save(self, turn: Turn, context: DialogueContext) -> None:
        return None


class StoredMemory:
    """The context in the database, per sender; skipped (best effort) for a sender not loaded
    or while the database is unreachable."""

    def __init__(self, store: Store):
        self.store = store
        self.contexts = ContextStore(store.sessions, store.group)

    async def load(self, turn: Turn) -> DialogueContext | None:
        if turn.user is None or self.store.outage.skip:
            return None
        try:
            return await self.contexts.load(turn.user.id)
        except DATABASE_ERRORS:
            log.warning("conversation context unavailable", exc_info=True)
            return None

    async def save(self, turn: Turn, context: DialogueContext) -> None:
        if turn.user is None or self.store.outage.skip:
            return
        try:
            await self.contexts.save(turn.user.id, context)
        except DATABASE_ERRORS:
            log.warning("conversation context not saved", exc_info=True)


class DialogueFeature:
    ACTIONS = frozenset({AlsoAsked.PREFIX, FacetChoice.PREFIX})

    def __init__(self, conversation: Answering, memory: Memory):
        self.c = conversation
        self.memory = memory
        self.smalltalk = SmallTalk()
        self.followups = FollowupReader(normalizer=conversation.knowledge.normalizer)

    # --- context -------------------------------------------------------------------
    async def load(self, turn: Turn) -> DialogueContext | None:
        return await self.memory.load(turn)

    async def remember(self, turn: Turn, faq_id: str | None, choices: list[str] | tuple[str, ...] = ()) -> None:
        """What the citizen was just answered or offered, for their next message (best effort)."""
        await self.memory.save(turn, DialogueContext(faq_id, tuple(choices)))

    # --- free text -------------------------------------------------------------------
    async def on_question(self, turn: Turn, text: str) -> Outcome:
        if not text.strip():
            return Outcome([Reply(texts.EMPTY, kind="notice")])
        question = text
        detection = self.smalltalk.detect(text)
        if detection is not None:
            if detection.pure:
                return await self.small_talk(turn, text, detection.intent)
            # courtesy words dilute the question; "ok" and "dạ" are part of what follows them
            question = text if detection.intent is Intent.ACK else detection.remainder
        own = self.c.match(question)
        if question != text:
            own = dataclasses.replace(own, normalized=self.c.knowledge.normalizer.normalized(text))
        if detection is not None and self._still_small_talk(detection, own):
            return await self.small_talk(turn, text, detection.intent, own)
        if own.faq_id == SMALLTALK_ENTRY and own.decision is not Decision.FALLBACK:
            return await self.small_talk(turn, text, Intent.ACK, own)
        two = find_two(self.c.knowledge.matcher, question, own, self.followups.is_detail, self._related)
        if two is not None and two.understood:
            return await self.two_questions(turn, text, two)
        context = await self.load(turn) if self.followups.might_follow(question) else None
        if context is not None:
            reading = self.followups.read(question, context, self.c.knowledge.matcher, self.c.knowledge.kb, own)
            if reading is not None:
                return await self.followup(turn, text, reading, own)
        if two is not None:
            return await self.two_questions(turn, text, two)
        outcome = await self.c.answer_single(turn, text, own)
        if outcome.verdict is not None and outcome.verdict.kind is Kind.NOT_COVERED and outcome.verdict.choices:
            # the closest entries shown are the best guess at the topic of a follow-up
            await self.remember(turn, None, outcome.verdict.choices)
        return outcome

    def _related(self, entry_id: str) -> tuple[str, ...]:
        entry = self.c.knowledge.kb.get(entry_id)
        return tuple(entry.related) if entry is not None else ()

    def _still_small_talk(self, detection: Detection, own: MatchResult) -> bool:
        """Small talk with other words: a question the knowledge base answers wins; otherwise
        complaints, "who are you", goodbyes and praise stand, greetings and thanks stand unless
        a question follows them, and a bare "ok" stands only alone."""
        if detection.intent is Intent.ACK:
            return False  # "ok" alone was handled as pure; with more words it is a message to read
        if len(detection.rest) < 2:
            return True  # one stray word ("bot sai hoài") is no question
        shadowed = SHADOWED if detection.intent in STANDALONE else {SMALLTALK_ENTRY}
        if own.decision is Decision.ANSWER and own.faq_id not in shadowed:
            return False
        if SMALLTALK_ENTRY in (own.faq_id, *own.alternatives):
            return True  # the matcher too sees small talk among its candidates
        if detection.intent in STANDALONE:
            # a long message the knowledge base nearly answers is a question said with feeling
            # ("có phải đang nói chuyện với người máy không": its other words name nothing)
            named = [w for w in detection.rest if not self.followups.is_function_word(w)]
            return not (own.decision is Decision.SUGGEST and own.faq_id not in shadowed
                        and len(named) >= QUESTION_AFTER_COURTESY_WORDS)
        looks_like_question = any(w in QUESTION_MARKS for w in detection.rest)
        return not (len(detection.rest) >= QUESTION_AFTER_COURTESY_WORDS and looks_like_question)

    async def small_talk(self, turn: Turn, text: str, intent: Intent, result: MatchResult | None = None) -> Outcome:
        """Warm reply; logged as "smalltalk" (never unanswered), the fallback streak untouched."""
        metrics.QUESTIONS.labels(turn.msg.channel, Kind.SMALLTALK.value).inc()
        logged = MatchResult(Decision.FALLBACK, None, 0.0, [], result.normalized if result else "")
        question_id = await self.c.log_question(turn, text, logged, None, decision=Kind.SMALLTALK.value)
        return Outcome(replies_for(intent), None, question_id, Verdict(Kind.SMALLTALK, SMALLTALK_ENTRY))

    async def two_questions(self, turn: Turn, text: str, two: TwoQuestions) -> Outcome:
        """Answer the first; answer the second too when both are short, else offer it as a button.
        A second part that matched nothing is logged on its own, for staff, with the hand-off."""
        first = dataclasses.replace(two.first, decision=Decision.ANSWER)  # answered, whatever the gap
        assert first.faq_id is not None
        metrics.QUESTIONS.labels(turn.msg.channel, first.decision.value).inc()
        streak = 0 if turn.user is not None else None
        question_id = await self.c.log_question(turn, text, first, streak)
        ref = str(question_id or 0)
        replies = self.c.entry_replies(turn, first.faq_id, ref)
        if two.second is None:
            part = two.second_text if len(two.second_text) <= MAX_PART_SHOWN else two.second_text[:MAX_PART_SHOWN] + "…"
            unmatched = self.c.match(two.second_text)
            second_id = await self.c.log_question(turn, two.second_text, unmatched)
            rows = [[Button(texts.SEND_TO_TEAM, human_action(str(second_id or 0)))]]
            replies.append(Reply(texts.SECOND_PART_UNKNOWN.format(part=part), rows, kind="fallback"))
            await self.remember(turn, first.faq_id)
            return Outcome(replies, first, question_id, Verdict(Kind.ANSWER, first.faq_id))
        second_id = two.second.faq_id
        assert second_id is not None
        kb = self.c.knowledge.kb
        ward = turn.user.ward if turn.user else turn.msg.ward
        first_entry, second_entry = kb.get(first.faq_id, ward=ward), kb.get(second_id, ward=ward)
        if second_entry is None:
            return await self.c.answer_single(turn, text, first)
        both_short = (first_entry is not None and two.second.decision is Decision.ANSWER
                      and max(len(first_entry.answer_text), len(second_entry.answer_text)) <= SHORT_ANSWER_CHARS)
        if both_short:
            replies.append(self.c.answer_reply(second_entry, ref))
            await self.remember(turn, second_id, (first.faq_id,))
        else:
            button = Button(second_entry.title, AlsoAsked(question_id or 0, entry_token(second_id)).pack())
            replies.append(Reply(texts.ALSO_ASKED_HEADER, [[button]], kind="also"))
            await self.remember(turn, first.faq_id, (second_id,))
        return Outcome(replies, first, question_id, Verdict(Kind.ANSWER, first.faq_id, also=(second_id,)))

    async def followup(self, turn: Turn, text: str, reading: FollowupReading, own: MatchResult) -> Outcome:
        if reading.move is Move.CHOICES:
            choices = self.c.shown_ids(list(reading.choices))
            result = MatchResult(Decision.SUGGEST, choices[0] if choices else None, own.score, choices[1:],
                                 own.normalized)
            metrics.QUESTIONS.labels(turn.msg.channel, Decision.SUGGEST.value).inc()
            question_id = await self.c.log_question(turn, text, result, 0 if turn.user else None)
            reply = self.choices_reply(reading, choices, str(question_id or 0))
            await self.remember(turn, reading.entry_id, choices)
            return Outcome([reply], result, question_id, Verdict(Kind.SUGGEST, choices=tuple(choices)))
        assert reading.entry_id is not None
        result = MatchResult(Decision.ANSWER, reading.entry_id, own.score, [], own.normalized)
        metrics.QUESTIONS.labels(turn.msg.channel, Decision.ANSWER.value).inc()
        question_id = await self.c.log_question(turn, text, result, 0 if turn.user else None)
        ref = str(question_id or 0)
        entry = self.c.knowledge.kb.get(reading.entry_id, ward=turn.user.ward if turn.user else turn.msg.ward)
        if reading.move is Move.FACET and entry is not None and reading.facet is not None \
                and reading.facet in entry.facets:
            replies = [self.facet_reply(entry, reading.facet, ref)]
        else:
            replies = self.c.entry_replies(turn, reading.entry_id, ref)
            if entry is not None and reading.facet in FACETS and reading.facet not in entry.facets:
                replies.insert(0, self.no_such_part_reply(entry, reading.facet, ref))
        await self.remember(turn, reading.entry_id)
        return Outcome(replies, result, question_id, Verdict(Kind.ANSWER, reading.entry_id))

    # --- buttons -------------------------------------------------------------------
    async def on_action(self, turn: Turn, action: str) -> list[Reply]:
        kb = self.c.knowledge.kb
        also = AlsoAsked.unpack(action)
        if also is not None and (entry_id := resolve_entry(kb, also.entry)) is not None:
            await self.remember(turn, entry_id)
            return self.c.entry_replies(turn, entry_id, str(also.question))
        facet = FacetChoice.unpack(action)
        if facet is not None and (entry_id := resolve_entry(kb, facet.entry)) is not None:
            entry = kb.get(entry_id, ward=turn.user.ward if turn.user else turn.msg.ward)
            await self.remember(turn, entry_id)
            if entry is not None and facet.facet in entry.facets:
                return [self.facet_reply(entry, facet.facet, "0")]
            return self.c.entry_replies(turn, entry_id)
        return [Reply(texts.UNKNOWN_ACTION, kind="notice")]

    # --- reply builders ----------------------------------------------------------------
    def no_such_part_reply(self, entry: Entry, facet: str, question_ref: str) -> Reply:
        """The follow-up asked for a part the guide does not state: say so before the guide."""
        text = texts.NO_SUCH_PART.format(title=entry.title, part=FACETS[facet].lower())
        return Reply(text, [[Button(texts.SEND_TO_TEAM, human_action(question_ref))]], kind="notice")

    def facet_reply(self, entry: Entry, facet: str, question_ref: str) -> Reply:
        """One part of an entry's answer, with the full answer one press away."""
        token = entry_token(entry.id)
        rows = [[Button(texts.FULL_ANSWER, ShowEntry(token).pack())], feedback_row(question_ref, entry.id),
                [Button(texts.MENU, Menu().pack())]]
        text = f"{entry.title} — {FACETS[facet]}\n\n{entry.facets[facet].strip()}\n\n{texts.FEEDBACK_QUESTION}"
        return Reply(text, rows, kind="answer")

    def choices_reply(self, reading: FollowupReading, choices: list[str], question_ref: str) -> Reply:
        kb = self.c.knowledge.kb
        previous = kb.get(reading.entry_id) if reading.entry_id else None
        rows: list[list[Button]] = []
        if previous is not None:
            token = entry_token(previous.id)
            rows += [[Button(FACETS[f], FacetChoice(f, token).pack())] for f in reading.facets]
        rows += [[Button(e.title, Pick(int(question_ref), entry_token(e.id)).pack())]
                 for e in (kb.get(i) for i in choices) if e is not None]
        rows.append([Button(texts.NOT_THESE, NotThese(int(question_ref)).pack())])
        title = previous.title if previous is not None else ""
        return Reply(texts.FOLLOWUP_CHOICES.format(title=title), rows, kind="suggest")

    def not_covered_reply(self, ids: list[str], question_ref: str) -> Reply:
        """Honest: no guide for this; the closest entries, and the ward's team."""
        kb = self.c.knowledge.kb
        rows = [[Button(e.title, Pick(int(question_ref), entry_token(e.id)).pack())]
                for e in (kb.get(i) for i in ids) if e is not None]
        rows.append([Button(texts.SEND_TO_TEAM, human_action(question_ref))])
        return Reply(texts.NOT_COVERED, rows, kind="fallback")
