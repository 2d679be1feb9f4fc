"""Small test utilities shared by several test files."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on a random local port over real HTTP; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def eventually(predicate, timeout: float = 30.0, what: str = "the condition",  # noqa: ASYNC109
                     step: float = 0.1):
    """Wait until `predicate()` (a function, sync or async) returns something truthy, and return
    it; raise TimeoutError naming `what` otherwise, never give up silently."""
    import asyncio
    import inspect
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(step)


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker[2:].isdigit() else 0


# Ports for services a test starts in a child process. They come from below the kernel's ephemeral
# range (32768+ here), so no server bound to port 0 (the fakes) can take one between our check and
# the child's bind, and each xdist worker has its own block, so two workers never pick the same one.
_PORT_BLOCK = 600
_next_port = itertools.cycle(range(20000 + _worker_index() * _PORT_BLOCK,
                                   20000 + (_worker_index() + 1) * _PORT_BLOCK))


def free_port() -> int:
    """A local TCP port nobody listens on now, for a child process to bind."""
    for _ in range(_PORT_BLOCK):
        port = next(_next_port)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's block")


def cli_in_process(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """`python -m bot *args` in this process: the same `bot.cli.main`, with `env` laid over the
    environment, `stdin` as its input and its output captured, for tests of what a command does
    rather than of the process (each real `python -m bot` costs about a second of CPU in imports).
    Blocking, and commands run their own event loop: from async tests call it with
    `asyncio.to_thread`. Logging set up by the command is undone afterwards."""
    import io
    import logging
    import sys

    from bot.cli import main
    from bot.ops.logs import NOISY

    loggers = [logging.getLogger(), *map(logging.getLogger, NOISY)]
    kept_logging = [(lg, lg.level, lg.handlers[:]) for lg in loggers]
    kept_env, kept_stdin = dict(os.environ), sys.stdin
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env or {})
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse refusing the command line (or --help)
                code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    finally:
        sys.stdin = kept_stdin
        os.environ.clear()
        os.environ.update(kept_env)
        for lg, level, handlers in kept_logging:
            lg.setLevel(level)
            lg.handlers[:] = handlers
    return subprocess.CompletedProcess(["python", "-m", "bot", *args], code, out.getvalue(), err.getvalue())
