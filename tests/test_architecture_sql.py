"""SQL lives in bot/storage/ only (issue 12): no other module of the service imports a database
library or writes SQL text; they call the repositories (bot/storage/store.py lists them).

The check reads the source (imports anywhere in a module, including inside functions, and string
constants that are SQL statements), so it needs no database and runs in milliseconds.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "knowledge")  # what `pip install .` ships (pyproject.toml)
STORAGE = "bot/storage/"
DATABASE_LIBRARIES = frozenset({"sqlalchemy", "alembic", "sqlite3", "aiosqlite", "asyncpg", "psycopg", "psycopg2"})

# Modules outside bot/storage/ still allowed a database library, and why. Keep it short: an entry
# that no longer needs its place fails `test_allow_list_has_no_stale_entry`.
ALLOWED = {
    "bot/settings.py": "make_url reads DATABASE_URL to find the data folder; settings is a leaf below storage",
}

SQL_STATEMENT = re.compile(
    r"^\s*(INSERT\s+INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b|(CREATE|ALTER|DROP)\s+(TABLE|INDEX|VIEW)\b"
    r"|PRAGMA\s+\w+|BEGIN\s+IMMEDIATE\b|TRUNCATE\b)",
    re.IGNORECASE,
)
SQL_SELECT = re.compile(r"^\s*SELECT\b")  # "select" in prose is lower case: only SELECT counts


def violations(source: str) -> list[str]:
    """What in `source` touches the database directly: imports of a database library, SQL text."""
    found = []
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            names = []
        for name in names:
            if name.split(".")[0] in DATABASE_LIBRARIES:
                found.append(f"line {node.lineno}: imports {name}")
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                and (SQL_STATEMENT.match(node.value) or SQL_SELECT.match(node.value))):
            found.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
    return found


def service_modules() -> list[str]:
    return sorted(path.relative_to(ROOT).as_posix() for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                  if "migrations" not in path.parts)


def covers(entry: str, module: str) -> bool:
    return module == entry or (entry.endswith("/") and module.startswith(entry))


def offending_modules() -> dict[str, list[str]]:
    return {module: found for module in service_modules() if not module.startswith(STORAGE)
            and (found := violations((ROOT / module).read_text(encoding="utf-8")))}


def test_sql_only_in_storage():
    outside = {module: found for module, found in offending_modules().items() if not any(covers(entry, module) for entry in ALLOWED)}
    assert not outside, "database access outside bot/storage/ (add a repository method there instead):\n" + "\n".join(
        f"  {module}: {'; '.join(found)}" for module, found in outside.items())


def test_allow_list_has_no_stale_entry():
    offending = offending_modules()
    stale = [entry for entry in ALLOWED if not any(covers(entry, module) for module in offending)]
    assert not stale, f"these modules no longer touch the database: remove them from ALLOWED: {stale}"


def test_the_storage_package_is_where_the_queries_are():
    """The check looks where the code is: storage itself is full of what it forbids elsewhere."""
    storage = [module for module in service_modules() if module.startswith(STORAGE)]
    assert sum(bool(violations((ROOT / m).read_text(encoding="utf-8"))) for m in storage) >= 10


@pytest.mark.parametrize("source, caught", [
    ("from sqlalchemy import select", True),
    ("import sqlalchemy.exc", True),
    ("def f():\n    from sqlalchemy.engine import make_url", True),
    ("import sqlite3", True),
    ("conn.execute('SELECT 1')", True),
    ("x = 'delete from users where id = 1'", True),
    ("x = \"PRAGMA integrity_check\"", True),
    ("from bot.storage.store import Store", False),
    ("x = 'Update your ward in the menu'", False),
    ("x = 'select the entries you want'", False),
    ("def f():\n    '''SELECT is what the repository does.'''", False),
    ("NOISY = ('sqlalchemy.engine', 'aiosqlite')", False),  # logger names, not imports
])
def test_the_check_catches_database_access(source, caught):
    assert bool(violations(source)) is caught
