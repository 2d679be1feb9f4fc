"""python-telegram-bot's HTTP transport on aiohttp instead of httpx.

Why: PTB's default `HTTPXRequest` costs about 4 ms of CPU per sendMessage here, and more
with hundreds of requests in flight; the same call through aiohttp (already our web server
and the Zalo client) costs under 1 ms, so sending stops being what limits one process
(README, Benchmarks). Behaviour is kept: the same default timeouts and connection limit as
PTB's, form-urlencoded bodies (multipart when uploading), a proxy from HTTPS_PROXY /
ALL_PROXY unless NO_PROXY names the host (read once per host: aiohttp's own `trust_env`
reads the environment and ~/.netrc in a thread on every request), and timeouts raised as `TimedOut`, other transport failures as `NetworkError`.

aiohttp has no separate write timeout: the request as a whole is bounded by the sum of the
pool, connect, write and read timeouts (unbounded when the read timeout is None, as for a
long poll that sets its own).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

FORM = "application/x-www-form-urlencoded"


def _pick(value, default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


class AiohttpRequest(BaseRequest):
    """A `telegram.request.BaseRequest` on one aiohttp session (created by `initialize`)."""

    def __init__(self, connection_pool_size: int = 256, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0):
        self.connection_pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connection_pool_size)
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                                  headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _proxy(self, url: str) -> str | None:
        parts = urlsplit(url)
        where = (parts.scheme, parts.hostname or "")
        if where not in self._proxies:
            proxies = getproxies()
            proxy = proxies.get(parts.scheme) or proxies.get("all")
            self._proxies[where] = None if not proxy or proxy_bypass(where[1]) else proxy
        return self._proxies[where]

    def _timeout(self, files: bool, read, write, connect, pool) -> aiohttp.ClientTimeout:
        read = _pick(read, self._read_timeout)
        write = _pick(write, self._media_write_timeout if files else self._write_timeout)
        connect = _pick(connect, self._connect_timeout)
        pool = _pick(pool, self._pool_timeout)
        parts = (read, write, connect, pool)
        total = None if any(p is None for p in parts) else sum(parts)  # type: ignore[arg-type]
        waiting = None if connect is None or pool is None else connect + pool
        return aiohttp.ClientTimeout(total=total, connect=waiting, sock_connect=connect, sock_read=read)

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE, write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE,
                         pool_timeout=BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data and request_data.contains_files else None
        headers = {}
        body: bytes | aiohttp.FormData | None = None
        if files:
            body = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():  # type: ignore[union-attr]
                body.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                body.add_field(name, content, filename=filename, content_type=mimetype)
        elif request_data is not None and request_data.parameters:
            body = urlencode(request_data.json_parameters).encode()
            headers["Content-Type"] = FORM
        timeout = self._timeout(bool(files), read_timeout, write_timeout, connect_timeout, pool_timeout)
        try:
            async with self._session.request(method, url, data=body, headers=headers, timeout=timeout,
                                             proxy=self._proxy(url)) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's timeouts derive from these
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
