"""Logging set-up: readable lines by default, JSON lines with LOG_FORMAT=json.

No personal data goes to logs: users appear only as pseudonymous keys and question text
is never logged (the redacted copy lives in the database). Libraries that log requests
verbatim stay at WARNING even with LOG_LEVEL=DEBUG: `telegram` logs every Bot API call
with its parameters (chat ids, reply text), `httpx`/`httpcore` log URLs, which carry the
bot token, and `aiosqlite` logs each statement with its bound values.

Some errors carry what they were given in their own text, whoever logs them: aiohttp's
parser quotes the raw bytes of a malformed request (a broken chunked body: up to 64 KB of
what a citizen typed), and PostgreSQL/asyncpg quote a refused value despite
`hide_parameters` (`invalid input for query argument $3: '...'`). `RedactingFilter`, on every
handler, hides those quotes and redacts what is left (bot.privacy.redact) in the message and
the exception text of every record.
"""

from __future__ import annotations

import json
import logging
import re

from bot.privacy import redact

NOISY = ("alembic", "httpx", "httpcore", "telegram", "aiosqlite", "asyncpg", "aiohttp.access",
         "sqlalchemy.engine", "sqlalchemy.pool", "hpack", "urllib3")


MAX_RECORD_CHARS = 8000  # a log line longer than this is cut (after the quotes above are hidden)
_HIDDEN = "[hidden]"
# Values quoted in error texts: a bytes literal (aiohttp's parser errors), an asyncpg argument,
# PostgreSQL's "invalid input syntax for type integer: "abc"", a unique-key DETAIL.
_QUOTED_VALUES = (
    (re.compile(r"""\bb(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""), "b'" + _HIDDEN + "'"),
    (re.compile(r"(query argument \$\d+: ).*"), r"\1" + _HIDDEN),
    (re.compile(r"""(invalid input (?:syntax |value )?for (?:type |enum )?[\w ."()]+?: ).*"""), r"\1" + _HIDDEN),
    (re.compile(r"(Key \([^)]*\))=\(.*?\)( already exists| is not present| conflicts)"), r"\1=(" + _HIDDEN + r")\2"),
    (re.compile(r"(Failing row contains ).*"), r"\1" + _HIDDEN),
)


# IPv4 addresses stay readable (redact would take 203.113.135.120 for an ID number); an ID
# number written in groups (001.203.004.567) has leading zeros or a group above 255, so it is
# not one.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)")


def scrub(text: str) -> str:
    """`text` without quoted request bytes or refused database values, redacted, and cut to
    MAX_RECORD_CHARS."""
    for pattern, replacement in _QUOTED_VALUES:
        text = pattern.sub(replacement, text)
    if len(text) > MAX_RECORD_CHARS:
        text = text[:MAX_RECORD_CHARS] + f" [... {len(text) - MAX_RECORD_CHARS} characters cut]"
    pieces, last = [], 0
    for address in _IPV4.finditer(text):
        pieces += [redact(text[last:address.start()]), address.group()]
        last = address.end()
    pieces.append(redact(text[last:]))
    return "".join(pieces)


class RedactingFilter(logging.Filter):
    """Scrubs every record's message and exception text (see the module docstring). A filter
    on the handlers, not on loggers: a handler sees the records of every logger, libraries'
    included, which a logger's own filter would not."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "scrubbed", False):
            return True  # another handler already scrubbed this record
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what can be shown safely
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        record.scrubbed = True
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY:  # child loggers (telegram.ext, telegram._bot, ...) inherit this level
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
