"""Channels: each translates one platform to/from handlers' plain messages; the contract they
all follow is bot/channels/base.py's `Channel`."""

from bot.channels.registry import Channels

__all__ = ["Channels"]
