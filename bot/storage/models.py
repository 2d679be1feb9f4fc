"""Database tables. Kept small: one table per thing staff or citizens care about."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class User(Base):
    """A citizen on one channel. `platform_id` (needed to reply) lives only here."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "platform_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_id: Mapped[str] = mapped_column(String(64))
    user_key: Mapped[str] = mapped_column(String(64), unique=True)
    ward: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    fallback_streak: Mapped[int] = mapped_column(Integer, default=0)
    # Conversation state between messages: "" (talking to the bot), "relay:<handoff id>",
    # "await_handoff_question".
    state: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_inbound_at: Mapped[dt.datetime | None]


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    ward: Mapped[str | None] = mapped_column(String(64), index=True)
    topics: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuestionLog(Base):
    """Every citizen question, redacted, with the bot's verdict and what happened next."""

    __tablename__ = "question_log"
    __table_args__ = (Index("ix_question_log_created", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    user_key: Mapped[str] = mapped_column(String(64), index=True)
    ward: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text, index=False)
    decision: Mapped[str] = mapped_column(String(16))
    faq_id: Mapped[str | None] = mapped_column(String(96))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    alternatives: Mapped[list[str]] = mapped_column(default=list)
    # helpful, unhelpful, picked, not_these, handoff, answered_by_person
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_faq_id: Mapped[str | None] = mapped_column(String(96))
    outcome_at: Mapped[dt.datetime | None]


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("question_log.id", ondelete="SET NULL"))
    user_key: Mapped[str] = mapped_column(String(64), index=True)
    faq_id: Mapped[str | None] = mapped_column(String(96))
    helpful: Mapped[bool] = mapped_column(Boolean)


class Handoff(Base):
    """A citizen's question handed to the ward's community team (open -> answered/closed)."""

    __tablename__ = "handoffs"
    __table_args__ = (Index("ix_handoffs_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    ward: Mapped[str | None] = mapped_column(String(64))
    team_chat_id: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("question_log.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[dt.datetime | None]


class HandoffMessage(Base):
    """Messages of a hand-off thread; `group_message_id` links team replies to the thread."""

    __tablename__ = "handoff_messages"
    __table_args__ = (Index("ix_handoff_messages_group", "team_chat_id", "group_message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    direction: Mapped[str] = mapped_column(String(16))  # citizen, team
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(128))
    team_chat_id: Mapped[str | None] = mapped_column(String(64))
    group_message_id: Mapped[int | None] = mapped_column(BigInteger)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    # While a process is delivering a team reply it holds this lease; redelivery waits for it.
    delivery_lease_until: Mapped[dt.datetime | None]
    # Why a team reply can never be delivered (citizen blocked the bot, message refused):
    # set once, and then redelivery stops trying.
    delivery_error: Mapped[str | None] = mapped_column(String(300))


class TeamPost(Base):
    """Other bot posts in a team group that belong to a thread (reminders), so a team member
    replying to one of them reaches the right citizen."""

    __tablename__ = "team_posts"

    team_chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("channel", "platform_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    channel: Mapped[str | None] = mapped_column(String(16))
    platform_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default="staff")  # admin, staff, viewer
    ward: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FaqDraft(Base):
    """Draft or local-overlay knowledge entries (dashboard): draft -> review -> published.

    `kind` "entry" is a whole entry (new, or replacing a shipped one with the same id);
    "variants" only adds `questions` to the shipped entry `entry_id`. Published rows are
    merged into the served knowledge base by every process (bot/dashboard/overlay.py).
    """

    __tablename__ = "faq_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(32))  # handoff, cluster, manual, entry
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoffs.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default="draft")  # draft, review, published, archived
    # --- added by migration 0002 (dashboard) ---
    kind: Mapped[str] = mapped_column(String(16), default="entry", server_default="entry")
    entry_id: Mapped[str | None] = mapped_column(String(96), index=True)
    category: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(200))
    questions: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    keywords: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    links: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    related: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    wards: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    entry_source: Mapped[str | None] = mapped_column(String(500))
    ward: Mapped[str | None] = mapped_column(String(64), index=True)  # owning ward (scoping)
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    published_at: Mapped[dt.datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(128))


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Campaign(Base):
    """A broadcast to subscribers ("Bình dân học vụ số" announcements, warnings, quizzes).

    States: draft -> pending_approval -> scheduled -> sending -> done, with paused,
    cancelled and expired on the side. Sending is claimed per channel, not per campaign
    (a lease in job_locks, bot/campaigns/scheduler.py); `claimed_by`/`claimed_until` are unused
    since migration 0005 and kept for old rows.
    """

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    links: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"label", "url"}]
    image_url: Mapped[str | None] = mapped_column(String(1000))
    quiz: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    segment: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"wards": [], "topics": []}
    channel: Mapped[str] = mapped_column(String(16), default="all")  # telegram, zalo, all
    state: Mapped[str] = mapped_column(String(24), default="draft")
    scheduled_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128))
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # counted when deliveries are created
    report_channel: Mapped[str | None] = mapped_column(String(16))  # where progress goes
    report_chat: Mapped[str | None] = mapped_column(String(64))
    report_message_id: Mapped[int | None] = mapped_column(BigInteger)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    uncertain: Mapped[int] = mapped_column(Integer, default=0)  # rows found in 'sending' after a crash
    # --- added by migration 0005 (campaigns) ---
    progress_at: Mapped[dt.datetime | None]  # last edit of the progress message (one process edits it)
    reported_at: Mapped[dt.datetime | None]  # final report sent (exactly one process sends it)


