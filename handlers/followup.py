"""Follow-ups: "còn lệ phí thì sao?", "làm ở đâu?", "còn cái kia thì sao" after an answer.

Why: such a message names no topic, so the matcher alone answers it with whatever entry talks
about fees in general. Read against the entry answered just before (bot/storage/context.py),
it gets that entry's facet (knowledge/FORMAT.md), one of its related entries, or, when unsure,
choices within that topic. A message that clearly asks about something else is left to the
matcher. `read` is pure and synchronous: it reads the message's clues once (`Clues`), then tries
the rules in `RULES` in order, one small function each, the first that decides wins; a new rule is
a function with its example in the docstring, placed in that table where it belongs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path

from bot.matching import Decision, MatchResult
from bot.matching.matcher import Matcher
from bot.matching.normalize import Normalizer, canonical, fold
from bot.storage.context import DialogueContext
from handlers.multi_question import asks
from knowledge.loader import KnowledgeBase
from knowledge.schema import FACETS, Entry
from knowledge.yamlfile import read_yaml

LEXICON_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "lexicon" / "followup.yaml"
ANCHORED = 0.6  # share of a follow-up's topic words the previous entry must use for it to stay there
RELATED_HINT_SCORE = 40.0  # the message alone ranks a related entry first with at least this score
SHORT_WORDS = 12  # a follow-up is short; a longer message is a question of its own
OWN_CLEAR_MARGIN = 8.0  # the message alone must beat the previous topic by this much to leave it
# Facets that whole entries are devoted to (a hotline, a group of people): asked after an entry
# without that part, a related entry named for it answers. Not fees or places: "phí bao nhiêu"
# after a procedure is about its fee, not the generic entry on paying fees online.
ENTRY_FACETS = frozenset({"contact", "children", "elderly"})
# Verbs every procedure uses: a clause with only these ("đăng ký ra sao?") names no topic
PROCEDURE_VERBS = frozenset({"dang", "ky", "ki", "nop", "xin", "cap", "lam", "mo", "cai", "dung", "xem", "tra", "cuu"})
# Nouns every procedure has ("nộp hồ sơ ở đâu" after a guide asks where to file ITS papers)
PROCEDURE_NOUNS = (("ho", "so"), ("giay", "to"), ("thu", "tuc"))
# Facets whose other words describe rather than name a subject: the papers ("có cần mang sổ hộ
# khẩu không"), the person ("bà tôi 85 tuổi đi lại khó thì sao")
DESCRIPTIVE_FACETS = frozenset({"documents", "elderly", "children"})
# A short message read together with the previous entry's title: that entry must lead every other
# by this many points for the message to stay with it though the message alone points elsewhere
# (chosen on our own follow-up pairs: 12-20 gain alike, 20 is the more cautious)
CONTEXT_LEAD = 20.0
SENTENCE_WORDS = 4  # topic words of a statement that says more than a bare topic
FACET_TEXT_WORDS = 2  # topic words of a follow-up one facet's text must hold to answer with it
TITLE_WORDS = 2  # words of a related entry's title a follow-up must name to be about that entry
ELDERLY_AGE, CHILD_AGE = 60, 16  # "80 tuổi" asks about the elderly, "6 tuổi" about children
EXACT = "\u2063"  # marks a plain word in a message typed with diacritics: "con" there is not "còn"


def _words(text: str) -> tuple[str, ...]:
    return tuple(canonical(text).split())


def _typed(text: str, normalizer: Normalizer | None = None) -> tuple[str, ...]:
    """A message's words (chat abbreviations and dialect expanded when a normalizer is given:
    "xài" is "dùng", "mần" is "làm"); in a message typed with diacritics, its plain words are
    marked exact."""
    words = normalizer.expanded(text) if normalizer is not None else canonical(text).split()
    if text.isascii():
        return tuple(words)
    return tuple(w + EXACT if w.isascii() else w for w in words)


def _plain(word: str) -> str:
    return word.rstrip(EXACT)


def _same(typed: tuple[str, ...], listed: tuple[str, ...]) -> bool:
    """Typed without diacritics, a word matches any accented form ("con" may be "còn"); typed
    with them, only itself ("con mèo" is not "còn")."""
    return len(typed) == len(listed) and all(
        (fold(t) == fold(w)) if t.isascii() else _plain(t) == w for t, w in zip(typed, listed))


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(_same(words[i : i + n], phrase) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class FollowupLexicon:
    openers: tuple[tuple[str, ...], ...]
    references: tuple[tuple[str, ...], ...]
    others: tuple[tuple[str, ...], ...]
    facets: dict[str, tuple[tuple[str, ...], ...]]
    function_words: frozenset[str]
    not_facets: tuple[tuple[str, ...], ...] = ()

    @classmethod
    @cache
    def shipped(cls) -> FollowupLexicon:
        """The lexicon in the repository, read once per process (it never changes while running;
        every conversation, preview and test service shares it)."""
        return cls.from_file()

    @classmethod
    def from_file(cls, path: Path = LEXICON_FILE) -> FollowupLexicon:
        data = read_yaml(path) or {}

        def phrases(items) -> tuple[tuple[str, ...], ...]:
            found = {_words(str(item)) for item in items or ()}
            return tuple(sorted((p for p in found if p), key=len, reverse=True))

        facets = {key: phrases(items) for key, items in (data.get("facets") or {}).items()}
        unknown = set(facets) - set(FACETS)
        if unknown:
            raise ValueError(f"{path.name}: unknown facets {sorted(unknown)}")
        function_words = frozenset(w for item in data.get("function_words") or () for w in _words(str(item)))
        return cls(phrases(data.get("openers")), phrases(data.get("references")), phrases(data.get("others")),
                   facets, function_words, phrases(data.get("not_facets")))


class Move(StrEnum):
    FACET = "facet"  # answer one part of the previous entry
    ENTRY = "entry"  # answer an entry (the previous one, a related one, or the other choice)
    CHOICES = "choices"  # unsure: offer choices within the previous topic


@dataclass(frozen=True)
class FollowupReading:
    move: Move
    entry_id: str | None = None
    facet: str | None = None
    choices: tuple[str, ...] = ()  # entry ids
    facets: tuple[str, ...] = field(default_factory=tuple)  # facet keys offered with the choices


class FollowupReader:
    def __init__(self, lexicon: FollowupLexicon | None = None, normalizer: Normalizer | None = None):
        self.lexicon = lexicon or FollowupLexicon.shipped()
        self.normalizer = normalizer  # the matcher's: a follow-up in dialect reads as the matcher reads it

    @cached_property
    def _facet_cues(self) -> dict[str, list[tuple[tuple[str, ...], str]]]:
        """Facet cues by their first word without diacritics: [(phrase, facet key)]."""
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for key, phrases in self.lexicon.facets.items():
            for phrase in phrases:
                index.setdefault(fold(phrase[0]), []).append((phrase, key))
        return index

    @cached_property
    def _not_facets(self) -> dict[str, list[tuple[str, ...]]]:
        return _by_first_word(self.lexicon.not_facets)

    def facet_of(self, words: tuple[str, ...]) -> str | None:
        """The facet the message asks about (the longest cue wins, the first on a tie), or None.
        A cue inside a `not_facets` phrase ("có giá trị không") asks for no part."""
        best: tuple[int, str] | None = None
        blocked = _covered(words, self._not_facets)
        for i, word in enumerate(words):
            for phrase, key in self._facet_cues.get(fold(_plain(word)), ()):
                if any(blocked[i : i + len(phrase)]):
                    continue
                if (best is None or len(phrase) > best[0]) and _same(words[i : i + len(phrase)], phrase):
                    best = (len(phrase), key)
        return best[1] if best else _age_facet(words)

    def _likely_choice(self, words: tuple[str, ...], choices: tuple[str, ...], matcher: Matcher,
                       kb: KnowledgeBase) -> str | None:
        """After choices nobody picked, the one the follow-up is most likely about: the first with
        the part it asks for, else the one the message alone ranks highest, else the first."""
        offered = [c for c in choices if kb.get(c) is not None]
        if len(offered) < 2:
            return offered[0] if offered else None
        facet = self.facet_of(words)
        with_facet = [c for c in offered if facet and facet in kb.get(c).facets]  # type: ignore[union-attr]
        if with_facet:
            return with_facet[0]
        ranked = [(fid, score) for fid, score in matcher.scores(" ".join(_plain(w) for w in words))[1]
                  if fid in offered]
        if ranked and ranked[0][1] >= RELATED_HINT_SCORE:
            return ranked[0][0]
        return offered[0]

    def _devoted(self, facet: str, ids: list[str], kb: KnowledgeBase) -> str | None:
        """The first of the entries whose title names the facet ("Tổng đài hỗ trợ VNeID")."""
        cues = self.lexicon.facets.get(facet, ())
        for entry_id in ids:
            entry = kb.get(entry_id)
            title = _words(entry.title) if entry is not None else ()
            if any(_contains(title, cue) for cue in cues):
                return entry_id
        return None

    def opens(self, words: tuple[str, ...]) -> bool:
        """Opens with "còn/thế/vậy": "and what about ...", often a new part of the topic."""
        return any(_same(words[: len(p)], p) for p in self.lexicon.openers)

    def shaped(self, words: tuple[str, ...]) -> bool:
        """Worded like a follow-up: opens with "còn/thế/vậy", or points back ("cái đó")."""
        return self.opens(words) or any(_contains(words, p) for p in self.lexicon.references)

    @cached_property
    def _marks(self) -> dict[str, list[tuple[str, ...]]]:
        """Every follow-up phrase, by its first word without diacritics (for `residue`)."""
        lexicon = self.lexicon
        return _by_first_word({*lexicon.openers, *lexicon.references, *lexicon.others,
                               *(p for phrases in lexicon.facets.values() for p in phrases)})

    def residue(self, words: tuple[str, ...]) -> list[str]:
        """The words of a message that could name a topic: without the follow-up's own words."""
        covered = _covered(words, self._marks)
        function_words = self.lexicon.function_words
        plain = [(_plain(w), w.isascii()) for w in words]
        return [w for (w, loose), c in zip(plain, covered)
                if not c and w not in function_words and not (loose and w in self._folded_function_words)]

    @cached_property
    def _folded_function_words(self) -> frozenset[str]:
        return frozenset(fold(w) for w in self.lexicon.function_words)

    def is_function_word(self, word: str) -> bool:
        """A word that names no topic ("có", "phải", "đang"), compared without diacritics."""
        return fold(word) in self._folded_function_words

    def is_detail(self, text: str) -> bool:
        """A clause naming no topic, only a part of one ("có mất phí không", "cần giấy tờ gì",
        "thì đăng ký thế nào": a procedure's verb alone names none either)."""
        words = _typed(text, self.normalizer)
        return bool(words) and len([w for w in self.residue(words) if fold(w) not in PROCEDURE_VERBS]) <= 1

    def might_follow(self, text: str) -> bool:
        """Could this message be a follow-up at all? (Checked before the context is read.)"""
        words = _typed(text, self.normalizer)
        if not words or len(words) > SHORT_WORDS * 2:
            return False
        return (len(words) <= SHORT_WORDS or self.shaped(words) or self.facet_of(words) is not None
                or any(_contains(words, p) for p in self.lexicon.others))

    def read(self, text: str, context: DialogueContext, matcher: Matcher, kb: KnowledgeBase,
             own: MatchResult) -> FollowupReading | None:
        """How to answer `text` given the previous answer; None when it is a question of its own.

        The clues are read once (`_clues`), then the rules in RULES are tried in order: the first
        that decides wins, either a reading or LEAVE (the matcher answers the message alone)."""
        words = _typed(text, self.normalizer)
        if not words or len(words) > SHORT_WORDS * 2:
            return None
        topic_id = context.faq_id or self._likely_choice(words, context.choices, matcher, kb)
        previous = kb.get(topic_id) if topic_id else None
        if any(_contains(words, p) for p in self.lexicon.others):
            other = next((c for c in context.choices if c != context.faq_id and kb.get(c) is not None), None)
            if other is not None:
                return FollowupReading(Move.ENTRY, other)
        if previous is None:
            return None
        clues = self._clues(text, words, previous, context, matcher, kb, own)
        if clues is None:
            return None
        for rule in RULES:
            verdict = rule(self, clues)
            if verdict is not None:
                return verdict if isinstance(verdict, FollowupReading) else None
        return None

    def _clues(self, text: str, words: tuple[str, ...], previous: Entry, context: DialogueContext,
               matcher: Matcher, kb: KnowledgeBase, own: MatchResult) -> Clues | None:
        """What the message says about its relation to the previous entry (None: too long and
        unmarked to be a follow-up)."""
        facet = self.facet_of(words)
        shaped = self.shaped(words)
        short = len(words) <= SHORT_WORDS
        if not (facet or shaped or short):
            return None
        family = _family(previous, kb, context.choices)
        _normalized, ranked = matcher.scores(f"{text} {previous.title}")
        in_topic = [(fid, score) for fid, score in ranked if fid in family]
        residue = self.residue(words)
        pure = len(_without_procedure_nouns(residue)) <= 1  # "còn lệ phí thì sao?" names no topic of its own
        # "gọi ngân hàng trước hay báo công an trước?" after an answer that talks of both
        anchored = bool(residue) and _anchoring(previous, residue) >= ANCHORED * len(residue)
        question = asks(text)
        # ... or a question in the last answer's words the matcher alone only hesitates over
        # ("làm trên app được không" after updating the bank's copy of the ID card)
        stays = pure or (anchored and (facet is not None or shaped or own.decision is Decision.FALLBACK
                                       or (own.decision is Decision.SUGGEST and question)))
        # The matcher hesitates between entries and the previous topic settles it ("không nhận
        # được mã thì sao" after activation: the missing-code entry, a related one).
        # Only a question or a sentence ("lỡ nhập sai nhiều lần bị khóa rồi"): a bare topic again
        # ("mật khẩu") wants the suggestions, not a guess.
        settled = (_settled(own, family) if residue and own.decision is not Decision.ANSWER
                   and (question or len(residue) >= SENTENCE_WORDS) else None)
        # the follow-up names a related entry by its title ("học xong có giấy chứng nhận không")
        # (and the matcher sees it too: "điện thoại" in a title is no name)
        named = None if pure else _named_by_title(previous, family[1:], residue, kb)
        if named is not None and named not in (own.faq_id, *own.alternatives, *(fid for fid, _s in in_topic[:1])):
            named = None
        # ... or words that one part of the previous answer says ("nhận qua bưu điện được không")
        told = _facet_by_text(previous, residue) if anchored and not facet else None
        # Read together with the previous entry's title, the message is about it and nothing else
        # comes close ("có cần chủ hộ ký tên không" after residence registration, though "chủ hộ"
        # alone points at splitting a household). Not when it opens with "còn/thế" (a new part, as
        # the message alone says), when it asks for a part that a related entry is devoted to, or
        # when it is no question ("mật khẩu" again wants the suggestions, not a guess).
        in_context = (short and not pure and not named and not self.opens(words) and question
                      and not (facet in ENTRY_FACETS and facet not in previous.facets)
                      and _leads(ranked, previous.id, CONTEXT_LEAD))
        return Clues(text, own, previous, family, matcher, kb, in_topic, residue, facet, shaped,
                     pure, anchored, question, stays, settled, named, told, in_context)


