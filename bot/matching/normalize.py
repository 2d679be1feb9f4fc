"""Text normalisation for Vietnamese chat messages.

Citizens type with or without diacritics, with teencode ("ko", "dc"), old or new
tone-mark placement ("hoà"/"hòa") and politeness filler. Everything the matcher
compares goes through `Normalizer.tokens`, so the knowledge base and the question
meet in the same form.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

LEXICON_FILE = Path(__file__).resolve().parents[2] / "knowledge" / "lexicon" / "chat.yaml"

# Invisible formatting characters (zero-width, bidi marks, BOM, soft hyphen): removed.
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x061C, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_NON_WORD = re.compile(r"[\W_]+")


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "D"}
    for start, end in ((0x00C0, 0x0250), (0x1E00, 0x1F00)):
        for code in range(start, end):
            char = chr(code)
            base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
            if base != char and len(base) == 1:
                table[code] = base
    return table


_FOLD = _build_fold_table()
_TONES = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")


def _build_tone_table() -> dict[str, str]:
    """Map tone-on-second-vowel endings (hoà, thuỷ, khoẻ) to tone-on-first (hòa, thủy, khỏe)."""
    table = {}
    for first, second in (("o", "a"), ("o", "e"), ("u", "y")):
        for tone in _TONES:
            old = first + unicodedata.normalize("NFC", second + tone)
            new = unicodedata.normalize("NFC", first + tone) + second
            table[old] = new
    return table


_TONE_TABLE = _build_tone_table()
# Only at the end of a syllable (hoàn/toán/khuyến are the same in both styles) and not after
# "q" ("quý" is written one way).
_TONE_PATTERN = re.compile(r"(?<!q)(" + "|".join(_TONE_TABLE) + r")(?!\w)")


def fold(text: str) -> str:
    """Drop Vietnamese diacritics: 'Đăng ký' -> 'Dang ky'."""
    return text.translate(_FOLD)


def canonical(text: str) -> str:
    """NFC, lower-case, one tone-mark style, words only, single spaces."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE).lower()
    text = _NON_WORD.sub(" ", text)
    text = _TONE_PATTERN.sub(lambda m: _TONE_TABLE[m.group(1)], text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Lexicon:
    """Abbreviations (phrase -> expansion) and filler phrases, all as word tuples."""

    abbreviations: dict[tuple[str, ...], tuple[str, ...]]
    fillers: frozenset[tuple[str, ...]]
    max_len: int
    stopwords: frozenset[str] = frozenset()  # folded

    @classmethod
    def from_file(cls, path: Path = LEXICON_FILE) -> Lexicon:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot load the chat lexicon: {exc}") from exc
        abbreviations = {
            tuple(canonical(str(key)).split()): tuple(canonical(str(value)).split())
            for key, value in (data.get("abbreviations") or {}).items()
            if canonical(str(key))
        }
        fillers = frozenset(
            tuple(canonical(str(item)).split()) for item in data.get("fillers") or [] if canonical(str(item))
        )
        longest = max((len(k) for k in [*abbreviations, *fillers]), default=1)
        stopwords = frozenset(fold(canonical(str(w))) for w in data.get("stopwords") or [])
        return cls(abbreviations, fillers, longest, stopwords)


class Normalizer:
    """Turns raw text into comparable word lists (see module docstring)."""

    def __init__(self, lexicon: Lexicon | None = None):
        self.lexicon = lexicon or Lexicon.from_file()

    def words(self, text: str) -> list[str]:
        """Canonical words with abbreviations expanded and filler dropped (diacritics kept)."""
        source = canonical(text).split()
        out: list[str] = []
        i = 0
        lex = self.lexicon
        while i < len(source):
            for size in range(min(lex.max_len, len(source) - i), 0, -1):
                phrase = tuple(source[i : i + size])
                if phrase in lex.fillers:
                    i += size
                    break
                expansion = lex.abbreviations.get(phrase)
                if expansion is not None:
                    out.extend(expansion)
                    i += size
                    break
            else:
                out.append(source[i])
                i += 1
        return out

    def normalized(self, text: str) -> str:
        """The form stored in logs and used to group similar questions."""
        return " ".join(self.words(text))

    def tokens(self, text: str) -> list[str]:
        """Diacritic-folded words: what the matcher compares."""
        return _fold_words(tuple(self.words(text)))


@lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    return word.translate(_FOLD)


def _fold_words(words: tuple[str, ...]) -> list[str]:
    return [_fold_word(w) for w in words]
