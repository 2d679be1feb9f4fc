"""The contracts every layer shares: plain messages and replies, typed button payloads and
dialogue states, the menus and citizen-facing texts, and how a delivery can fail.

The bottom layer: these modules import nothing of the project but leaves (bot.privacy), so
storage, services, the conversation and the channels can all use them (ARCHITECTURE.md)."""
