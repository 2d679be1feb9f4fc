"""Personal-data redaction and pseudonymous user keys.

Question logs must not identify anyone on their own: text is redacted before it is
stored, and users appear only as a keyed hash of their platform id.

Redaction works on the raw text, before normalisation removes the punctuation that makes
an e-mail address or a grouped number recognisable ("tran.b@yahoo.com" would otherwise
survive as "tran b yahoo com"). `loggable` then normalises the pieces between the tags, so
the tags survive into the normalised column too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable

PHONE, ID_NUMBER, CARD, ACCOUNT, EMAIL = "[SĐT]", "[SỐ GIẤY TỜ]", "[SỐ THẺ]", "[SỐ TÀI KHOẢN]", "[EMAIL]"
TAGS = (PHONE, ID_NUMBER, CARD, ACCOUNT, EMAIL)
_TAG = re.compile("|".join(re.escape(tag) for tag in TAGS))

# An address starts where a run of address characters starts (the look-behind), so a long run
# with no "@" is read once, not once per position ("a" * 2000 + "@b" was quadratic).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+(?:@|\s*[(\[]\s*at\s*[)\]]\s*)[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# A run of digits held together by separators or a bracketed group, optionally led by "+" or a
# bracketed prefix: 0912 345 678, 0912.345.678, +84 912 345 678, (+84) 912 345 678, (024) 3825 1234,
# 001.203.004.567, 4111-1111-1111-1111, 0912/345/678, 0912,345,678, 0912_345_678, two spaces,
# a line break inside an ID number. Letters around it do not protect it: "sđt0912345678" is a
# phone number. A comma followed by a space separates a list ("năm 2023, 2024"), not a number.
_SEP = r"(?:[ ]{1,2}|[ ]?[.\-/_][ ]?|,|[ ]?\r?\n[ ]?|[ .\-]?\(\d{1,4}\)[ .\-]?)"
_NUMBER = re.compile(rf"(?<!\d)(?:\+|\(\+?\d{{1,4}}\)[ .\-]?)?\d(?:{_SEP}?\d)*")
MIN_SECRET_DIGITS = 8  # shorter runs are amounts, years, house numbers: kept
# 12-05-2024, 12.05.2024, 12/05/2024 and, once normalised, 12 05 2024: a date, not an account number.
_DATE = re.compile(r"(0?[1-9]|[12]\d|3[01]) ?[ .\-/] ?(0?[1-9]|1[0-2]) ?[ .\-/] ?(19|20)\d\d")
# Invisible characters someone (or a keyboard) put inside a number or an address.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")


def _digits(text: str) -> str:
    return "".join(str(unicodedata.digit(ch)) for ch in text if ch.isdigit())


def _number_tag(run: str) -> str | None:
    """The tag for a digit run, or None to keep it (too short to identify anyone)."""
    if _DATE.fullmatch(run):
        return None
    digits = _digits(run)
    international = run.lstrip("(").startswith("+")
    if digits.startswith("0084"):
        digits = "0" + digits[4:]
    elif digits.startswith("84") and (international or len(digits) in (11, 12)):
        rest = digits[2:]
        digits = rest if rest.startswith("0") else "0" + rest
    if digits.startswith("0") and len(digits) in (10, 11):  # mobile 0xxxxxxxxx, landline 02xxxxxxxxx
        return PHONE
    if len(digits) in (9, 12):  # old identity card, citizen ID (CCCD)
        return ID_NUMBER
    if 13 <= len(digits) <= 19:
        return CARD
    if len(digits) >= MIN_SECRET_DIGITS:
        return ACCOUNT
    return None


def redact(text: str) -> str:
    """Replace e-mail addresses, phone numbers, ID numbers and card/account numbers with tags.

    Full-width and other compatibility forms are folded first (NFKC: "０９１２", "＠") and
    invisible characters dropped, so neither hides a number or an address."""
    if not text.isascii():
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = _EMAIL.sub(EMAIL, text)
    return _NUMBER.sub(lambda m: _number_tag(m.group()) or m.group(), text)


def loggable(text: str, normalize: Callable[[str], str], normalized: str | None = None) -> tuple[str, str]:
    """(redacted text, normalised redacted text) for the question log.

    The pieces between tags are normalised separately and redacted once more, in case
    normalising brought digits together (e.g. "091/234/5678" becomes "091 234 5678").
    `normalized`, when given, is `normalize(text)` already computed (by the matcher): it is
    reused when redaction found nothing, instead of normalising the same text again.
    """
    redacted = redact(text)
    if normalized is not None and redacted == text and not _TAG.search(text):
        return redacted, redact(normalized)
    parts: list[str] = []
    position = 0
    for match in _TAG.finditer(redacted):
        parts.append(redact(normalize(redacted[position:match.start()])))
        parts.append(match.group())
        position = match.end()
    parts.append(redact(normalize(redacted[position:])))
    return redacted, " ".join(p for p in parts if p)


# Text a database cannot store: lone UTF-16 surrogates (valid in JSON's "\ud800", not in UTF-8)
# and control characters (PostgreSQL refuses NUL in text; the rest are invisible noise).
_UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def storable(text: str) -> str:
    """`text` as every database can store it: lone surrogates become U+FFFD, control
    characters other than tab and line breaks are dropped. Applied where messages enter
    (bot.contracts.messages.IncomingMessage), so no channel can hand the storage a value that
    fails a write for a reason other than an outage."""
    if text.isascii() and text.isprintable():
        return text
    return _UNSTORABLE.sub(lambda m: "\ufffd" if "\ud800" <= m.group() <= "\udfff" else "", text)


def user_key(secret: str, channel: str, platform_id: str | int) -> str:
    """Keyed hash of a platform user id: stable for us, meaningless without the secret."""
    digest = hmac.new(secret.encode(), f"{channel}:{platform_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
