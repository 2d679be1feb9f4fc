"""Channel-neutral send failures; each adapter translates its platform's errors into these.

The campaign engine and the live-reply path decide what to do from the type alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class SendError(Exception):
    """Base class: the message was not delivered.

    `parts_done`: parts of a multi-part reply (photo, text, quiz) delivered before the
    failure, so a retry can resume after them; adapters that send one part leave it 0.
    """

    parts_done = 0

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason


class RecipientGone(SendError):
    """Blocked the bot, deactivated, unfollowed: permanent, stop sending to them."""


class Rejected(SendError):
    """The platform refused this message (bad request): permanent for this message."""


class RateLimited(SendError):
    """Too many requests: wait `retry_after` seconds before sending anything on the channel."""

    def __init__(self, retry_after: float, reason: str = "rate limited"):
        super().__init__(reason)
        self.retry_after = retry_after


class Transient(SendError):
    """Timeouts, 5xx, network trouble: worth retrying with back-off."""


class OutsideWindow(SendError):
    """The platform's rules forbid messaging this recipient now (e.g. Zalo's reply window).

    Not permanent: the message may be sent once the recipient writes again. A hand-off
    reply hitting it stays queued and the team is told it waits for the citizen
    (bot/handoff/service.py); campaigns skip the recipient."""


class ChannelUnavailable(Exception):
    """No adapter is running for the channel a message must go to (not a SendError: nothing
    was attempted; raised by bot/channels/registry.py)."""


# A hook a delivery runs once, when the pacer lets its first API call go (the campaign sender
# marks the row in flight there: bot/channels/attempts.py says why).
BeforeSend = Callable[[], Awaitable[None]]


class NotAttempted(Exception):  # noqa: N818 - it is not an error of the channel
    """Raised by a `before_send` hook to call the attempt off before anything was sent; says
    nothing about the channel's health and is not counted as a send error."""
