"""Slow clients cannot take the service down: a real `python -m bot` with a small descriptor
limit, flooded with connections that send their headers slowly (or declare a body and never
send it), drops them after WEB_HEADER_TIMEOUT / WEB_BODY_TIMEOUT and answers /healthz again.
Judged by what the clients see (the server closes them; /healthz answers), with deadlines
far longer than the timeouts, so a busy machine cannot fail it."""

from __future__ import annotations

import asyncio
import configparser
import os
import resource
import sys
from pathlib import Path

import aiohttp

from tests.test_campaign_process import ROOT, free_port

SLOW = 300  # connections, more than the process may open files
NOFILE = 200


def limited_files() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


async def healthz(port: int) -> int | None:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http, \
                http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def wait_healthz(port: int, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await healthz(port) == 200:
            return True
        await asyncio.sleep(0.2)
    return False


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True once the server closes the connection (EOF or reset), False if still open."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_slow_header_and_body_clients_are_dropped_and_healthz_answers(tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
           "USER_KEY_SECRET": "x", "WEB_PORT": str(port), "WEB_HEADER_TIMEOUT": "1", "WEB_BODY_TIMEOUT": "1",
           "LOG_LEVEL": "INFO", "TELEGRAM_BOT_TOKEN": ""}
    log = tmp_path / "bot.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("wb"), stdin=asyncio.subprocess.DEVNULL, preexec_fn=limited_files)
    writers = []
    try:
        assert await wait_healthz(port, 60), log.read_text(errors="replace")[-2000:]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/ask HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 10000000\r\n\r\n{\"q\": ")  # a 10 MB body that never comes
        writers.append(writer)
        body_reader = reader
        # Closed by the server (a timeout of 1 s; the deadlines are generous for a busy machine).
        assert await closed_by_server(body_reader, 30)
        slow = []
        for _ in range(SLOW):  # more connections than descriptors: the first ones take them all
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nX-Slow: ")  # and never the rest
            slow.append(reader)
            writers.append(writer)
        dropped = await asyncio.gather(*(closed_by_server(r, 30) for r in slow))
        assert all(dropped), f"{dropped.count(False)} of {SLOW} slow connections still open"
        assert await wait_healthz(port, 30)  # descriptors are free again
    finally:
        for writer in writers:
            writer.close()
        proc.terminate()
        await proc.wait()
    assert "Traceback" not in log.read_text(errors="replace")


def test_the_units_raise_the_file_limit():
    """systemd's default soft limit (1024) is what the slow clients exhausted."""
    for unit in Path(ROOT, "deploy").glob("*.service"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(unit.read_text())
        assert int(parser["Service"]["LimitNOFILE"]) >= 65536, unit.name
