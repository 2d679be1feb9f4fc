"""Small talk: greetings, thanks, goodbyes, "who are you", praise, complaints, bare "ok".

Why a skill of its own: such messages are not questions, so the matcher must not be asked to
answer them (it would fall back, log them as unanswered and push the citizen towards a
person). Detection is by phrase (knowledge/lexicon/smalltalk.yaml) compared without
diacritics; the words that are neither small talk nor filler are returned as `rest`, so the
conversation can still answer a real question said with a greeting ("chào bạn, cho mình hỏi
quên mật khẩu vneid").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from bot.matching.normalize import canonical, fold
from handlers import texts
from handlers.handoff import human_action
from handlers.menus import menu_buttons
from handlers.messages import Button, Reply

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


def _words(text: str) -> tuple[str, ...]:
    return tuple(fold(canonical(text)).split())


@dataclass(frozen=True)
class Detection:
    intent: Intent
    rest: tuple[str, ...]  # words that are neither small talk nor filler

    @property
    def pure(self) -> bool:
        return not self.rest


@dataclass(frozen=True)
class SmallTalkLexicon:
    phrases: dict[tuple[str, ...], Intent]
    fillers: frozenset[str]
    emoji: dict[str, Intent]

    @classmethod
    def from_file(cls, path: Path = LEXICON_FILE) -> SmallTalkLexicon:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        phrases: dict[tuple[str, ...], Intent] = {}
        for intent, items in (data.get("intents") or {}).items():
            for item in items or ():
                words = _words(str(item))
                if words:
                    phrases.setdefault(words, Intent(intent))
        fillers = frozenset(w for item in data.get("fillers") or () for w in _words(str(item)))
        emoji = {unicodedata.normalize("NFC", str(k)): Intent(v) for k, v in (data.get("emoji") or {}).items()}
        return cls(phrases, fillers, emoji)

    @property
    def longest(self) -> int:
        return max((len(p) for p in self.phrases), default=1)


class SmallTalk:
    """Finds small talk in a message; `detect` is pure and synchronous."""

    def __init__(self, lexicon: SmallTalkLexicon | None = None):
        self.lexicon = lexicon or SmallTalkLexicon.from_file()
        self._longest = self.lexicon.longest

    def detect(self, text: str) -> Detection | None:
        """The small-talk intent of the message and the words left over, or None without any."""
        found: set[Intent] = {intent for mark, intent in self.lexicon.emoji.items() if mark in text}
        words = _words(text)
        rest: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 0, -1):
                intent = self.lexicon.phrases.get(words[i : i + size])
                if intent is not None:
                    found.add(intent)
                    i += size
                    break
            else:
                if words[i] not in self.lexicon.fillers:
                    rest.append(words[i])
                i += 1
        if not found:
            return None
        intent = next(i for i in PRIORITY if i in found)
        return Detection(intent, tuple(rest))


def replies_for(intent: Intent, question_ref: str = "0") -> list[Reply]:
    """Short, warm replies; the menu after a greeting, the hand-off offer after a complaint."""
    menu_row = [Button(texts.MENU, "menu")]
    if intent is Intent.GREETING:
        return [Reply(texts.SMALLTALK_GREETING, menu_buttons(), kind="smalltalk")]
    if intent is Intent.COMPLAINT:
        rows = [[Button(texts.SEND_TO_TEAM, human_action(question_ref))], menu_row]
        return [Reply(texts.SMALLTALK_COMPLAINT, rows, kind="smalltalk")]
    if intent is Intent.IDENTITY:
        return [Reply(texts.SMALLTALK_IDENTITY, [[Button(texts.TALK_TO_STAFF, "human")], menu_row],
                      kind="smalltalk")]
    text = {
        Intent.THANKS: texts.SMALLTALK_THANKS,
        Intent.GOODBYE: texts.SMALLTALK_GOODBYE,
        Intent.PRAISE: texts.SMALLTALK_PRAISE,
        Intent.ACK: texts.SMALLTALK_ACK,
    }[intent]
    return [Reply(text, [menu_row], kind="smalltalk")]
