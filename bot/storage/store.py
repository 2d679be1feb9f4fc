"""The database by subject, behind one object that the composition root builds once.

All SQL lives in bot/storage/; everything else calls these repositories. Each method is one
short transaction, so a failure never leaves half a change behind.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.settings import ConfigurationError, Settings
from bot.storage import retention
from bot.storage.audit import AuditTrail
from bot.storage.db import create_engine, migrate, session_factory
from bot.storage.drafts import Drafts
from bot.storage.group_commit import GroupCommit
from bot.storage.handoffs import HandoffInfo, Handoffs
from bot.storage.inbound import InboundEvents, RecentKeys
from bot.storage.kb_status import KbStatusQueries
from bot.storage.pending import Outage
from bot.storage.questions import Questions
from bot.storage.staff import ROLES, StaffAccounts
from bot.storage.subscriptions import Subscriptions
from bot.storage.users import UserInfo, Users

__all__ = ["ROLES", "HandoffInfo", "Store", "UserInfo"]


class Store:
    """`store.users`, `store.questions`, `store.handoffs`, ...: one repository per subject.

    The facade only builds the repositories on one engine and holds what they share (the group
    commit, the outage flag); callers call the repositories."""

    def __init__(self, engine: AsyncEngine, secret: str):
        self.engine = engine
        self.sessions: async_sessionmaker = session_factory(engine)
        self.outage = Outage()  # set while the database is unreachable (bot/storage/pending.py)
        self.recent_events = RecentKeys()
        self.group = GroupCommit(engine)  # the per-message writes, committed in groups

        self.events = InboundEvents(self.sessions, self.group, self.outage, self.recent_events)
        self.users = Users(self.sessions, self.group, self.events, secret)
        self.questions = Questions(self.sessions, self.group)
        self.subscriptions = Subscriptions(self.sessions)
        self.handoffs = Handoffs(self.sessions)
        self.drafts = Drafts(self.sessions)
        self.staff = StaffAccounts(self.sessions)
        self.audit_trail = AuditTrail(self.sessions)
        self.kb_status = KbStatusQueries(self.sessions)

    async def claim_inbound_event(self, key: str) -> bool:
        """True the first time `key` is seen by any process; False for a duplicate (platform retry).
        While the database is unreachable only this process's memory of recent keys decides."""
        fresh, _ = await self.events.claim(key)
        return fresh

    async def purge(self, older_than: dt.timedelta) -> dict[str, int]:
        """Delete what is older than the retention period (bot/storage/retention.py)."""
        return await retention.purge(self.sessions, older_than)


async def open_store(settings: Settings) -> tuple[AsyncEngine, Store]:
    """Connect and migrate; a database that cannot be reached stops start-up with a clear message."""
    engine = create_engine(settings.database_url)
    # PostgreSQL statements time out (bot.storage.db.PG_COMMAND_TIMEOUT_S); a migration may rewrite
    # a big table, so it runs on its own engine without that limit.
    postgres = engine.dialect.name == "postgresql"
    migrating = create_engine(settings.database_url, command_timeout=None) if postgres else engine
    try:
        await migrate(migrating)
    except Exception as exc:
        await engine.dispose()
        raise ConfigurationError(f"DATABASE_URL: cannot open or migrate the database: {exc}") from None
    finally:
        if migrating is not engine:
            await migrating.dispose()
    return engine, Store(engine, settings.resolved_user_key_secret())
