"""`python -m bot db backup PATH`: a consistent copy of a live SQLite database.

SQLite's online backup API copies pages under a read transaction, so the bot can keep
writing meanwhile and the copy holds every transaction committed before it started.
The copy is made in one step (pages=-1): copied in small steps, SQLite restarts the
backup whenever another connection writes between two steps, so under steady traffic a
large database would never finish.
PostgreSQL has its own tool for this: pg_dump.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    pass


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            "DATABASE_URL is PostgreSQL: back it up with pg_dump, e.g. "
            "pg_dump --format=custom --file bot.dump <database> (restore with pg_restore)")
    if not url.database or url.database == ":memory:":
        raise BackupError("DATABASE_URL has no database file to back up")
    return Path(url.database)


def backup_sqlite(database_url: str, target: Path) -> int:
    """Copy the database to `target` (which must not exist); returns the copy's size in bytes."""
    source_path = sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"database file {source_path} does not exist")
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination, pages=-1)  # one step: never restarted by writers
        check = destination.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy failed its integrity check: {check}")
    finally:
        destination.close()
        source.close()
    return target.stat().st_size
