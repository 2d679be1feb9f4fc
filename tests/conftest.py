from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from bot.matching.live import LiveKnowledge
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from tests.knowledge_cache import knowledge_for


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    # Tests never read a developer's .env: every value comes from defaults or the test.
    return load_settings(_env_file=None, telegram_bot_token="")


@pytest.fixture(scope="session")
def runtime(base_settings: Settings) -> Runtime:
    return Runtime.build(base_settings, knowledge_for(base_settings))


@pytest.fixture(scope="session")
def knowledge(runtime: Runtime) -> LiveKnowledge:
    return runtime.knowledge


BACKENDS = ["sqlite", "postgres"]


def _worker_database(url: str) -> str:
    """Each test process gets its own database next to TEST_DATABASE_URL's (`test_gw0`,
    `test_gw1`, ..., `test_solo` without pytest-xdist), dropped and created again for each
    test, so workers never reset each other's and the database named there is never dropped."""
    from sqlalchemy import make_url

    worker = os.environ.get("PYTEST_XDIST_WORKER", "solo")
    base = make_url(url)
    return base.set(database=f"{base.database}_{worker}").render_as_string(hide_password=False)


# Every test gets a database already at the newest schema, copied from one migrated per test
# process: migrating each test's database took a fifth of the suite's CPU. The migrations
# themselves still run (once per process here, and from empty in the tests that take
# `empty_database_url`), and each copy is a new database, so no test sees another's rows.
_templates: dict[str, str] = {}


async def _migrated(url: str) -> None:
    from bot.storage.db import create_engine, migrate

    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()  # no connection may stay open on a PostgreSQL template


async def _sqlite_template(scratch: Path) -> str:
    """The file of this process's SQLite database at the newest schema."""
    if "sqlite" not in _templates:
        template = scratch / "schema.sqlite3"
        await _migrated(f"sqlite+aiosqlite:///{template}")
        _templates["sqlite"] = str(template)
    return _templates["sqlite"]


async def _postgres_template(url: str) -> str:
    """The name of this process's PostgreSQL database at the newest schema."""
    from sqlalchemy import make_url

    if "postgres" not in _templates:
        template = f"{make_url(_worker_database(url)).database}_schema"
        await _recreate_postgres(url, template, from_template=None)
        await _migrated(make_url(url).set(database=template).render_as_string(hide_password=False))
        _templates["postgres"] = template
    return _templates["postgres"]


async def _recreate_postgres(url: str, name: str, from_template: str | None) -> None:
    """Drop database `name` (closing any connection a killed child process left) and create it
    empty, or as a copy of `from_template`."""
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(make_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            copy = f' TEMPLATE "{from_template}"' if from_template else ""
            await conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    finally:
        await engine.dispose()


def _sqlite_copy(template: str, target: Path) -> None:
    with contextlib.closing(sqlite3.connect(template)) as source, \
            contextlib.closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


async def _fresh_database(request, tmp_path: Path, migrated: bool) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        if migrated:
            scratch = request.getfixturevalue("tmp_path_factory").getbasetemp()
            _sqlite_copy(await _sqlite_template(scratch), path)
        return f"sqlite+aiosqlite:///{path}"
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip(NO_POSTGRES)
    from sqlalchemy import make_url

    template = await _postgres_template(url) if migrated else None
    worker_url = _worker_database(url)
    await _recreate_postgres(url, make_url(worker_url).database, from_template=template)
    return worker_url


NO_POSTGRES = "PostgreSQL tests skipped: TEST_DATABASE_URL is not set"
_SKIP_LINE = next(n for n, line in enumerate(Path(__file__).read_text(encoding="utf-8").splitlines(), start=1)
                  if line.strip() == "pytest.skip(NO_POSTGRES)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Every test skipped for want of TEST_DATABASE_URL reports the same place, so the `-ra`
    summary folds them into one line ("SKIPPED [170] ...") instead of one line per test."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[2].endswith(NO_POSTGRES):
        here = Path(__file__)
        shown = here.relative_to(item.config.rootpath) if here.is_relative_to(item.config.rootpath) else here
        report.longrepr = (str(shown), _SKIP_LINE, report.longrepr[2])


@pytest.fixture(params=BACKENDS)
async def database_url(request, tmp_path) -> str:
    """A new database at the newest schema on each backend; PostgreSQL needs TEST_DATABASE_URL."""
    return await _fresh_database(request, tmp_path, migrated=True)


@pytest.fixture(params=BACKENDS)
async def empty_database_url(request, tmp_path) -> str:
    """A new, empty database (no tables), for tests of creating the schema."""
    return await _fresh_database(request, tmp_path, migrated=False)


def pytest_collection_finish(session) -> None:
    """Index the shipped knowledge base, then move everything alive so far (modules, the index,
    the test items) out of the garbage collector's reach. Without this each full collection walks
    the whole heap: half a second late in a run, an event-loop stall in the middle of whatever test
    is running, which bunches the arrivals a rate-limited fake server counts."""
    import gc

    knowledge_for(load_settings(_env_file=None, telegram_bot_token=""))
    gc.collect()
    gc.freeze()
