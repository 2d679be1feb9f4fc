"""Rotating OAuth token pairs (the Zalo OA's) kept in `channel_tokens`, shared by all processes.

Zalo refresh tokens are single-use: whoever spends one must store the pair it gets back, or
the channel stays dead until someone authorises the app again. Hence:

* one process at a time refreshes. It takes a short lease (bot/storage/locks.py) that is
  committed before the OAuth call, so no database lock is held while Zalo answers (on SQLite
  a held write lock would stall every webhook for up to the HTTP timeout);
* the new pair replaces the old one with a compare-and-swap on the refresh token it was
  obtained with, committed before the new access token is used;
* a process that finds the stored pair changed (another process refreshed, or new tokens
  were configured) adopts it instead of refreshing again;
* when Zalo refuses the refresh, or refuses a token it has just issued, the OAuth host is
  left alone for HOLD (every send would otherwise ask again) until the stored pair changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.storage import locks
from bot.storage.models import ChannelToken, utcnow

log = logging.getLogger(__name__)

REFRESH_AT = 0.8  # refresh when this share of the token's lifetime has passed
LEASE = dt.timedelta(seconds=60)  # longer than one OAuth call (15 s timeout)
LEASE_POLL = 0.2  # seconds between looks while another process holds the lease
HOLD = dt.timedelta(minutes=5)
MAX_SLEEP = 3600.0

# refresh token -> (access token, new refresh token, lifetime in seconds); raises TokenError
RefreshCall = Callable[[str], Awaitable[tuple[str, str, int]]]


class TokenError(Exception):
    """No usable access token. `permanent`: Zalo refused (retrying now is pointless);
    otherwise the OAuth host was unreachable or another process is still refreshing."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


def _fingerprint(access: str, refresh: str) -> str:
    return hashlib.sha256(f"{access}\n{refresh}".encode()).hexdigest()


