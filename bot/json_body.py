"""Parsing JSON sent by anyone on the internet without letting it crash a handler.

`json.loads` raises more than JSONDecodeError on hostile input: RecursionError for deeply
nested arrays, ValueError for integers longer than Python's 4,300-digit limit, UnicodeDecodeError
for bytes that are not UTF-8. Every HTTP entry point (ask API, web chat, Telegram and Zalo
webhooks) parses through `parse`, so each of these becomes one clear 400, never a 500 with a
traceback in the log.
"""

from __future__ import annotations

import json
from typing import Any


class BadJson(ValueError):
    """The body is not JSON this service will read."""


def parse(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise BadJson(type(exc).__name__) from None


def parse_object(raw: bytes | str) -> dict[str, Any]:
    """A JSON object (the only top-level shape our endpoints accept)."""
    data = parse(raw)
    if not isinstance(data, dict):
        raise BadJson("not an object")
    return data