@dataclass(frozen=True)
class Clues:
    """A message read against the previous entry (see `FollowupReader._clues` for each)."""

    text: str
    own: MatchResult  # the message matched alone
    previous: Entry
    family: list[str]  # the previous entry, the choices just shown, its related entries
    matcher: Matcher
    kb: KnowledgeBase
    in_topic: list[tuple[str, float]]  # the family ranked for the message plus the previous title
    residue: list[str]  # the words that could name a topic
    facet: str | None  # the part asked for
    shaped: bool  # opens with "còn/thế" or points back ("cái đó")
    pure: bool  # names no topic of its own
    anchored: bool  # most of its topic words are the previous entry's
    question: bool
    stays: bool  # about the previous topic, nothing else named
    settled: str | None  # the family entry the matcher hesitates on
    named: str | None  # the related entry whose title it names
    told: str | None  # the part of the previous answer whose words it uses
    in_context: bool  # read with the previous title, only that entry fits

    @property
    def marked(self) -> bool:
        """Worded as a follow-up: a part asked for, or its shape."""
        return self.facet is not None or self.shaped

    @property
    def topic_best(self) -> tuple[str, float]:
        return self.in_topic[0] if self.in_topic else (self.previous.id, 0.0)


class Leave:
    """A rule's verdict: a question of its own, for the matcher alone."""


