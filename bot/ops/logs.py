"""Logging set-up: readable lines by default, JSON lines with LOG_FORMAT=json.

No personal data goes to logs: users appear only as pseudonymous keys and question text
is never logged (the redacted copy lives in the database). Libraries that log requests
verbatim stay at WARNING even with LOG_LEVEL=DEBUG: `telegram` logs every Bot API call
with its parameters (chat ids, reply text), `httpx`/`httpcore` log URLs, which carry the
bot token, and `aiosqlite` logs each statement with its bound values.
"""

from __future__ import annotations

import json
import logging

NOISY = ("alembic", "httpx", "httpcore", "telegram", "aiosqlite", "asyncpg", "aiohttp.access",
         "sqlalchemy.engine", "sqlalchemy.pool", "hpack", "urllib3")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY:  # child loggers (telegram.ext, telegram._bot, ...) inherit this level
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