class RotatingTokens:
    """One channel's access/refresh pair: seeded from settings, then rotated and stored.

    The stored pair wins over the settings once it has been rotated; a different pair
    configured later (after re-authorising the app) replaces it once.
    """

    def __init__(self, sessions, name: str, refresh_call: RefreshCall, *, seed_access: str = "",
                 seed_refresh: str = "", seed_lifetime: dt.timedelta = dt.timedelta(hours=1)):
        self.sessions = sessions
        self.name = name[:96]
        self._refresh_call = refresh_call
        self._seed = (seed_access, seed_refresh)
        self._seed_lifetime = seed_lifetime
        self.access_token = ""
        self.expires_at: dt.datetime | None = None
        self.refreshed_at: dt.datetime | None = None
        self.refreshes = 0  # successful refreshes by this instance (logs, tests)
        self.hold_reason = ""
        self._hold_until = 0.0
        self._loaded = False
        self._lock = asyncio.Lock()
        self._lease = f"token:{self.name}"[:64]
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]

    # --- reading ------------------------------------------------------------------------
    def _adopt(self, row: ChannelToken) -> None:
        if row.access_token != self.access_token:
            self.hold_reason, self._hold_until = "", 0.0  # a new pair deserves a new try
        self.access_token = row.access_token
        self.expires_at = row.expires_at
        self.refreshed_at = row.refreshed_at
        self._loaded = True

    async def _read(self) -> ChannelToken:
        async with self.sessions() as s:
            row = await s.get(ChannelToken, self.name)
        if row is None:
            raise TokenError("no token stored or configured", permanent=True)
        return row

    async def load(self) -> None:
        """Adopt the stored pair; seed it from the settings on first start or when they changed."""
        access, refresh = self._seed
        seed = _fingerprint(access, refresh) if (access or refresh) else None
        now = utcnow()
        for attempt in range(2):
            try:
                async with self.sessions.begin() as s:
                    row = await s.get(ChannelToken, self.name, with_for_update=True)
                    if seed is not None and (row is None or row.seeded_from != seed):
                        if row is None:
                            row = ChannelToken(name=self.name)
                            s.add(row)
                        else:
                            log.info("%s: newly configured tokens replace the stored pair", self.name)
                        row.access_token, row.refresh_token, row.seeded_from = access, refresh, seed
                        row.refreshed_at = now
                        # Without an access token it is due at once.
                        row.expires_at = now + self._seed_lifetime if access else now
                    if row is None:
                        raise TokenError("no token stored or configured", permanent=True)
                    await s.flush()
                    self._adopt(row)
                return
            except IntegrityError:  # another process seeded the row first: read theirs
                if attempt:
                    raise

    # --- timing -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded

    def _expired(self) -> bool:
        return self.expires_at is not None and utcnow() >= self.expires_at

    def due_at(self) -> dt.datetime | None:
        """When to refresh: after REFRESH_AT of the token's lifetime."""
        if self.expires_at is None or self.refreshed_at is None:
            return None
        return self.refreshed_at + (self.expires_at - self.refreshed_at) * REFRESH_AT

    def seconds_until_due(self) -> float:
        due = self.due_at()
        return MAX_SLEEP if due is None else (due - utcnow()).total_seconds()

    def hold(self, reason: str) -> None:
        """Stop asking the OAuth host for HOLD (Zalo refused us); sends fail fast meanwhile."""
        self.hold_reason = reason
        self._hold_until = time.monotonic() + HOLD.total_seconds()
        log.error("%s: %s; not refreshing for %d min unless new tokens are stored",
                  self.name, reason, HOLD.total_seconds() // 60)

    def _held(self) -> bool:
        return time.monotonic() < self._hold_until

    # --- using ----------------------------------------------------------------------------
    async def current(self) -> str:
        """The access token to call the API with, refreshed first when it has expired."""
        if not self._loaded:
            await self.load()
        if not self.access_token or self._expired():
            return await self.refresh(rejected=self.access_token)
        return self.access_token

    async def refresh(self, rejected: str | None = None) -> str:
        """A new access token from the stored refresh token; returns the token to use.

        `rejected`: the token the API just refused (None = scheduled refresh, done only when
        due). Another process's newer pair is adopted rather than refreshed again.
        """
        async with self._lock:
            known = rejected if rejected is not None else self.access_token
            waited_until = time.monotonic() + LEASE.total_seconds()
            while True:
                row = await self._read()
                if row.access_token and row.access_token != known:
                    self._adopt(row)  # another process (or configuration) replaced the pair
                    return row.access_token
                if rejected is None:
                    self._adopt(row)
                    due = self.due_at()
                    if due is None or utcnow() < due:
                        return row.access_token
                if self._held():
                    raise TokenError(self.hold_reason, permanent=True)
                if await locks.acquire(self.sessions, self._lease, self._owner, LEASE):
                    break
                if time.monotonic() > waited_until:
                    raise TokenError("another process has been refreshing the token for too long")
                await asyncio.sleep(LEASE_POLL)
            try:
                return await self._refresh_leased(known)
            finally:
                await locks.release(self.sessions, self._lease, self._owner)

    async def _refresh_leased(self, known: str) -> str:
        row = await self._read()  # the previous lease holder may have just stored a pair
        if row.access_token and row.access_token != known:
            self._adopt(row)
            return row.access_token
        if not row.refresh_token:
            self.hold("the access token was refused and no refresh token is stored")
            raise TokenError(self.hold_reason, permanent=True)
        spent = row.refresh_token
        try:
            access, refresh, lifetime = await self._refresh_call(spent)
        except TokenError as exc:
            if exc.permanent:
                self.hold(str(exc))
            raise
        now = utcnow()
        expires = now + dt.timedelta(seconds=lifetime)
        async with self.sessions.begin() as s:
            swapped = await s.execute(
                update(ChannelToken).where(ChannelToken.name == self.name, ChannelToken.refresh_token == spent)
                .values(access_token=access, refresh_token=refresh, refreshed_at=now, expires_at=expires))
        # Committed: the new pair survives a crash from here on; only now is it used.
        if not swapped.rowcount:  # new tokens were configured meanwhile: theirs win
            log.warning("%s: the stored pair changed during a refresh; using the stored one", self.name)
            self._adopt(await self._read())
            return self.access_token
        self.access_token, self.refreshed_at, self.expires_at = access, now, expires
        self.refreshes += 1
        log.info("%s: access token refreshed (valid %d s)", self.name, lifetime)
        return access


async def store_authorized_pair(sessions, name: str, access: str, refresh: str, lifetime: int, *,
                                seed_access: str = "", seed_refresh: str = "") -> None:
    """Store the first pair of a new authorisation (`python -m bot zalo authorize`).

    It replaces whatever is stored. `seeded_from` is set to the fingerprint of the pair in the
    settings (if any), so `RotatingTokens.load` does not put that older pair back; processes
    running now adopt the new pair when their token is refused or due (`refresh`)."""
    name = name[:96]
    seed = _fingerprint(seed_access, seed_refresh) if (seed_access or seed_refresh) else None
    now = utcnow()
    values = dict(access_token=access, refresh_token=refresh, refreshed_at=now,
                  expires_at=now + dt.timedelta(seconds=lifetime), seeded_from=seed)
    async with sessions.begin() as s:
        row = await s.get(ChannelToken, name, with_for_update=True)
        if row is None:
            s.add(ChannelToken(name=name, **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)


async def read_access_token(database_url: str, name: str, wait: float = 10.0) -> str:
    """The access token stored for `name`, read on a short-lived engine of its own (`doctor`);
    empty when none is stored or the database cannot be read within `wait` seconds."""
    from bot.storage.db import create_engine

    engine = create_engine(database_url)
    try:
        async with asyncio.timeout(wait), engine.connect() as conn:
            token = await conn.scalar(select(ChannelToken.access_token).where(ChannelToken.name == name))
    except Exception:
        return ""
    finally:
        await engine.dispose()
    return token or ""
