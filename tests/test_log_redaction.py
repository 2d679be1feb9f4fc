"""Logs never carry what a request or a refused database value held: aiohttp's parser errors
quote the raw request bytes, asyncpg and PostgreSQL quote refused values; the filter that
bot.ops.logs installs on every handler hides and redacts them."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.ops.logs import configure, scrub
from bot.storage.db import create_engine
from tests.dashboard_harness import running_site

PHONE, ID_NUMBER, EMAIL = "0912345678", "001203004567", "nguyen.van.an@example.vn"
PLANTED = f"sdt {PHONE} cccd {ID_NUMBER} mail {EMAIL} "


@pytest.fixture
def captured_logs(capsys):
    """Restores the root logger after a test that ran the service's own log set-up
    (bot.ops.logs.configure, called in the test so it writes to the captured stderr)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        yield lambda: capsys.readouterr().err
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def assert_nothing_planted(logs: str) -> None:
    for value in (PHONE, ID_NUMBER, EMAIL, "0912 345 678"):
        assert value not in logs


async def _raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader.read(100_000)
    writer.close()
    return answer


@pytest.mark.parametrize("json_format", [False, True])
async def test_a_malformed_chunked_body_is_not_logged(database_url, captured_logs, json_format):
    configure("INFO", "json" if json_format else "text")
    async with running_site(database_url) as site:
        body = (PLANTED * 1500).encode()  # about 60 KB where a chunk size should be
        answer = await _raw_request(site.url, b"POST /chat/api/message HTTP/1.1\r\nHost: x\r\n"
                                              b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" + body + b"\r\n")
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
        # The same in a header line aiohttp refuses.
        await _raw_request(site.url, f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: {PLANTED}\x01\r\n\r\n".encode())
        await asyncio.sleep(0.1)
    logs = captured_logs()
    assert "Error handling request" in logs and "chunk" in logs  # the error itself is still logged
    assert_nothing_planted(logs)
    assert len(logs) < 40_000  # the 60 KB body is not in the log


async def test_refused_postgresql_values_are_not_logged(captured_logs):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL tests skipped: TEST_DATABASE_URL is not set")
    configure("INFO", "text")
    engine = create_engine(url)
    log = logging.getLogger("bot.storage.store")
    try:
        async with engine.connect() as conn:
            # Refused by asyncpg while encoding the argument ...
            with pytest.raises(DBAPIError) as client_side:
                await conn.execute(text("SELECT CAST(:v AS integer)"), {"v": PLANTED})
            log.error("write failed: %s", client_side.value, exc_info=client_side.value)
            await conn.rollback()
            # ... and by the server while parsing it.
            with pytest.raises(DBAPIError) as server_side:
                await conn.execute(text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": PLANTED})
            log.exception("write failed", exc_info=server_side.value)
    finally:
        await engine.dispose()
    assert "query argument $1" in str(client_side.value) and PHONE in str(client_side.value)  # the values are there
    assert PHONE in str(server_side.value)
    logs = captured_logs()
    assert "query argument $1: [hidden]" in logs and "invalid input syntax for type integer: [hidden]" in logs
    assert_nothing_planted(logs)


def test_scrub_keeps_addresses_and_cuts_long_records():
    assert scrub("login from 203.113.135.120 failed") == "login from 203.113.135.120 failed"
    assert "001.203.004.567" not in scrub("cccd 001.203.004.567")
    assert scrub(f"Key (email)=({EMAIL}) already exists.") == "Key (email)=([hidden]) already exists."
    long = scrub("x" * 20_000)
    assert len(long) < 8100 and long.endswith("characters cut]")
