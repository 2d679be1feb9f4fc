"""A consistent copy of a live SQLite file (`python -m bot db backup`, bot/ops/backup.py).

SQLite's online backup API copies pages under a read transaction, so the bot can keep
writing meanwhile and the copy holds every transaction committed before it started.
The copy is made in one step (pages=-1): copied in small steps, SQLite restarts the
backup whenever another connection writes between two steps, so under steady traffic a
large database would never finish.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def copy_sqlite_file(source_path: Path, target: Path) -> str:
    """Copy `source_path` to `target`; the copy's `PRAGMA integrity_check` verdict ("ok" when sound)."""
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination, pages=-1)  # one step: never restarted by writers
        return destination.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        destination.close()
        source.close()