LEAVE = Leave()
Step = FollowupReading | Leave | None  # a rule decides (a reading, or LEAVE) or passes (None)
Rule = Callable[[FollowupReader, Clues], Step]


def _clearly_elsewhere(reader: FollowupReader, c: Clues) -> Step:
    """"còn thẻ bảo hiểm y tế thì mở ở mục nào?": the message alone answers another entry well."""
    own = c.own
    if (not c.stays and own.decision is Decision.ANSWER and own.faq_id is not None
            and own.faq_id not in c.family and own.score >= c.topic_best[1] + OWN_CLEAR_MARGIN):
        return LEAVE
    return None


def _unmarked(reader: FollowupReader, c: Clues) -> Step:
    """An unmarked question the matcher has a view on ("mật khẩu": its suggestions)."""
    if not (c.marked or c.stays or c.settled or c.named or c.told or c.in_context
            or c.own.decision is Decision.FALLBACK):
        return LEAVE
    return None


def _new_subject(reader: FollowupReader, c: Clues) -> Step:
    """Names a subject the last answer never mentions ("đăng ký câu lạc bộ dưỡng sinh ở đâu"):
    a new question, not a part of the last answer (the papers or the person asked about are not
    a subject: "có cần mang sổ hộ khẩu không")."""
    settled = c.kb.get(c.settled) if c.settled else None
    if (not c.shaped and c.own.decision is not Decision.ANSWER and c.facet not in DESCRIPTIVE_FACETS
            and len(_unknown_to(c.previous, c.residue, settled)) >= 2):
        return LEAVE
    return None


