"""How common a word is in everyday Vietnamese, from `wordfreq`'s Vietnamese list.

The matcher needs this for words the knowledge base does not know. A word absent from every
entry used to weigh as much as the rarest known word, so that a question about something else
covered too little of itself to be answered. But most unknown words in real messages are
ordinary Vietnamese (fillers, forms of address, dialect: "cái", "mấy", "hông", "xài") that say
nothing about the topic. Background frequency tells them apart from rare, specific words
("karaoke", "passcode", a brand, a misspelt key word): the more common a word is in general
text, the less its absence from the knowledge base says.

wordfreq ships its Vietnamese frequencies (about 10,700 syllables) inside the package: no
download, no network. Lookups are Zipf values (log10 of occurrences per billion words: 7 for
"là", 4-5 for everyday words, 0 for unknown). Citizens often type without diacritics, so a
folded form ("hong") gets the highest Zipf among the accented forms that fold to it
("hông", "hồng", "hỏng"): typed bare, it may be any of them, and an ordinary word is the safe
reading. Both tables are built once per process (about 30 ms; `Matcher` does it while
indexing) and then are dict lookups.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

from bot.matching.normalize import canonical, fold

LANGUAGE = "vi"


def _frequency_buckets() -> list[list[str]]:
    """wordfreq's Vietnamese list: bucket i holds the words of frequency 10 ** (-i / 100).

    Read straight from the file wordfreq ships, in its documented "cBpack" format (gzipped
    msgpack: a header, then the buckets), because importing wordfreq costs 0.3-0.5 s of CPU
    per process (it finds its data folder by walking the interpreter's stack), more than the
    rest of indexing. wordfreq reads the same file (tests/test_matching_background.py checks
    that both agree); anything unexpected falls back to asking wordfreq itself."""
    try:
        import msgpack

        spec = importlib.util.find_spec("wordfreq")
        path = Path(spec.origin).parent / "data" / f"small_{LANGUAGE}.msgpack.gz"
        with gzip.open(path, "rb") as packed:
            data = msgpack.load(packed, raw=False)
        if data[0] == {"format": "cB", "version": 1}:
            return data[1:]
    except Exception:  # noqa: BLE001 - any surprise: let wordfreq read its own file
        pass
    from wordfreq import get_frequency_list

    return get_frequency_list(LANGUAGE)


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, float], dict[str, float]]:
    """(accented word -> Zipf, folded word -> highest Zipf of its accented forms)."""
    try:
        buckets = _frequency_buckets()
    except ImportError:  # pragma: no cover - a declared dependency; degrade to "nothing is common"
        return {}, {}
    accented: dict[str, float] = {}
    folded: dict[str, float] = {}
    for index, bucket in enumerate(buckets):
        zipf = 9.0 - index / 100  # log10 of occurrences per billion words
        for word in bucket:
            key = canonical(word)
            if not key or " " in key:
                continue
            accented[key] = max(accented.get(key, 0.0), zipf)
            bare = fold(key)
            folded[bare] = max(folded.get(bare, 0.0), zipf)
    return accented, folded


def load() -> None:
    """Build the tables now, not on a citizen's message."""
    _tables()


def zipf(word: str, accented_form: str | None = None) -> float:
    """Zipf frequency of a canonical word: of its accented form when the citizen typed one,
    else the highest among the accented forms its folded spelling stands for."""
    accented, folded = _tables()
    if accented_form is not None:
        return accented.get(accented_form, 0.0)
    return folded.get(fold(word), 0.0)


def folded_table() -> dict[str, float]:
    """Folded word -> Zipf (shared, read-only): for callers that look up many words."""
    return _tables()[1]


def accented_table() -> dict[str, float]:
    """Accented canonical word -> Zipf (shared, read-only)."""
    return _tables()[0]
