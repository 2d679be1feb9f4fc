"""Small talk: greetings, thanks, goodbyes, "who are you", praise, complaints, bare "ok".

Why a skill of its own: such messages are not questions, so the matcher must not be asked to
answer them (it would fall back, log them as unanswered and push the citizen towards a
person). Detection is by phrase (knowledge/lexicon/smalltalk.yaml) compared without
diacritics; the words that are neither small talk nor filler are returned as `rest`, so the
conversation can still answer a real question said with a greeting ("chào bạn, cho mình hỏi
quên mật khẩu vneid").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path

from bot.contracts import texts
from bot.contracts.menus import menu_buttons
from bot.contracts.messages import Button, Reply
from bot.contracts.payloads import AskTeam, Menu
from bot.matching.normalize import canonical, fold
from handlers.handoff import human_action
from knowledge.yamlfile import read_yaml

LEXICON_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "lexicon" / "smalltalk.yaml"
# Entries whose topic small talk shadows: "bạn là người hay máy" is not a request for a person.
SHADOWED = frozenset({"bot.smalltalk", "bot.help", "bot.human"})
SMALLTALK_ENTRY = "bot.smalltalk"


class Intent(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    IDENTITY = "identity"
    PRAISE = "praise"
    COMPLAINT = "complaint"
    ACK = "ack"


# When one message holds several, the first of these wins ("ok cảm ơn, tạm biệt" is a goodbye).
PRIORITY = (Intent.COMPLAINT, Intent.IDENTITY, Intent.GOODBYE, Intent.THANKS, Intent.PRAISE,
            Intent.GREETING, Intent.ACK)
# Intents that still stand when other words come with them, unless those words are a question
# the knowledge base answers ("tôi hỏi ba lần rồi mà toàn lạc đề" is a complaint however long).
STANDALONE = frozenset({Intent.COMPLAINT, Intent.IDENTITY, Intent.GOODBYE, Intent.PRAISE})


_RUNS = re.compile(r"(\w)\1+")


def _accented(text: str) -> tuple[str, ...]:
    """Words as typed (lower case, one tone style), letters held down squeezed: "chàooo" -> "chào".
    Two-letter words stay as they are: "bb" (bye bye) must not become "b", which is anything
    from an HTML tag to a typo."""
    return tuple(_RUNS.sub(r"\1", w) if len(w) > 2 else w for w in canonical(text).split())


def _same_word(typed: str, listed: str) -> bool:
    """A word typed without diacritics matches any accented form; one typed with them must be
    exactly that word ("ở" is not "ờ", "làm" is not "lắm")."""
    return fold(typed) == fold(listed) if typed.isascii() else typed == listed


@dataclass(frozen=True)
class Detection:
    intent: Intent
    rest: tuple[str, ...]  # words that are neither small talk nor filler
    remainder: str = ""  # the message without its small-talk phrases (fillers kept), for matching

    @property
    def pure(self) -> bool:
        return not self.rest


@dataclass(frozen=True)
class SmallTalkLexicon:
    # folded phrase -> [(the phrase as listed, its intent)]
    phrases: dict[tuple[str, ...], list[tuple[tuple[str, ...], Intent]]]
    fillers: frozenset[str]  # as listed (accented where written so)
    emoji: dict[str, Intent]
    # phrases that are small talk only as the whole message ("sai rồi", "ủa", "cho hỏi chút"):
    # their words without fillers, folded -> [(the words as listed, intent)]
    alone: dict[tuple[str, ...], list[tuple[tuple[str, ...], Intent]]] = field(default_factory=dict)

    @classmethod
    @cache
    def shipped(cls) -> SmallTalkLexicon:
        """The lexicon in the repository, read once per process (it never changes while running;
        every conversation, preview and test service shares it)."""
        return cls.from_file()

    @classmethod
    def from_file(cls, path: Path = LEXICON_FILE) -> SmallTalkLexicon:
        data = read_yaml(path) or {}
        phrases: dict[tuple[str, ...], list[tuple[tuple[str, ...], Intent]]] = {}
        for intent, items in (data.get("intents") or {}).items():
            for item in items or ():
                listed = _accented(str(item))
                if listed:
                    phrases.setdefault(tuple(fold(w) for w in listed), []).append((listed, Intent(intent)))
        fillers = frozenset(w for item in data.get("fillers") or () for w in _accented(str(item)))
        emoji = {unicodedata.normalize("NFC", str(k)): Intent(v) for k, v in (data.get("emoji") or {}).items()}
        alone: dict[tuple[str, ...], list[tuple[tuple[str, ...], Intent]]] = {}
        lexicon = cls(phrases, fillers, emoji, alone)
        for intent, items in (data.get("alone") or {}).items():
            for item in items or ():
                listed = tuple(w for w in _accented(str(item)) if not lexicon.is_filler(w))
                if listed:
                    alone.setdefault(tuple(fold(w) for w in listed), []).append((listed, Intent(intent)))
        return lexicon

    @property
    def longest(self) -> int:
        return max((len(p) for p in self.phrases), default=1)

    def is_filler(self, word: str) -> bool:
        return any(_same_word(word, filler) for filler in self._fillers_by_fold.get(fold(word), ()))

    @cached_property
    def _fillers_by_fold(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for filler in self.fillers:
            grouped.setdefault(fold(filler), []).append(filler)
        return grouped


class SmallTalk:
    """Finds small talk in a message; `detect` is pure and synchronous."""

    def __init__(self, lexicon: SmallTalkLexicon | None = None):
        self.lexicon = lexicon or SmallTalkLexicon.shipped()
        self._longest = self.lexicon.longest

    def _phrase_at(self, words: tuple[str, ...], folded: tuple[str, ...], i: int) -> tuple[int, Intent] | None:
        for size in range(min(self._longest, len(words) - i), 0, -1):
            for listed, intent in self.lexicon.phrases.get(folded[i : i + size], ()):
                if all(_same_word(t, w) for t, w in zip(words[i : i + size], listed)):
                    return size, intent
        return None

    def detect(self, text: str) -> Detection | None:
        """The small-talk intent of the message and the words left over, or None without any."""
        found: set[Intent] = {intent for mark, intent in self.lexicon.emoji.items() if mark in text}
        typed = canonical(text).split()
        words = _accented(text)
        whole = self._alone(words) if not found else None
        if whole is not None:
            return whole
        folded = tuple(fold(w) for w in words)
        rest: list[str] = []
        kept: list[str] = []
        i = 0
        while i < len(words):
            hit = self._phrase_at(words, folded, i)
            if hit is not None:
                found.add(hit[1])
                i += hit[0]
                continue
            kept.append(typed[i])
            if not self.lexicon.is_filler(words[i]):
                rest.append(folded[i])
            i += 1
        if not found:
            return self._only_fillers(words)
        intent = next(i for i in PRIORITY if i in found)
        return Detection(intent, tuple(rest), " ".join(kept))


    def _alone(self, words: tuple[str, ...]) -> Detection | None:
        """A message that is nothing but one of the `alone` phrases (fillers aside)."""
        meant = tuple(w for w in words if not self.lexicon.is_filler(w))
        for listed, intent in self.lexicon.alone.get(tuple(fold(w) for w in meant), ()):
            if all(_same_word(t, w) for t, w in zip(meant, listed)):
                return Detection(intent, ())
        return None


    def _only_fillers(self, words: tuple[str, ...]) -> Detection | None:
        """Only particles and pronouns ("rồi", "hả", "vậy à"): an acknowledgement."""
        if words and all(self.lexicon.is_filler(w) for w in words):
            return Detection(Intent.ACK, ())
        return None


def replies_for(intent: Intent) -> list[Reply]:
    """Short, warm replies; the menu after a greeting, the hand-off offer after a complaint."""
    menu_row = [Button(texts.MENU, Menu().pack())]
    if intent is Intent.GREETING:
        return [Reply(texts.SMALLTALK_GREETING, menu_buttons(), kind="smalltalk")]
    if intent is Intent.COMPLAINT:
        # not the complaint itself as the question: the team is asked about what the citizen types next
        rows = [[Button(texts.SEND_TO_TEAM, human_action())], menu_row]
        return [Reply(texts.SMALLTALK_COMPLAINT, rows, kind="smalltalk")]
    if intent is Intent.IDENTITY:
        return [Reply(texts.SMALLTALK_IDENTITY, [[Button(texts.TALK_TO_STAFF, AskTeam().pack())], menu_row],
                      kind="smalltalk")]
    text = {
        Intent.THANKS: texts.SMALLTALK_THANKS,
        Intent.GOODBYE: texts.SMALLTALK_GOODBYE,
        Intent.PRAISE: texts.SMALLTALK_PRAISE,
        Intent.ACK: texts.SMALLTALK_ACK,
    }[intent]
    return [Reply(text, [menu_row], kind="smalltalk")]