def _in_context(reader: FollowupReader, c: Clues) -> Step:
    """Only the previous entry fits the message read with its title: that entry (its part)."""
    if not c.in_context:
        return None
    part = c.facet if c.facet in c.previous.facets else c.told
    return FollowupReading(Move.FACET if part else Move.ENTRY, c.previous.id, part or c.facet)


def _own_part_question(reader: FollowupReader, c: Clues) -> Step:
    """A question of its own that asks for a part ("đổi bằng lái mất bao lâu")."""
    own = c.own
    if (c.facet and not c.pure and own.decision is Decision.ANSWER and own.faq_id not in (None, *c.family)
            and c.previous.id not in own.alternatives):
        return LEAVE
    return None


def _part_asked(reader: FollowupReader, c: Clues) -> Step:
    """The part asked for is the previous entry's, unless the message names another entry: then
    that entry (its part when it has one), as when the previous entry had no parts."""
    if not (c.facet and c.facet in c.previous.facets):
        return None
    elsewhere = None if c.pure else _elsewhere(c)
    if elsewhere is None:
        return FollowupReading(Move.FACET, c.previous.id, c.facet)
    if elsewhere not in c.family:
        return LEAVE  # the matcher answers it ("còn làm căn cước cho con thì ở đâu" after the passport)
    other = c.kb.get(elsewhere)
    if other is not None and c.facet in other.facets:
        return FollowupReading(Move.FACET, other.id, c.facet)
    return FollowupReading(Move.ENTRY, elsewhere)


