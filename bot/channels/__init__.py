"""Channel adapters: each translates one platform to/from handlers' plain messages."""

from bot.channels.registry import Channels

__all__ = ["Channels"]
