"""Reading DATABASE_URL without connecting (which backend, which SQLite file)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class DatabaseUrl:
    backend: str  # "sqlite", "postgresql"
    database: str | None

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite database file as written in the URL (not expanded); None for an in-memory
        database or another backend."""
        if self.backend != "sqlite" or not self.database or self.database == ":memory:":
            return None
        return self.database


def parse_database_url(database_url: str) -> DatabaseUrl:
    url = make_url(database_url)
    return DatabaseUrl(url.get_backend_name(), url.database)
