"""Builds the pieces one process needs from settings (shared by service, CLI and tests)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from bot.campaigns.engine import CampaignRunner
from bot.campaigns.rules import MessagingWindowRule
from bot.campaigns.service import CampaignService
from bot.channels.base import Channel, ChannelContext, Off
from bot.channels.registry import Channels
from bot.channels.telegram import TelegramChannel
from bot.channels.web import WebChannel
from bot.channels.zalo_bot import ZaloBotChannel
from bot.channels.zalo_oa import ZaloOAChannel
from bot.handoff.service import HandoffService
from bot.matching.live import LiveKnowledge
from bot.matching.matcher import Thresholds
from bot.settings import ConfigurationError, Settings
from bot.storage.db import AsyncEngine, ping
from bot.storage.store import Store, open_store
from handlers.conversation import Answerer, Conversation, ConversationConfig
from knowledge.loader import KnowledgeError, load_knowledge_base

log = logging.getLogger(__name__)


def thresholds_from(settings: Settings) -> Thresholds:
    return Thresholds(settings.match_answer_score, settings.match_min_gap, settings.match_suggest_score)


def placeholders_from(settings: Settings) -> dict[str, str]:
    """Values for the {placeholders} answers may use (knowledge.loader.PLACEHOLDERS)."""
    return {"retention_days": str(settings.log_retention_days)}


def load_live_knowledge(settings: Settings) -> LiveKnowledge:
    """Load and index the knowledge base, or fail naming the file and entry at fault."""
    try:
        kb = load_knowledge_base(settings.knowledge_dir, settings.knowledge_local_file)
    except KnowledgeError as exc:
        at_fault = [f"KNOWLEDGE_LOCAL_FILE={settings.knowledge_local_file}"] if any(
            p.local for p in exc.problems) else []
        if not all(p.local for p in exc.problems):
            at_fault.insert(0, f"KNOWLEDGE_DIR={settings.knowledge_dir}")
        raise ConfigurationError(
            f"{' and '.join(at_fault)}: {exc}. Run `python -m bot kb validate` for the full list."
        ) from None
    try:
        return LiveKnowledge(kb, thresholds_from(settings), placeholders=placeholders_from(settings))
    except ValueError as exc:  # unreadable lexicon file
        raise ConfigurationError(str(exc)) from None


# Every channel the bot has, in the order they are built and started (bot/channels/base.py
# says how to add one).
CHANNELS: tuple[type[Channel], ...] = (WebChannel, TelegramChannel, ZaloOAChannel, ZaloBotChannel)

NOT_STARTED = "off: configured, but this process has no database and starts no channel"


def configured_channel_states(settings: Settings) -> dict[str, str]:
    """Each channel's state from settings alone: why it is off, or that it could run.

    `Runtime.open` replaces "could run" with what actually happened when the channel starts;
    `Runtime.build` (no database, e.g. tests of /api/ask) reports it as not started.
    """
    states = {}
    for channel in CHANNELS:
        reason = channel.off_reason(settings)
        states[channel.name] = Off(reason).state if reason else "on" if channel.always_on else NOT_STARTED
    return states


def campaign_rules(settings: Settings, channels: Channels) -> dict[str, MessagingWindowRule]:
    """Per-channel campaign limits: Zalo OA's messaging window and monthly quota."""
    if ZaloOAChannel.name not in channels.adapters:
        return {}
    return {ZaloOAChannel.name: MessagingWindowRule(
        ZaloOAChannel.name, settings.zalo_oa_campaign_window_hours, settings.zalo_oa_campaign_monthly_quota)}


def conversation_config(settings: Settings) -> ConversationConfig:
    return ConversationConfig(
        wards=settings.ward_names, team_chats=settings.team_chat_ids,
        flood_limit_per_minute=settings.flood_limit_per_minute, retention_days=settings.log_retention_days,
        delivery_lease_seconds=settings.handoff_delivery_lease_seconds,
    )


