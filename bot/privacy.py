"""Personal-data redaction and pseudonymous user keys.

Question logs must not identify anyone on their own: text is redacted before it is
stored, and users appear only as a keyed hash of their platform id.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_SEP = r"[ .\-]?"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    # Vietnamese phone numbers: 0xxxxxxxxx or +84/84 followed by 9 digits, with optional separators.
    (re.compile(rf"(?<![\w+])(?:\+?84|0)(?:{_SEP}\d){{9}}(?!\d)"), "[SĐT]"),
    # Card numbers: 13-19 digits, possibly grouped by 4.
    (re.compile(r"(?<!\d)\d{4}(?:[ \-]?\d{4}){2}(?:[ \-]?\d{1,4}){1,2}(?!\d)"), "[SỐ THẺ]"),
    # Citizen ID (12 digits) and old identity card (9 digits).
    (re.compile(r"(?<!\d)(?:\d{12}|\d{9})(?!\d)"), "[SỐ GIẤY TỜ]"),
    # Anything else that looks like an account number: 8+ digits.
    (re.compile(r"(?<!\d)\d(?:[ \-]?\d){7,}(?!\d)"), "[SỐ TÀI KHOẢN]"),
]


def redact(text: str) -> str:
    """Replace phone numbers, ID numbers, emails and card/account numbers with tags."""
    for pattern, tag in _PATTERNS:
        text = pattern.sub(tag, text)
    return text


def user_key(secret: str, channel: str, platform_id: str | int) -> str:
    """Keyed hash of a platform user id: stable for us, meaningless without the secret."""
    digest = hmac.new(secret.encode(), f"{channel}:{platform_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
