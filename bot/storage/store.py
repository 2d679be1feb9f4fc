"""The database by subject, behind one object that the composition root builds once.

All SQL lives in bot/storage/; everything else calls these repositories. Each method is one
short transaction, so a failure never leaves half a change behind.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.storage import retention
from bot.storage.audit import AuditTrail
from bot.storage.db import session_factory
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

    New code calls the repositories. The flat names set at the end of `__init__`
    (`store.touch_user`, `store.close_handoff`, ...) are the same methods under the names older
    call sites use, kept so callers can move over gradually."""

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

        # Older call sites' names (see the class docstring).
        users, questions, handoffs = self.users, self.questions, self.handoffs
        self.key_for = users.key_for
        self.touch_user = users.touch
        self.arrive = users.arrive
        self.get_user = users.get
        self.update_user = users.update
        self.mark_unreachable = users.mark_unreachable
        self.delete_user_data = users.delete_data
        self.writes_work = self.events.writes_work
        self.release_inbound_event = self.events.release
        self.log_question = questions.log
        self.set_outcome = questions.set_outcome
        self.question_for_handoff = questions.for_handoff
        self.add_feedback = questions.add_feedback
        self.counts_since = questions.counts_since
        self.recent_unanswered = questions.recent_unanswered
        self.get_subscription = self.subscriptions.get
        self.save_subscription = self.subscriptions.save
        self.open_handoff = handoffs.open
        self.open_handoff_of = handoffs.latest_open_of
        self.detach_handoff_from_team = handoffs.detach_from_team
        self.get_handoff = handoffs.get
        self.set_handoff_thread = handoffs.set_thread
        self.add_handoff_message = handoffs.add_message
        self.mark_delivered = handoffs.mark_delivered
        self.mark_undeliverable = handoffs.mark_undeliverable
        self.claim_undelivered_team_replies = handoffs.claim_undelivered_team_replies
        self.find_handoff_by_group_message = handoffs.find_by_group_message
        self.add_team_post = handoffs.add_team_post
        self.first_group_message_id = handoffs.first_group_message_id
        self.find_handoff_by_thread = handoffs.find_by_thread
        self.mark_handoff_answered = handoffs.mark_answered
        self.close_handoff = handoffs.close
        self.handoffs_to_remind = handoffs.to_remind
        self.idle_handoffs = handoffs.idle_ids
        self.first_citizen_text = handoffs.first_citizen_text
        self.last_team_text = handoffs.last_team_text
        self.add_draft = self.drafts.add
        self.staff_role = self.staff.role
        self.set_staff = self.staff.set
        self.remove_staff = self.staff.remove
        self.ensure_admins = self.staff.ensure_admins
        self.audit = self.audit_trail.record

    async def claim_inbound_event(self, key: str) -> bool:
        """True the first time `key` is seen by any process; False for a duplicate (platform retry).
        While the database is unreachable only this process's memory of recent keys decides."""
        fresh, _ = await self.events.claim(key)
        return fresh

    async def purge(self, older_than: dt.timedelta) -> dict[str, int]:
        """Delete what is older than the retention period (bot/storage/retention.py)."""
        return await retention.purge(self.sessions, older_than)
