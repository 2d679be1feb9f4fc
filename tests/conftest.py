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
    `test_gw1`, ..., `test_solo` without pytest-xdist), emptied or created again for each test,
    so workers never reset each other's and the database named there is never dropped."""
    from sqlalchemy import make_url

    worker = os.environ.get("PYTEST_XDIST_WORKER", "solo")
    base = make_url(url)
    return base.set(database=f"{base.database}_{worker}").render_as_string(hide_password=False)


# Every test gets a database already at the newest schema, copied from one migrated per test
# process: migrating each test's database took a fifth of the suite's CPU. The migrations
# themselves still run (once per process here, and from empty in the tests that take
# `empty_database_url`). No test sees another's rows: a SQLite test gets a new copy, a PostgreSQL
# test the worker's database emptied in place, or copied again when its schema changed.
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
        template_url = make_url(url).set(database=template)
        await _migrated(template_url.render_as_string(hide_password=False))
        _template_state[template] = await _schema_of(template_url)
        _templates["postgres"] = template
    return _templates["postgres"]


# Per PostgreSQL template: its schema fingerprint and the script that empties a copy of it.
_template_state: dict[str, tuple[str, str]] = {}


async def _schema_of(url) -> tuple[str, str]:
    """The template's schema fingerprint, and a script that empties a database of that schema:
    DELETE from every table with foreign-key triggers off (replica role), then every sequence
    restarted. For the few rows a test leaves that is ~5 ms; TRUNCATE, which gives every table
    new files, took ~50 ms idle and several times that with the suite running."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = (await conn.execute(text(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))).scalars().all()
            sequences = (await conn.execute(text(
                "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'"))).scalars().all()
            script = ("SET session_replication_role = replica;"
                      + "".join(f"DELETE FROM {table};" for table in tables)
                      + "".join(f"ALTER SEQUENCE {sequence} RESTART;" for sequence in sequences)
                      + "RESET session_replication_role;")
            return await conn.scalar(text(_SCHEMA)), script
    finally:
        await engine.dispose()  # no connection may stay open on a PostgreSQL template


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

    worker_url = _worker_database(url)
    if not migrated:
        _emptied.discard(worker_url)
        await _recreate_postgres(url, make_url(worker_url).database, from_template=None)
        return worker_url
    template = await _postgres_template(url)
    if worker_url not in _emptied or not await _emptied_in_place(worker_url, template):
        await _recreate_postgres(url, make_url(worker_url).database, from_template=template)
        _emptied.add(worker_url)
    return worker_url


# Worker databases that hold the template's schema: the next test empties one in place (DELETE,
# ~5 ms) instead of copying the template again (~200 ms of server work and ~8 MB of WAL each).
_emptied: set[str] = set()

# Tables and columns, and the triggers and functions fault-injecting tests add (telegram_harness).
_SCHEMA = """SELECT md5(concat_ws('|',
    (SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name)
       FROM information_schema.columns WHERE table_schema = 'public'),
    (SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal),
    (SELECT string_agg(p.proname, ',' ORDER BY p.proname) FROM pg_proc p
       JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public')))"""


async def _emptied_in_place(url: str, template: str) -> bool:
    """Empty every table of `url` (identities restarted), if its schema is still the template's;
    False (the caller copies the template again) on any difference or trouble."""
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(make_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            # A process a test killed may still hold a connection (and its locks) for a moment.
            await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            schema, emptying = _template_state[template]
            if await conn.scalar(text(_SCHEMA)) != schema:
                return False
            await conn.execute(text("SET lock_timeout = '5s'"))
            # One round trip, several statements: asyncpg's simple query protocol takes a script.
            await (await conn.get_raw_connection()).driver_connection.execute(emptying)
        return True
    except Exception:  # noqa: BLE001 - a fresh copy is always a correct answer
        return False
    finally:
        await engine.dispose()


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
    is running, which bunches the arrivals a rate-limited fake server counts.

    Collections are also made rarer (the young generation at 10,000 new objects instead of 700,
    the oldest after 100 middle ones instead of 10): a test process keeps a few hundred thousand objects alive
    (SQLAlchemy's statement caches, fakes' records), and the default thresholds spent about 5 s
    of CPU per worker walking them, a tenth of its own CPU; this way about 3 s. Nothing depends on
    when cyclic garbage goes: pytest's final collection still reports unraisable exceptions."""
    import gc

    knowledge_for(load_settings(_env_file=None, telegram_bot_token=""))
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist, start the slow tests first, spread over the workers.

    Work stealing gives each worker an equal run of the collection and lets idle workers take
    the end of a busy one's queue; a slow test that happens to sit late in its run then finishes
    alone, long after the rest (an 18 s browser walkthrough did, adding 15 s to the suite). So
    tests marked `slow(seconds)` open the runs, balanced by their seconds, and each run keeps its
    size, so the scheduler's split (sizes as in xdist's check_schedule) still falls on them.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers < 2:
        return
    slow = sorted(((seconds, index) for index, item in enumerate(items) if (seconds := _slow_seconds(item))),
                  reverse=True)
    if not slow:
        return
    runs: list[list[int]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for seconds, index in slow:  # the longest first, each to the least loaded run
        lightest = loads.index(min(loads))
        runs[lightest].append(index)
        loads[lightest] += seconds
    marked = {index for _, index in slow}
    rest = iter(index for index in range(len(items)) if index not in marked)
    remaining, order, overflow = len(items), [], []
    for number, run in enumerate(runs):
        size = remaining // (workers - number)
        remaining -= size
        order += run[:size] + [next(rest) for _ in range(size - len(run[:size]))]
        overflow += run[size:]
    order += [*rest, *overflow]
    items[:] = [items[index] for index in order]


def _slow_seconds(item) -> float:
    """The seconds of a `slow(seconds, only="postgres")` mark, 0 where the mark does not apply
    (`only` names the backend the test runs on; on the other it is skipped at once)."""
    marker = item.get_closest_marker("slow")
    if marker is None:
        return 0.0
    only = marker.kwargs.get("only")
    backend = getattr(item, "callspec", None) and item.callspec.params.get("database_url")
    return 0.0 if only and backend and backend != only else float(marker.args[0])
