from __future__ import annotations

import os
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


async def _worker_database(url: str) -> str:
    """Under pytest-xdist each worker gets its own database next to TEST_DATABASE_URL's
    (`test_gw0`, `test_gw1`, ...), created on first use, so workers never reset each other's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not found:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


async def _reset_postgres(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
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
    """A fresh, empty database on each backend; PostgreSQL needs TEST_DATABASE_URL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.sqlite3"
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip(NO_POSTGRES)
    url = await _worker_database(url)
    await _reset_postgres(url)
    return url