def _devoted_entry(reader: FollowupReader, c: Clues) -> Step:
    """"gọi số nào?" after an entry without a contact part: its related hotline entry (not
    "làm luôn bảo hiểm y tế cho bé được không": that names a subject of its own)."""
    if c.facet in ENTRY_FACETS and c.facet not in c.previous.facets and c.pure:
        devoted = reader._devoted(c.facet, c.family[1:], c.kb)
        if devoted is not None:
            return FollowupReading(Move.ENTRY, devoted)
    return None


def _named_over_previous(reader: FollowupReader, c: Clues) -> Step:
    """"học xong có được cấp giấy chứng nhận không": the matcher leans to the previous entry but
    sees the related one the message names by words the previous title lacks."""
    if c.named is not None and c.settled == c.previous.id:
        return FollowupReading(Move.ENTRY, c.named)
    return None


def _settled_entry(reader: FollowupReader, c: Clues) -> Step:
    """The family entry the matcher hesitates on ("không nhận được mã thì sao")."""
    return FollowupReading(Move.ENTRY, c.settled) if c.settled is not None else None


def _related_above(reader: FollowupReader, c: Clues) -> Step:
    """Even with the previous title added, a related entry ranks above it: it is the one asked."""
    best, score = c.topic_best
    if best != c.previous.id and score >= c.matcher.thresholds.suggest_score:
        return FollowupReading(Move.ENTRY, best)
    return None


def _named_entry(reader: FollowupReader, c: Clues) -> Step:
    return FollowupReading(Move.ENTRY, c.named) if c.named is not None else None


def _own_in_family(reader: FollowupReader, c: Clues) -> Step:
    if c.own.decision is Decision.ANSWER and c.own.faq_id in c.family:
        return FollowupReading(Move.ENTRY, c.own.faq_id)
    return None


