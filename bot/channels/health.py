"""Each channel's live health from what its sends, start-up and API checks report.

Sends are reported by `Channel.deliver` (bot/channels/base.py), start-up and API checks by
bot/ops/health.py; /healthz shows the result.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def short_reason(text: str) -> str:
    """One line for /healthz and logs (PTB appends the whole HTML error page to some errors)."""
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text.split(". Parsing the server response")[0][:160]


# A failing start or API check means the platform cannot be reached at all ("down"); failing
# sends while it answers otherwise mean "degraded". Both make /healthz say "degraded".
DOWN_SOURCES = ("start", "check")


class ChannelHealth:
    """Open problems per channel and source ("start", "check", "send"); none = healthy."""

    def __init__(self) -> None:
        self._problems: dict[str, dict[str, str]] = {}

    def report(self, channel: str, source: str, problem: str | None) -> None:
        """Record `problem` (None = that source works again) and log changes of state."""
        before = self.state(channel)
        problems = self._problems.setdefault(channel, {})
        if problem is None:
            problems.pop(source, None)
        else:
            problems[source] = short_reason(problem)
        after = self.state(channel)
        if after != before:
            if after is None:
                log.info("channel %s: healthy again", channel)
            else:
                log.warning("channel %s: %s", channel, after)

    def state(self, channel: str) -> str | None:
        """'down: why', 'degraded: why' or None when nothing is wrong."""
        problems = self._problems.get(channel) or {}
        for source in DOWN_SOURCES:
            if source in problems:
                return f"down: {problems[source]}"
        if "send" in problems:
            return f"degraded: {problems['send']}"
        return None

    def merged(self, configured: dict[str, str]) -> dict[str, str]:
        """The configured states ("on", "off: why", adapters' own reports) with live problems on top."""
        states = dict(configured)
        for channel in self._problems:
            live = self.state(channel)
            if live is not None and not states.get(channel, "on").startswith("off"):
                states[channel] = live
        return states
