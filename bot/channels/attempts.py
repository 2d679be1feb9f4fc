"""The wait before each API call of one delivery attempt, with a hook after the first wait.

The campaign engine marks a delivery "in flight" (state `sending`) in that hook: only once
the pacer has let the attempt go, so a crash leaves `uncertain` only the deliveries whose
first API call may really have been made, not those still waiting for their turn. A hook
that takes longer than HOOK_SLACK (a busy database) makes the call wait for a new turn, so
the writes never bunch sends above the rate (two-process test: busiest second 45 at 25/s
without this); a crash during that second wait leaves one unsent row uncertain.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.contracts.delivery import BeforeSend

HOOK_SLACK = 0.1  # seconds a before_send hook may take before the call waits for a new turn


def paced(pacer, chat_id: str, broadcast: bool, before_send: BeforeSend | None = None) -> Callable[[], Awaitable[None]]:
    """An awaitable factory: wait for the pacer (broadcast or live; None: a channel without
    a rate, such as the web outbox), then, the first time only, run `before_send` (which may
    raise to stop the attempt before anything is sent)."""
    pending = [before_send] if before_send is not None else []

    async def wait() -> None:
        if pacer is None:
            return
        if broadcast:
            await pacer.broadcast(chat_id)
        else:
            await pacer.live(chat_id)  # replies to one chat come in short bursts only

    async def pace() -> None:
        await wait()
        if pending:
            started = time.monotonic()
            await pending.pop()()
            if time.monotonic() - started > HOOK_SLACK:
                # The hook was slow (a busy database): sending now would bunch this message with
                # the ones whose turn came meanwhile and exceed the rate. Take a new turn.
                await wait()

    return pace