def _leaning_related(reader: FollowupReader, c: Clues) -> Step:
    """"cài xong rồi tự đăng ký được không?": the message alone leans to a related entry."""
    if c.own.decision is Decision.ANSWER or c.pure:
        return None
    own_ranked = c.matcher.scores(c.text)[1]
    if own_ranked and own_ranked[0][0] in c.family[1:] and own_ranked[0][1] >= RELATED_HINT_SCORE:
        return FollowupReading(Move.ENTRY, own_ranked[0][0])
    return None


def _told_part(reader: FollowupReader, c: Clues) -> Step:
    """"nhận qua bưu điện được không": the part of the answer that says so."""
    return FollowupReading(Move.FACET, c.previous.id, c.told) if c.told is not None else None


def _stays_on_topic(reader: FollowupReader, c: Clues) -> Step:
    """About this topic, nothing else named; `facet`: the part asked, which it does not state."""
    if (c.stays and (c.facet or c.shaped or c.anchored)) or c.facet in DESCRIPTIVE_FACETS:
        return FollowupReading(Move.ENTRY, c.previous.id, c.facet)
    return None


def _own_answer(reader: FollowupReader, c: Clues) -> Step:
    """A question of its own the matcher answers."""
    return LEAVE if c.own.decision is Decision.ANSWER else None


def _bare_question(reader: FollowupReader, c: Clues) -> Step:
    """"không làm thì có sao không", "nếu không làm thì có bị phạt không": a question that names
    nothing new is about the guide just given."""
    return FollowupReading(Move.ENTRY, c.previous.id) if c.pure and c.question else None


def _offer_parts(reader: FollowupReader, c: Clues) -> Step:
    """A follow-up, but to what part? Offer the topic's entries and parts."""
    if c.in_topic and c.marked:
        choices = tuple(fid for fid, _s in c.in_topic[:3])
        return FollowupReading(Move.CHOICES, c.previous.id, choices=choices, facets=tuple(c.previous.facets)[:3])
    return None


# Tried in this order; the first that decides wins (the order is the policy: questions of their
# own leave first, then the parts and entries the message points at, most specific first).
RULES: tuple[Rule, ...] = (
    _clearly_elsewhere, _unmarked, _new_subject, _in_context, _own_part_question, _part_asked,
    _devoted_entry, _named_over_previous, _settled_entry, _related_above, _named_entry, _own_in_family,
    _leaning_related, _told_part, _stays_on_topic, _own_answer, _bare_question, _offer_parts,
)


def _by_first_word(phrases) -> dict[str, list[tuple[str, ...]]]:
    """Phrases indexed by their first word without diacritics."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        index.setdefault(fold(phrase[0]), []).append(phrase)
    return index


def _covered(words: tuple[str, ...], index: dict[str, list[tuple[str, ...]]]) -> list[bool]:
    """Per word, whether one of the indexed phrases covers it."""
    covered = [False] * len(words)
    for i, word in enumerate(words):
        for phrase in index.get(fold(_plain(word)), ()):
            n = len(phrase)
            if _same(words[i : i + n], phrase):
                covered[i : i + n] = [True] * n
    return covered


def _without_procedure_nouns(words: list[str]) -> list[str]:
    """The words without "hồ sơ", "giấy tờ", "thủ tục" (compared without diacritics)."""
    folded = [fold(w) for w in words]
    kept: list[str] = []
    i = 0
    while i < len(words):
        if tuple(folded[i : i + 2]) in PROCEDURE_NOUNS:
            i += 2
            continue
        kept.append(words[i])
        i += 1
    return kept


def _age_facet(words: tuple[str, ...]) -> str | None:
    """"bà 80 tuổi", "cháu 6 tuổi": an age says who the follow-up is for."""
    for number, unit in zip(words, words[1:]):
        if fold(_plain(unit)) == "tuoi" and _plain(number).isdigit():
            age = int(_plain(number))
            if age >= ELDERLY_AGE:
                return "elderly"
            if age < CHILD_AGE:
                return "children"
    return None


_VOCABULARIES: dict[int, tuple[Entry, frozenset[str], frozenset[str]]] = {}


def _vocabulary(entry: Entry) -> tuple[frozenset[str], frozenset[str]]:
    """The words naming the entry's topic (title, questions, keywords, facets) and those of its
    answer, without diacritics (cached per entry object)."""
    cached = _VOCABULARIES.get(id(entry))
    if cached is not None and cached[0] is entry:
        return cached[1], cached[2]
    topical = frozenset(fold(canonical(" ".join([entry.title, *entry.questions, *entry.keywords,
                                                     *entry.facets.values()]))).split())
    answer = frozenset(fold(canonical(entry.answer)).split())
    if len(_VOCABULARIES) > 2048:
        _VOCABULARIES.clear()
    _VOCABULARIES[id(entry)] = (entry, topical, answer)
    return topical, answer


def _anchoring(entry: Entry, words: list[str]) -> float:
    """How many of the words the entry uses: a word of its questions counts 1, of its answer 0.5."""
    topical, answer = _vocabulary(entry)
    return sum(1.0 if fold(w) in topical else 0.5 if fold(w) in answer else 0.0 for w in words)


def _unknown_to(entry: Entry, words: list[str], settled: Entry | None = None) -> list[str]:
    """The words the entry never uses, in its questions or its answer, nor the related entry the
    matcher leans to ("bị khóa" after forgetting a password is the locked-account entry's); a
    number ("85 tuổi") names no subject."""
    known = [_vocabulary(e) for e in (entry, settled) if e is not None]
    return [w for w in words if not w.isdigit()
            and not any(fold(w) in topical or fold(w) in answer for topical, answer in known)]


def _facet_by_text(entry: Entry, residue: list[str]) -> str | None:
    """The facet whose own text holds most of the follow-up's topic words (at least
    FACET_TEXT_WORDS and more than half): the entry's fields say which part is asked."""
    words = {fold(w) for w in residue} - PROCEDURE_VERBS
    best: tuple[int, str] | None = None
    for key, text in entry.facets.items():
        hits = len(words & frozenset(fold(canonical(text)).split()))
        if hits >= FACET_TEXT_WORDS and 2 * hits > len(words) and (best is None or hits > best[0]):
            best = (hits, key)
    return best[1] if best else None


