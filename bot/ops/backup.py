"""`python -m bot db backup PATH`: a consistent copy of a live SQLite database.

SQLite's online backup API copies pages under a read transaction, so the bot can keep
writing meanwhile and the copy holds every transaction committed before it started.
The copy itself is bot/storage/sqlite_backup.py.
PostgreSQL has its own tool for this: pg_dump.
"""

from __future__ import annotations

from pathlib import Path

from bot.storage.sqlite_backup import copy_sqlite_file
from bot.storage.urls import parse_database_url


class BackupError(Exception):
    pass


def sqlite_path(database_url: str) -> Path:
    url = parse_database_url(database_url)
    if url.backend != "sqlite":
        raise BackupError(
            "DATABASE_URL is PostgreSQL: back it up with pg_dump, e.g. "
            "pg_dump --format=custom --file bot.dump <database> (restore with pg_restore)")
    if url.sqlite_file is None:
        raise BackupError("DATABASE_URL has no database file to back up")
    return Path(url.sqlite_file)


def backup_sqlite(database_url: str, target: Path) -> int:
    """Copy the database to `target` (which must not exist); returns the copy's size in bytes."""
    source_path = sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"database file {source_path} does not exist")
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    check = copy_sqlite_file(source_path, target)
    if check != "ok":
        raise BackupError(f"the copy failed its integrity check: {check}")
    return target.stat().st_size
