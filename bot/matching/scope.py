"""The knowledge base's boundaries: subjects citizens ask about next to its topics that it has
no guide for (knowledge/meta/not_covered.yaml).

Why a list of subjects and not a score: a question about land titles ("cấp lại sổ đỏ") or a
pension calculation shares words with covered entries (cấp lại, hồ sơ, bảo hiểm, đăng ký) and
can score as high as a real paraphrase; nothing in word overlap tells "a topic we cover, asked
differently" from "a neighbouring procedure we do not cover". The distinctive words of those
neighbouring procedures do, and they are few, stable and easy to review as data.

A subject's phrase only marks a question as not covered when the entry the matcher would pick
does not itself use that phrase (in its title, questions or keywords): "lương hưu" is out of
scope for "cách tính lương hưu" but not for an entry about receiving a pension into a bank
account that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from bot.matching.normalize import Normalizer, fold
from knowledge.yamlfile import read_yaml

SCOPE_FILE = Path(__file__).resolve().parents[2] / "knowledge" / "meta" / "not_covered.yaml"


@dataclass(frozen=True)
class Subject:
    id: str
    title: str
    phrases: tuple[tuple[str, ...], ...]  # normalised words (lexicon applied, diacritics kept)


@dataclass(frozen=True)
class ContextRule:
    """Guides that answer a question whatever neighbouring subject it names, when the question asks
    what they answer (one of `cues`): a scam told by its bait ("bị lừa đặt vé máy bay"), the status
    of a file of any procedure ("hồ sơ tách thửa nộp rồi tra cứu ở đâu")."""

    why: str
    categories: frozenset[str] = frozenset()
    entries: frozenset[str] = frozenset()
    cues: tuple[tuple[str, ...], ...] = ()  # normalised words
    # The guides name neighbouring subjects only as bait ("cập nhật lương hưu" in a scam call): their
    # own words do not make a subject theirs, only a cue does.
    bait: bool = False

    def covers(self, entry_id: str, category: str) -> bool:
        return entry_id in self.entries or category in self.categories

    @cached_property
    def folded_cues(self) -> tuple[tuple[str, ...], ...]:
        """The cues without diacritics, as questions are compared with them."""
        return tuple(tuple(fold(w) for w in cue) for cue in self.cues)


class Scope:
    """Finds not-covered subject phrases in a question's normalised words.

    Words are compared without diacritics, except a word the citizen typed with them, which must
    be the phrase's own word: "số đó" (that number) is not "sổ đỏ" (a land title), "so do" may be.
    """

    def __init__(self, subjects: list[Subject], context: tuple[ContextRule, ...] = ()):
        self.subjects = subjects
        self.context = context
        self._by_first: dict[str, list[tuple[tuple[str, ...], Subject]]] = {}
        for subject in subjects:
            for phrase in subject.phrases:
                self._by_first.setdefault(fold(phrase[0]), []).append((phrase, subject))
        for items in self._by_first.values():
            items.sort(key=lambda item: len(item[0]), reverse=True)

    @classmethod
    def from_file(cls, normalizer: Normalizer, path: Path = SCOPE_FILE) -> Scope:
        """Load the subjects; a missing file means no boundary list (everything is in scope)."""
        if not path.is_file():
            return cls([])
        try:
            data = read_yaml(path) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot load the scope list: {exc}") from exc
        raw = data.get("subjects") if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: top level must have a mapping 'subjects' of id -> title, phrases")
        subjects = []
        for subject_id, item in raw.items():
            if not isinstance(item, dict) or not isinstance(item.get("phrases"), list):
                raise ValueError(f"{path}: subject {subject_id!r} needs a list 'phrases'")
            phrases = tuple(dict.fromkeys(tuple(normalizer.words(str(p))) for p in item["phrases"]))
            subjects.append(Subject(str(subject_id), str(item.get("title", subject_id)),
                                    tuple(p for p in phrases if p)))
        rules = []
        for item in data.get("as_context") or []:
            if not isinstance(item, dict) or not isinstance(item.get("cues"), list) or not all(
                    isinstance(item.get(key, []), list) for key in ("categories", "entries")):
                raise ValueError(f"{path}: each 'as_context' rule needs a list 'cues' and lists "
                                 "'categories' and/or 'entries'")
            cues = tuple(dict.fromkeys(tuple(normalizer.words(str(c))) for c in item["cues"]))
            rules.append(ContextRule(str(item.get("why", "")), frozenset(map(str, item.get("categories", []))),
                                     frozenset(map(str, item.get("entries", []))), tuple(c for c in cues if c),
                                     bool(item.get("bait", False))))
        return cls(subjects, tuple(rules))

    def baited(self, entry_id: str, category: str) -> bool:
        """Whether the entry names neighbouring subjects only as bait (see ContextRule.bait)."""
        return any(rule.bait and rule.covers(entry_id, category) for rule in self.context)

    def as_context(self, words: list[str], entry_id: str, category: str) -> bool:
        """Whether a rule lets this entry answer a question naming a subject: the entry is one the
        rule covers and the normalised words hold one of its cues (compared without diacritics)."""
        rules = [rule for rule in self.context if rule.covers(entry_id, category)]
        if not rules:
            return False
        folded = tuple(fold(w) for w in words)
        return any(folded[i:i + len(cue)] == cue
                   for rule in rules for cue in rule.folded_cues for i in range(len(folded) - len(cue) + 1))

    def find(self, words: list[str], joined: Callable[[str, str], bool] | None = None
             ) -> list[tuple[tuple[str, ...], Subject]]:
        """Every (phrase, subject) whose phrase occurs in the normalised words, in order.

        `joined(a, b)` (folded syllables) says two syllables make one word: Vietnamese words span
        syllables, so a phrase that starts or ends inside a word is not there: "mất điện" (a power
        cut) is not in "mất điện thoại" (a lost phone), nor "so de" (lottery) in "ho so de nghi"."""
        found = []
        by_first = self._by_first
        folded = [fold(w) for w in words]
        for i, bare in enumerate(folded):
            for phrase, subject in by_first.get(bare, ()):
                end = i + len(phrase)
                if all(i + k < len(words) and folded[i + k] == fold(p)
                       and (words[i + k] == folded[i + k] or words[i + k] == p)
                       for k, p in enumerate(phrase)) \
                        and not (joined and ((end < len(words) and joined(folded[end - 1], folded[end]))
                                             or (i > 0 and joined(folded[i - 1], bare)))):
                    found.append((phrase, subject))
                    break
        return found
