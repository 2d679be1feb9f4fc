"""Hand-off to the community team: the channel-neutral service (bot/handoff/service.py)."""