class Delivery(Base):
    """One (campaign, recipient) message: pending, sending, sent, failed, blocked, skipped, uncertain."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id"),
        Index("ix_deliveries_campaign_state", "campaign_id", "state"),
        Index("ix_deliveries_claim", "campaign_id", "channel", "state", "id"),
        Index("ix_deliveries_state_channel", "state", "channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # --- added by migration 0005 (campaigns) ---
    next_attempt_at: Mapped[dt.datetime | None]  # a retry waits until then (5xx, timeout, 429)
    parts_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # photo, text..., quiz


class ChannelPause(Base):
    """A 429's retry_after, written by whichever process received it, so the process that
    broadcasts on that channel pauses too (migration 0005)."""

    __tablename__ = "channel_pauses"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    paused_until: Mapped[dt.datetime]


class SendBudget(Base):
    """A channel's send schedule shared by every process (PostgreSQL), so the platform's
    bot-wide rate holds however many processes send (bot/storage/send_budget.py, migration 0011).
    Times are the database's clock, the one clock all processes share."""

    __tablename__ = "send_budgets"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    next_slot: Mapped[dt.datetime]  # the next send may not leave before this
    paused_until: Mapped[dt.datetime | None]  # a 429's retry_after, for every process


class JobLock(Base):
    """Named leases so that, with several processes, a job runs in one of them at a time."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    until: Mapped[dt.datetime]


# --- staff dashboard and web chat (migration 0002) ---------------------------------------


class StaffSession(Base):
    """A dashboard login. Only a hash of the cookie token is stored, so a leaked table is useless."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class LoginAttempt(Base):
    """Dashboard login attempts, in the database so throttling holds across processes."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_created", "username", "created_at"),
                      Index("ix_login_attempts_ip_created", "ip", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean, default=False)


class QuestionTriage(Base):
    """Staff decision about one normalised question text (keyed by its hash).

    States: drafted (an entry is being written; still listed), linked, out_of_scope and
    resolved (no longer listed; later asks in the same form are only counted).
    """

    __tablename__ = "question_triage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    normalized: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    faq_id: Mapped[str | None] = mapped_column(String(96))
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("faq_drafts.id", ondelete="SET NULL"), index=True)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # --- added by migration 0005 (dashboard): None = all wards; else that ward's questions only ---
    ward: Mapped[str | None] = mapped_column(String(64), index=True)


class WebOutbox(Base):
    """Messages for a web-chat user that arrived outside a request (team replies, notices)."""

    __tablename__ = "web_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- Zalo channels (migration 0004) ------------------------------------------------------


class ChannelToken(Base):
    """OAuth tokens of a channel (Zalo OA), in the database so a restart or another process
    keeps the current pair: Zalo refresh tokens are single-use, an old copy is worthless.

    `seeded_from` is a hash of the refresh token the row was seeded from (environment), so a
    newly configured pair replaces the stored one once, while rotated pairs are kept.
    """

    __tablename__ = "channel_tokens"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)  # e.g. "zalo_oa:<app id>"
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None]
    refreshed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    seeded_from: Mapped[str | None] = mapped_column(String(64))


class InboundEvent(Base):
    """Keys of webhook events already accepted, so platform retries are processed once,
    whichever process receives them. Generic: any channel can prefix its own keys."""

    __tablename__ = "inbound_events"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class ReplyChoices(Base):
    """The numbered choices last shown to a user on a channel without buttons (Zalo), so a
    later "2" means the same thing in any process; deleted with the user."""

    __tablename__ = "reply_choices"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- knowledge freshness (migration 0009) ------------------------------------------------


class KbEntryStatus(Base):
    """Staff's latest review of a knowledge entry and whether it is suspended, one row per id.

    Every process applies these to the knowledge it serves (bot/dashboard/overlay.py): a
    review moves the entry's `reviewed` date (and its source, when one was given) until the
    entry is exported and curated; a suspended entry is not given to citizens."""

    __tablename__ = "kb_entry_status"

    entry_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    reviewed_at: Mapped[dt.datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    review_source: Mapped[str | None] = mapped_column(String(500))
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    suspended_at: Mapped[dt.datetime | None]
    suspended_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JobMark(Base):
    """The last period a once-per-period job ran for (the weekly knowledge digest), so that
    restarts and other processes do not run it again."""

    __tablename__ = "job_marks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConversationContext(Base):
    """What the bot last answered a citizen, so a follow-up ("còn lệ phí thì sao?") is read
    against it in whichever process receives it; expires after a few minutes, deleted with the user."""

    __tablename__ = "conversation_context"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    faq_id: Mapped[str | None] = mapped_column(String(96))  # the entry last answered
    choices: Mapped[list[str]] = mapped_column(default=list)  # entry ids last offered as choices
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