def _title_words(entry: Entry) -> frozenset[str]:
    return frozenset(fold(canonical(entry.title)).split())


def _named_by_title(previous: Entry, related: list[str], residue: list[str], kb: KnowledgeBase) -> str | None:
    """The related entry whose title the follow-up names with words the previous title lacks
    (at least TITLE_WORDS of them; "chứng nhận" after "Học kỹ năng số ở đâu")."""
    own = _title_words(previous)
    words = {fold(w) for w in residue} - own - PROCEDURE_VERBS
    best: tuple[int, str] | None = None
    for rid in related:
        entry = kb.get(rid)
        hits = len(words & _title_words(entry)) if entry is not None else 0
        if hits >= TITLE_WORDS and (best is None or hits > best[0]):
            best = (hits, rid)
    return best[1] if best else None


def _family(entry: Entry, kb: KnowledgeBase, choices: tuple[str, ...] = ()) -> list[str]:
    """The previous entry, the other entries just offered and its related entries: where a
    follow-up is looked for first."""
    found = [entry.id]
    for rid in (*choices, *entry.related):
        if rid not in found and kb.get(rid) is not None:
            found.append(rid)
    return found


def _leads(ranked: list[tuple[str, float]], entry_id: str, margin: float) -> bool:
    """The entry ranks first, ahead of the next by at least `margin` points."""
    return bool(ranked) and ranked[0][0] == entry_id and ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0) >= margin


def _settled(own: MatchResult, family: list[str]) -> str | None:
    """Of the entries the matcher hesitates between, the first within the previous topic."""
    return next((fid for fid in (own.faq_id, *own.alternatives) if fid in family), None)


def _elsewhere(c: Clues) -> str | None:
    """The entry other than the previous one that a follow-up naming a topic is about, or None:
    the one the message alone answers, one its title names, one ranking above the previous entry
    even with that entry's title added, or the one the matcher hesitates on within the topic when
    the previous entry is not even among its candidates. A follow-up whose topic words all come
    from the previous title ("người già không có tài khoản thì sao" after "... qua tài khoản")
    names nothing else."""
    own, previous = c.own, c.previous
    if own.decision is Decision.ANSWER and own.faq_id not in (None, previous.id):
        return own.faq_id
    if c.named is not None:
        return c.named
    if {fold(w) for w in c.residue} <= _title_words(previous):
        return None
    best, score = c.topic_best
    if best != previous.id and score >= c.matcher.thresholds.suggest_score:
        return best
    if c.settled is not None and c.settled != previous.id and previous.id not in (own.faq_id, *own.alternatives):
        return c.settled
    return None
