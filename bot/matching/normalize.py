"""Text normalisation for Vietnamese chat messages.

Citizens type with or without diacritics, with teencode ("ko", "dc"), old or new
tone-mark placement ("hoà"/"hòa") and politeness filler. Everything the matcher
compares goes through `Normalizer.tokens`, so the knowledge base and the question
meet in the same form.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge.yamlfile import read_yaml

LEXICON_FILE = Path(__file__).resolve().parents[2] / "knowledge" / "lexicon" / "chat.yaml"

# Invisible formatting characters (zero-width, bidi marks, BOM, soft hyphen): removed.
_INVISIBLE = re.compile(
    "[" + "".join(map(chr, [0x00AD, 0x061C, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF,
                             *range(0x202A, 0x202F), *range(0x2066, 0x206A)])) + "]"
)
_NON_WORD = re.compile(r"[\W_]+")
# A letter typed three or more times in a row, tone marks aside ("dạaaa", "vậyyy", "gìiii"): chat
# emphasis, never Vietnamese spelling (at most two, as in "xoong"); digits are left alone ("1000").
_STRETCHED = re.compile(r"([^\W\d_])\1{2,}")


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
_TONED_SECONDS = frozenset(old[1] for old in _TONE_TABLE)


def fold(text: str) -> str:
    """Drop Vietnamese diacritics: 'Đăng ký' -> 'Dang ky'."""
    return text if text.isascii() else text.translate(_FOLD)


def canonical(text: str) -> str:
    """NFKC (full-width and compatibility forms folded), lower-case, one tone-mark style, words only.

    ASCII text (most chat typed without diacritics) skips the steps that cannot change it.
    """
    text = unicodedata.normalize("NFKC", text)
    # lower() can decompose a few letters again, hence NFC after it
    text = text.lower() if text.isascii() else unicodedata.normalize("NFC", _INVISIBLE.sub("", text).lower())
    text = _NON_WORD.sub(" ", text)
    text = _unstretch(text)
    if not text.isascii() and not _TONED_SECONDS.isdisjoint(text):
        text = _TONE_PATTERN.sub(lambda m: _TONE_TABLE[m.group(1)], text)
    return " ".join(text.split())


def _unstretch(text: str) -> str:
    """Keep the first letter of a run of three or more that fold to the same letter ("dạaaa" ->
    "dạ": the first usually carries the tone). `fold` maps one character to one, so positions
    in the folded text are positions in the text."""
    runs = list(_STRETCHED.finditer(fold(text)))
    if not runs:
        return text
    parts, at = [], 0
    for run in runs:
        parts.append(text[at : run.start() + 1])
        at = run.end()
    parts.append(text[at:])
    return "".join(parts)


Phrase = tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    """Abbreviations (phrase -> expansion), filler phrases and matcher synonyms, as word tuples.

    `abbreviations` and `fillers` define the normal form (`Normalizer.words`), which must be
    idempotent: an expansion is itself normalised when the file is loaded (so "vs" -> "với",
    a filler, simply drops). `synonyms` only feed the matcher (`Normalizer.tokens`): they add
    words ("trực tuyến" -> "online trực tuyến") and would grow on every pass if they were part
    of the normal form.
    """

    abbreviations: dict[Phrase, Phrase]
    fillers: frozenset[Phrase]
    max_len: int
    stopwords: frozenset[str] = frozenset()  # folded
    synonyms: dict[Phrase, Phrase] = field(default_factory=dict)  # folded

    @classmethod
    def from_file(cls, path: Path = LEXICON_FILE) -> Lexicon:
        try:
            data = read_yaml(path) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot load the chat lexicon: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the chat lexicon must be a mapping")

        def phrases(section: str) -> dict[Phrase, Phrase]:
            items = data.get(section) or {}
            if not isinstance(items, dict):
                raise ValueError(f"{path}: '{section}' must be a mapping of phrase: words")
            return {tuple(canonical(str(k)).split()): tuple(canonical(str(v)).split())
                    for k, v in items.items() if canonical(str(k))}

        abbreviations = phrases("abbreviations")
        fillers = frozenset(
            tuple(canonical(str(item)).split()) for item in data.get("fillers") or [] if canonical(str(item))
        )
        longest = max((len(k) for k in [*abbreviations, *fillers]), default=1)
        stopwords = frozenset(fold(canonical(str(w))) for w in data.get("stopwords") or [])
        synonyms = {tuple(map(fold, k)): tuple(map(fold, v)) for k, v in phrases("synonyms").items()}
        raw = cls(abbreviations, fillers, longest, stopwords, synonyms)
        # Expansions in normal form, so a second pass finds nothing left to expand or drop.
        settle = Normalizer(raw)
        settled = {key: tuple(settle.words(" ".join(value))) for key, value in abbreviations.items()}
        return cls(settled, fillers, longest, stopwords, raw.synonyms)


_SEPARATOR = "qxzsepqxz"  # canonical keeps it; no lexicon phrase contains it
MAX_PASSES = 8  # rewriting settles in one or two passes; the cap only guards against a lexicon loop


class _Rewriter:
    """Longest-match phrase replacement; a word that starts no phrase costs one dict lookup."""

    def __init__(self, table: dict[Phrase, Phrase]):
        self.table = {k: v for k, v in table.items() if k != v}  # "vneid: vneid" documents, changes nothing
        self.starts: dict[str, int] = {}
        for phrase in table:
            self.starts[phrase[0]] = max(self.starts.get(phrase[0], 0), len(phrase))

    def __call__(self, source: list[str]) -> tuple[list[str], bool]:
        """Rewritten words, and whether another pass could still change them.

        Another pass is needed only if a replacement produced a word that starts a phrase, or
        landed within reach of an earlier phrase start that did not match ("cho e hoi": "e" ->
        "em" completes the filler "cho em hỏi"); otherwise the output is already a fixpoint.
        """
        starts, table = self.starts, self.table
        hits = [i for i, word in enumerate(source) if word in starts]
        if not hits:
            return source, False
        out: list[str] = []
        again = False
        reach = -1  # last output index an unmatched phrase start could still cover
        i, n = 0, len(source)
        for hit in hits:
            if hit < i:
                continue  # inside a phrase already replaced
            out.extend(source[i:hit])
            longest = starts[source[hit]]
            for size in range(min(longest, n - hit), 0, -1):
                phrase = tuple(source[hit : hit + size])
                replacement = table.get(phrase)
                if replacement is not None:
                    if replacement != phrase:
                        again = again or len(out) <= reach or not starts.keys().isdisjoint(replacement)
                    out.extend(replacement)
                    i = hit + size
                    break
            else:
                reach = len(out) + longest - 1
                out.append(source[hit])
                i = hit + 1
        out.extend(source[i:])
        return out, again


def _settled(rewrite: _Rewriter, words: list[str]) -> list[str]:
    """Rewrite until nothing changes (an expansion can complete another phrase)."""
    for _ in range(MAX_PASSES):
        words, again = rewrite(words)
        if not again:
            break
    return words


class Normalizer:
    """Turns raw text into comparable word lists (see module docstring)."""

    def __init__(self, lexicon: Lexicon | None = None):
        self.lexicon = lexicon or Lexicon.from_file()
        fillers = self.lexicon.fillers
        expansions = {k: v for k, v in self.lexicon.abbreviations.items() if k not in fillers}
        self._rewrite = _Rewriter({**{phrase: () for phrase in fillers}, **expansions})
        self._expand = _Rewriter(expansions)
        self._synonyms = _Rewriter(self.lexicon.synonyms)

    def words(self, text: str) -> list[str]:
        """Canonical words with abbreviations expanded and filler dropped (diacritics kept).

        Idempotent: rewriting repeats until nothing changes, since an expansion can complete a
        filler with its neighbours ("cho e hoi" -> "cho em hỏi", then dropped).
        """
        return _settled(self._rewrite, canonical(text).split())

    def expanded(self, text: str) -> list[str]:
        """Canonical words with abbreviations and dialect expanded but filler kept: for readers
        of phrases in which a filler word carries meaning ("còn cái kia thì sao")."""
        return _settled(self._expand, canonical(text).split())

    def normalized(self, text: str) -> str:
        """The form stored in logs and used to group similar questions (idempotent)."""
        return " ".join(self.words(text))

    def analyse(self, text: str) -> tuple[str, list[str], dict[str, str]]:
        """The normalised text, the diacritic-folded tokens the matcher compares, and for the
        tokens typed with diacritics, the word as typed (folded -> accented)."""
        words = self.words(text)
        folded = _fold_words(words)
        accented = {f: w for w, f in zip(words, folded) if w != f}
        return " ".join(words), self._synonyms(folded)[0], accented

    def tokens(self, text: str) -> list[str]:
        """Diacritic-folded words plus lexicon synonyms: what the matcher compares."""
        return self._synonyms(_fold_words(self.words(text)))[0]

    def tokens_many(self, texts: list[str], chunk: int = 512) -> list[list[str]]:
        """`tokens` of each text, a chunk of texts per pass: indexing 10,000 entries means ~200,000
        texts, and one regex or rewrite pass over a chunk costs far less than one per text.

        Texts are joined with a separator word that survives `canonical` and starts no phrase, so
        no rewrite can reach across two texts.
        """
        out: list[list[str]] = []
        for begin in range(0, len(texts), chunk):
            part = texts[begin : begin + chunk]
            words = self.words(f" {_SEPARATOR} ".join(part))
            tokens = self._synonyms(_fold_words(words))[0]
            current: list[str] = []
            for token in tokens:
                if token == _SEPARATOR:
                    out.append(current)
                    current = []
                else:
                    current.append(token)
            out.append(current)
        return out


@lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    return word.translate(_FOLD)


def _fold_words(words: list[str]) -> list[str]:
    return [_fold_word(w) for w in words]