@dataclass
class Runtime:
    """A process's pieces without a database (`Runtime.build`): the knowledge base and the
    storage-free answering core, as POST /api/ask and the knowledge tests use them; no
    channel runs. A serving process has a `ServiceRuntime` (`Runtime.open`)."""

    settings: Settings
    knowledge: LiveKnowledge
    preview: Answerer  # storage-free answers for POST /api/ask (nothing logged)
    channels: Channels = field(default_factory=Channels)
    channel_states: dict[str, str] = field(default_factory=dict)  # name -> "on" or "off: why"

    @property
    def telegram(self) -> TelegramChannel | None:
        """The Telegram channel when it runs in this process (tests and benches look at it)."""
        channel = self.channels.adapters.get(TelegramChannel.name)
        return channel if isinstance(channel, TelegramChannel) else None

    def report_channel_state(self, channel: str, state: str) -> None:
        """A channel's own report ("on", "down: why"), shown by /healthz under live problems."""
        self.channel_states[channel] = state

    @classmethod
    def build(cls, settings: Settings, knowledge: LiveKnowledge | None = None) -> Runtime:
        """Knowledge and the storage-free core only (no database): for `/api/ask` and tests.
        `knowledge`: already loaded (tests that start many services index it once)."""
        knowledge = knowledge or load_live_knowledge(settings)
        return cls(settings, knowledge, Answerer(knowledge, conversation_config(settings)),
                   channel_states=configured_channel_states(settings))

    @classmethod
    async def open(cls, settings: Settings, knowledge: LiveKnowledge | None = None) -> ServiceRuntime:
        """Everything a serving process needs: database, conversation with storage, channels.
        A database that cannot be opened stops start-up (`open_store`): a serving process
        never runs without one. `knowledge`: already loaded, as in `build`."""
        knowledge = knowledge or load_live_knowledge(settings)
        engine, store = await open_store(settings)
        channels = Channels()
        campaigns = CampaignService(store.sessions, settings.campaign_approval_threshold, settings.ward_names)
        config = conversation_config(settings)
        handoffs = HandoffService(store, channels, config)
        conversation = Conversation(knowledge, store, channels, config, campaigns, handoffs)
        campaign_runner = CampaignRunner(
            store.sessions, channels, on_unreachable=store.users.mark_unreachable,
            lease=dt.timedelta(seconds=settings.campaign_lease_seconds),
            approval_threshold=settings.campaign_approval_threshold)
        runtime = ServiceRuntime(settings, knowledge, Answerer(knowledge, config), channels, store=store,
                                 engine=engine, conversation=conversation, campaigns=campaigns,
                                 campaign_runner=campaign_runner, handoffs=handoffs)
        await store.staff.ensure_admins(settings.admin_ids)
        context = ChannelContext(store, conversation.handle, conversation.flood.check, runtime.report_channel_state)
        for channel_class in CHANNELS:
            channel = channel_class.from_settings(settings, context)
            if isinstance(channel, Off):
                runtime.channel_states[channel_class.name] = channel.state
                continue
            channels.register(channel)
            runtime.channel_states[channel.name] = "on"
        campaign_runner.scheduler.rules.update(campaign_rules(settings, channels))
        campaign_runner.wire_pacers()  # 429 pauses and the shared send budget
        return runtime

    async def database_state(self) -> str:
        """'ok', 'off' (no database in this process) or 'down: <why>'."""
        return "off"

    async def start_channels(self) -> None:
        for name, adapter in self.channels.adapters.items():
            try:
                await adapter.start()
            except Exception as exc:
                log.error("channel %s failed to start: %s", name, exc)
                self.channel_states[name] = f"down: {exc}"

    async def close(self) -> None:
        for adapter in self.channels.adapters.values():
            try:
                await adapter.stop()
            except Exception:
                log.warning("channel %s did not stop cleanly", adapter.name, exc_info=True)


@dataclass(kw_only=True)
class ServiceRuntime(Runtime):
    """A serving process (`Runtime.open`): the database, the conversation with storage that
    the channels call, the services that share that database, and the channels."""

    store: Store
    engine: AsyncEngine
    conversation: Conversation
    campaigns: CampaignService
    campaign_runner: CampaignRunner
    handoffs: HandoffService  # hand-off threads: chat, dashboard and jobs share it

    async def database_state(self) -> str:
        if not await self.store.events.writes_work():  # locked, full, gone
            return f"down: writes failing ({self.store.outage.reason})"
        try:
            async with asyncio.timeout(3):
                await ping(self.engine)
        except Exception as exc:
            return f"down: {type(exc).__name__}"
        return "ok"

    async def close(self) -> None:
        await super().close()
        self.store.group.close()  # the SQLite connection of the group-commit thread
        await self.engine.dispose()
