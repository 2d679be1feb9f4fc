"""Support shared by the Zalo fakes (zalo_oa.py, zalo_bot.py): serving on a random local port,
injected faults, outages, latency, a sliding-window rate limit and waiting for sent messages.

Each fake names its endpoints by a "target" string (the OA fake: URL paths; the Bot fake:
lower-case method names) and decides what an injected fault or a rate limit looks like on
its wire; this class only keeps the bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

JSON = dict[str, Any]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, how both Zalo fakes count text limits (an emoji counts 2).

    Zalo does not document whether its limits count characters or UTF-16 units (its clients
    and SDKs are Java/JavaScript, where a string's length is in UTF-16 units). The fakes take
    the stricter reading: a text they accept fits under either, and a product that counted
    characters would have emoji-heavy text refused here."""
    return len(text.encode("utf-16-le")) // 2


class RawReply(Exception):  # noqa: N818 - control flow
    """Answer with this status and (HTML) body instead of the API's JSON."""

    def __init__(self, status: int, body: str, content_type: str = "text/html") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


class DropConnection(Exception):  # noqa: N818 - control flow
    """Close the connection without answering."""


def nginx_page(status: int) -> str:
    """What a front-end proxy answers when the service behind it is down."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


@dataclass
class Fault:
    target: str  # a target or "*" (any)
    code: int
    description: str | None
    remaining: int
    recipient: str | None = None  # only sends to this user/chat
    http_status: int = 200


@dataclass
class RateLimit:
    per_second: int
    targets: frozenset[str]
    window: deque[float] = field(default_factory=deque)

    def exceeded(self, now: float) -> bool:
        """True when one more call within the last second would be over the limit."""
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        if len(self.window) >= self.per_second:
            return True
        self.window.append(now)
        return False


class FakeServer:
    """Base of the fakes: subclasses add routes and call these helpers from their handlers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.sent: list[Any] = []
        self.stats: Counter[str] = Counter()
        self._faults: list[Fault] = []
        self._outage_until: float | None = None
        self._outage_mode = "5xx"
        self._outage_status = 502
        self._outage_targets: frozenset[str] | None = None  # None = the subclass's default
        self._rate_limit: RateLimit | None = None
        self._delays: dict[str, float] = {}
        self.held: Counter[str] = Counter()  # delayed calls being held right now, by target
        self._runners: list[web.AppRunner] = []
        self._stopping = asyncio.Event()
        self._sent_event = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------
    async def _serve(self, app: web.Application, port: int = 0) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        await web.SockSite(runner, sock).start()
        self._runners.append(runner)
        return sock.getsockname()[1]

    @property
    def started(self) -> bool:
        return bool(self._runners)

    async def start(self) -> FakeServer:
        raise NotImplementedError

    async def stop(self) -> None:
        self._stopping.set()
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- fault injection ----------------------------------------------------------------
    def _target(self, name: str) -> str:
        """A short name -> the subclass's target key."""
        return name

    def _add_fault(self, target: str, code: int, description: str | None, count: int,
                   recipient: str | int | None, http_status: int = 200) -> None:
        key = target if target == "*" else self._target(target)
        self._faults.append(Fault(key, code, description, count, None if recipient is None else str(recipient),
                                  http_status))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, target: str, recipient: str | None = None, *, wildcard: bool = True) -> Fault | None:
        for fault in list(self._faults):
            if fault.target != target and not (wildcard and fault.target == "*"):
                continue
            if fault.recipient is not None and fault.recipient != recipient:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            self.stats["injected"] += 1
            return fault
        return None

    def set_outage(self, seconds: float | None, mode: str = "5xx", *, status: int = 502,
                   targets: Iterable[str] | str | None = None) -> None:
        """Answer `status` with an nginx page ("5xx") or drop the connection ("disconnect")
        for `seconds` (None/0 clears). `targets`: names, "all", or None = the fake's default."""
        if mode not in ("5xx", "disconnect"):
            raise ValueError(f"unknown outage mode {mode!r}")
        if not seconds:
            self._outage_until = None
            return
        self._outage_until = time.monotonic() + seconds
        self._outage_mode, self._outage_status = mode, status
        if targets is None:
            self._outage_targets = None
        elif targets == "all":
            self._outage_targets = frozenset({"*"})
        else:
            names = [targets] if isinstance(targets, str) else list(targets)
            self._outage_targets = frozenset(self._target(t) for t in names)

    def clear_outage(self) -> None:
        self._outage_until = None

    @property
    def outage_active(self) -> bool:
        return self._outage_until is not None and time.monotonic() < self._outage_until

    def _outage_by_default(self, target: str) -> bool:
        return True

    def _apply_outage(self, target: str) -> None:
        if not self.outage_active:
            return
        targets = self._outage_targets
        applies = self._outage_by_default(target) if targets is None else ("*" in targets or target in targets)
        if not applies:
            return
        self.stats["outage"] += 1
        if self._outage_mode == "disconnect":
            raise DropConnection()
        raise RawReply(self._outage_status, nginx_page(self._outage_status))

    def enforce_rate_limit(self, per_second: int, targets: Iterable[str]) -> None:
        """Refuse calls to `targets` beyond `per_second` in any sliding second (the answer is the
        fake's rate-limit error); refused calls do not count against the window."""
        self._rate_limit = RateLimit(per_second, frozenset(self._target(t) for t in targets))

    def disable_rate_limit(self) -> None:
        self._rate_limit = None

    def _rate_limited(self, target: str) -> bool:
        limit = self._rate_limit
        if limit is None or target not in limit.targets or not limit.exceeded(time.monotonic()):
            return False
        self.stats["rate_limited"] += 1
        return True

    def delay(self, target: str, seconds: float) -> None:
        """Answer calls to `target` only after `seconds` (a slow Zalo host); 0 clears."""
        if seconds:
            self._delays[self._target(target)] = seconds
        else:
            self._delays.pop(self._target(target), None)

    def holding(self, target: str) -> int:
        """How many calls to `target` are being held by `delay` right now."""
        return self.held[self._target(target)]

    async def _apply_delay(self, target: str) -> None:
        if target not in self._delays:
            return
        self.held[target] += 1
        try:
            await self._sleep(self._delays[target])
        finally:
            self.held[target] -= 1

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- waiting for sends ------------------------------------------------------------------
    def _notify_sent(self) -> None:
        event, self._sent_event = self._sent_event, asyncio.Event()
        event.set()

    async def _wait_for(self, what: int | Callable[[Any], bool], timeout: float,  # noqa: ASYNC109
                        belongs: Callable[[Any], bool], describe: Callable[[int, int], str]) -> list[Any]:
        """Wait until `sent` holds `what` records (int) or one matching `what` (predicate)."""
        return await wait_for_records(lambda: self.sent, lambda: self._sent_event, what, timeout,
                                      belongs, describe)


async def wait_for_records(records: Callable[[], list[Any]], changed: Callable[[], asyncio.Event],
                           what: int | Callable[[Any], bool], timeout: float,  # noqa: ASYNC109
                           belongs: Callable[[Any], bool], describe: Callable[[int, int], str]) -> list[Any]:
    """Wait until `records()` holds `what` items (int) or one matching `what` (predicate) among
    those that `belongs`; `changed()` is the event the fake sets (and replaces) on each new record."""
    if callable(what):
        predicate, need = what, 1
    else:
        predicate, need = (lambda _s: True), int(what)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = changed()
        found = [s for s in records() if belongs(s) and predicate(s)]
        if len(found) >= need:
            return found
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(describe(need, len(found)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), remaining)


def abort(request: web.Request) -> None:
    """Drop the client's connection (DropConnection) from inside a handler."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError
