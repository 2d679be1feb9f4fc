"""Per-key asyncio locks (one per chat) that do not pile up.

Every adapter handles one chat's messages in order; a plain defaultdict of locks would keep
one lock for every chat that ever wrote, for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class KeyedLocks:
    """One asyncio.Lock per key (a chat), forgotten when nobody holds or waits for it, so the
    map does not grow with every chat that ever wrote."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]
