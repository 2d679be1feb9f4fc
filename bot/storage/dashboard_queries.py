"""Database reads and writes of the staff dashboard (bot/dashboard), kept apart from Store.

Every read takes a `Scope`: the period, and the ward a ward-limited staff member is
confined to, so scoping is applied in one place rather than page by page. Figures are
returned as plain rows and aggregated in Python, which keeps the SQL identical on
SQLite and PostgreSQL and lets days be counted in Vietnam time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, and_, case, cast, delete, func, or_, select, update
from sqlalchemy.orm import aliased

from bot.storage import drafts
from bot.storage.drafts import DRAFT_FIELDS
from bot.storage.models import (
    AuditLog,
    Campaign,
    Delivery,
    FaqDraft,
    Feedback,
    Handoff,
    HandoffMessage,
    LoginAttempt,
    QuestionLog,
    QuestionTriage,
    Staff,
    StaffSession,
    Subscription,
    User,
    utcnow,
)
from bot.storage.store import ROLES, Store

ROLE_RANK = {"viewer": 0, "staff": 1, "admin": 2}
UNANSWERED_OUTCOMES = ("unhelpful", "not_these")
CLOSED_TRIAGE = ("linked", "out_of_scope", "resolved")
DRAFT_STATES = ("draft", "review", "published", "archived")


LOGIN_ATTEMPT_RETENTION = dt.timedelta(days=30)  # the record of logins, good and bad


def _advisory_key(kind: str, value: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for one account or address."""
    return int.from_bytes(hashlib.sha256(f"{kind}:{value}".encode()).digest()[:8], "big", signed=True)


def text_key(normalized: str) -> str:
    """Stable key of a normalised question (texts can be long; keys are indexed)."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def campaign_ward(segment: dict | None) -> str | None:
    """The one ward a campaign is confined to, or None when it reaches several or all wards."""
    wards = (segment or {}).get("wards") or []
    return wards[0] if len(wards) == 1 else None


def triage_key(normalized: str, ward: str | None) -> str:
    """Key of a decision about a question: for all wards (ward None) or for one ward's askers."""
    return text_key(normalized) if not ward else text_key(f"{ward}\n{normalized}")


@dataclass(frozen=True)
class StaffAccount:
    id: int
    username: str
    role: str
    ward: str | None

    def can(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]

    @property
    def actor(self) -> str:
        return f"dashboard:{self.username}"


@dataclass(frozen=True)
class Scope:
    """What a page shows: [start, end) in UTC, one ward (forced for ward staff), one channel."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    ward: str | None = None
    channel: str | None = None

    def period(self, column) -> list:
        conds = []
        if self.start is not None:
            conds.append(column >= self.start)
        if self.end is not None:
            conds.append(column < self.end)
        return conds


@dataclass(frozen=True)
class QuestionRow:
    id: int
    created_at: dt.datetime
    channel: str
    ward: str | None
    text: str
    normalized: str
    decision: str
    faq_id: str | None
    score: float
    outcome: str | None
    outcome_faq_id: str | None


@dataclass(frozen=True)
class TriageRow:
    key: str
    normalized: str
    state: str
    faq_id: str | None
    draft_id: int | None
    updated_by: str | None
    updated_at: dt.datetime
    asked_since: int = 0
    asked_total: int = 0
    ward: str | None = None  # None: decided for every ward


@dataclass
class DraftRow:
    id: int
    kind: str
    state: str
    source: str
    entry_id: str | None
    category: str | None
    title: str | None
    question: str
    answer: str
    questions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    wards: list[str] = field(default_factory=list)
    entry_source: str | None = None
    ward: str | None = None
    handoff_id: int | None = None
    created_at: dt.datetime | None = None
    created_by: str | None = None
    updated_at: dt.datetime | None = None
    updated_by: str | None = None
    published_at: dt.datetime | None = None
    published_by: str | None = None


def _draft_row(row: FaqDraft) -> DraftRow:
    return DraftRow(
        id=row.id, kind=row.kind or "entry", state=row.state, source=row.source, entry_id=row.entry_id,
        category=row.category, title=row.title, question=row.question, answer=row.answer,
        questions=list(row.questions or []), keywords=list(row.keywords or []), links=list(row.links or []),
        related=list(row.related or []), wards=list(row.wards or []), entry_source=row.entry_source,
        ward=row.ward, handoff_id=row.handoff_id, created_at=row.created_at, created_by=row.created_by,
        updated_at=row.updated_at, updated_by=row.updated_by, published_at=row.published_at,
        published_by=row.published_by,
    )


@dataclass(frozen=True)
class HandoffRow:
    id: int
    ward: str | None
    state: str
    created_at: dt.datetime
    answered_at: dt.datetime | None
    answered_by: str | None
    closed_at: dt.datetime | None
    channel: str
    question: str
    last_team_text: str


@dataclass(frozen=True)
class CampaignFigures:
    id: int
    title: str
    state: str
    segment: dict
    counts: dict[str, int]  # delivery state -> messages


class DashboardQueries:
    def __init__(self, store: Store):
        self.store = store
        self.sessions = store.sessions
        self._login_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    # --- staff accounts ------------------------------------------------------------------
    async def upsert_staff(self, username: str, password_hash: str, role: str, ward: str | None,
                           telegram_id: str | None = None) -> bool:
        """Create or update a dashboard account; True when created. Links a Telegram staff row."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Staff).where(Staff.username == username))
            linked = None
            if telegram_id:
                linked = await s.scalar(select(Staff).where(Staff.channel == "telegram",
                                                            Staff.platform_id == telegram_id))
            if row is not None and linked is not None and linked.id != row.id:
                await s.delete(linked)  # the account takes over the Telegram identity
                await s.flush()
            created = row is None and linked is None
            row = row or linked or Staff()
            if row.id is not None:  # a new password, role or ward: whoever is signed in signs in again
                await s.execute(delete(StaffSession).where(StaffSession.staff_id == row.id))
            row.username, row.password_hash, row.role, row.ward, row.active = username, password_hash, role, ward, True
            if telegram_id:
                row.channel, row.platform_id = "telegram", telegram_id
            if created:
                s.add(row)
            s.add(AuditLog(actor="cli", action="staff.account", target=username,
                           detail={"role": role, "ward": ward, "telegram": telegram_id, "created": created}))
            return created

    async def set_staff_active(self, username: str, active: bool, actor: str = "cli") -> bool:
        """Disable (or re-enable) an account; its sessions end at once. False if unknown."""
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Staff).where(Staff.username == username))
            if row is None:
                return False
            row.active = active
            await s.execute(delete(StaffSession).where(StaffSession.staff_id == row.id))
            s.add(AuditLog(actor=actor, action="staff.enable" if active else "staff.disable", target=username,
                           detail={}))
            return True

    async def remove_staff(self, username: str, actor: str = "cli") -> bool:
        """Delete an account and its sessions (the audit log keeps its past actions). False if unknown."""
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Staff).where(Staff.username == username))
            if row is None:
                return False
            await s.execute(delete(StaffSession).where(StaffSession.staff_id == row.id))
            await s.delete(row)
            s.add(AuditLog(actor=actor, action="staff.remove", target=username, detail={}))
            return True

    async def login_account(self, username: str) -> tuple[StaffAccount, str] | None:
        async with self.sessions() as s:
            row = await s.scalar(select(Staff).where(Staff.username == username, Staff.active.is_(True)))
            if row is None or not row.password_hash:
                return None
            return StaffAccount(row.id, row.username or "", row.role, row.ward), row.password_hash

    # --- login sessions ------------------------------------------------------------------
    async def create_session(self, staff_id: int, token_hash: str, csrf: str, lifetime: dt.timedelta) -> None:
        now = utcnow()
        async with self.sessions.begin() as s:
            await s.execute(delete(StaffSession).where(StaffSession.expires_at < now))
            s.add(StaffSession(token_hash=token_hash, staff_id=staff_id, csrf_token=csrf, expires_at=now + lifetime))

    async def session(self, token_hash: str) -> tuple[StaffAccount, str] | None:
        """The logged-in account and its CSRF token, if the session is live and the account active."""
        async with self.sessions() as s:
            row = (await s.execute(
                select(Staff.id, Staff.username, Staff.role, Staff.ward, StaffSession.csrf_token)
                .join(StaffSession, StaffSession.staff_id == Staff.id)
                .where(StaffSession.token_hash == token_hash, StaffSession.expires_at > utcnow(),
                       Staff.active.is_(True)))).first()
            if row is None:
                return None
            return StaffAccount(row[0], row[1] or "", row[2], row[3]), row[4]

    async def end_session(self, token_hash: str) -> None:
        async with self.sessions.begin() as s:
            await s.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash))

    # --- login throttling ----------------------------------------------------------------
    async def admit_login(self, username: str, ip: str, since: dt.datetime, user_limit: int,
                          ip_limit: int) -> int | None:
        """Record a login attempt before its password is checked, if the limits still admit one.

        Returns the attempt's id (it counts as a failure until `finish_login` marks it good),
        or None when the account or the address is paused. Counting and recording are one
        step, so concurrent guesses cannot all read the same count before any is written:
        on PostgreSQL the transaction takes advisory locks on the account and the address
        (held until commit, across processes); on SQLite the insert comes first and takes
        the database's write lock, which every other admission waits for. An account's
        failures count from its last successful login within the window (successes are
        kept, not used to erase the failures before them); an address's failures are not
        reset by a success, so logging in to one's own account does not buy more guesses
        at others.
        """
        username, ip = username[:64], ip[:64]
        by_user, by_ip = await self._login_failures(username, ip, since)
        if by_user >= user_limit or by_ip >= ip_limit:
            return None  # already paused: refused without waiting for the lock (a flood stays cheap)
        # One admission per account and per address at a time in this process, waiting here
        # rather than holding pooled connections while the database lock is busy.
        async with self._login_lock(f"user:{username}"), self._login_lock(f"ip:{ip}"):
            async with self.sessions() as s:
                try:
                    if s.bind.dialect.name == "postgresql":
                        keys = sorted({_advisory_key("login-user", username), _advisory_key("login-ip", ip)})
                        for key in keys:  # a fixed order: two admissions never wait on each other in a cycle
                            await s.execute(select(func.pg_advisory_xact_lock(key)))
                    attempt = LoginAttempt(username=username, ip=ip, success=False, created_at=utcnow())
                    s.add(attempt)
                    await s.flush()  # SQLite: the first statement writes, so the write lock is taken here
                    by_user, by_ip = await self._login_failures(username, ip, since, s, attempt.id)
                    if by_user >= user_limit or by_ip >= ip_limit:
                        await s.rollback()
                        return None
                    await s.commit()
                    return attempt.id
                except BaseException:
                    await s.rollback()
                    raise

    @contextlib.asynccontextmanager
    async def _login_lock(self, key: str):
        entry = self._login_locks.setdefault(key, (asyncio.Lock(), [0]))
        entry[1][0] += 1  # users of this lock, waiting or holding: it is dropped when none is left
        try:
            async with entry[0]:
                yield
        finally:
            entry[1][0] -= 1
            if not entry[1][0]:
                del self._login_locks[key]

    async def _login_failures(self, username: str, ip: str, since: dt.datetime, s=None,
                              exclude: int | None = None) -> tuple[int, int]:
        """Failed (or still unchecked) attempts since `since`: the account's after its last
        success, the address's all."""
        if s is None:
            async with self.sessions() as fresh:
                return await self._login_failures(username, ip, since, fresh, exclude)
        last_success = (select(func.max(LoginAttempt.created_at))
                        .where(LoginAttempt.username == username, LoginAttempt.success.is_(True))
                        .scalar_subquery())
        failed = [LoginAttempt.success.is_(False), LoginAttempt.created_at >= since]
        if exclude is not None:
            failed.append(LoginAttempt.id != exclude)
        by_user = await s.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.username == username, *failed,
            or_(last_success.is_(None), LoginAttempt.created_at > last_success)))
        by_ip = await s.scalar(select(func.count()).select_from(LoginAttempt).where(LoginAttempt.ip == ip, *failed))
        return by_user or 0, by_ip or 0

    async def finish_login(self, attempt_id: int, success: bool) -> None:
        """Mark an admitted attempt good (a failure stays as admitted); prune attempts older than
        LOGIN_ATTEMPT_RETENTION."""
        async with self.sessions.begin() as s:
            if success:
                await s.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(success=True))
            await s.execute(delete(LoginAttempt).where(LoginAttempt.created_at < utcnow() - LOGIN_ATTEMPT_RETENTION))

    # --- unanswered questions and triage -------------------------------------------------
    def _question_scope(self, scope: Scope) -> list:
        conds = scope.period(QuestionLog.created_at)
        if scope.ward:
            conds.append(QuestionLog.ward == scope.ward)
        if scope.channel:
            conds.append(QuestionLog.channel == scope.channel)
        return conds

    async def unanswered(self, scope: Scope, limit: int = 5000) -> list[QuestionRow]:
        """Questions that fell back or got negative feedback, newest first."""
        unanswered = or_(QuestionLog.decision == "fallback", QuestionLog.outcome.in_(UNANSWERED_OUTCOMES))
        return await self._questions([unanswered, *self._question_scope(scope)], limit)

    async def questions(self, scope: Scope, limit: int = 100_000) -> list[QuestionRow]:
        return await self._questions(self._question_scope(scope), limit)

    async def _questions(self, conds: list, limit: int) -> list[QuestionRow]:
        async with self.sessions() as s:
            rows = await s.execute(select(
                QuestionLog.id, QuestionLog.created_at, QuestionLog.channel, QuestionLog.ward, QuestionLog.text,
                QuestionLog.normalized, QuestionLog.decision, QuestionLog.faq_id, QuestionLog.score,
                QuestionLog.outcome, QuestionLog.outcome_faq_id,
            ).where(*conds).order_by(QuestionLog.id.desc()).limit(limit))
            return [QuestionRow(*row) for row in rows]

    async def triage(self, ward: str | None = None) -> dict[str, TriageRow]:
        """Decisions keyed by triage_key(); for a ward account, those for all wards and its own."""
        query = select(QuestionTriage)
        if ward:
            query = query.where(or_(QuestionTriage.ward.is_(None), QuestionTriage.ward == ward))
        async with self.sessions() as s:
            return {r.key: TriageRow(r.key, r.normalized, r.state, r.faq_id, r.draft_id, r.updated_by, r.updated_at,
                                     ward=r.ward) for r in await s.scalars(query)}

    async def forms_in_scope(self, forms: list[str], ward: str | None) -> list[str]:
        """The given normalised forms that really were asked (in the ward, for ward staff)."""
        if not forms:
            return []
        conds = [QuestionLog.normalized.in_(forms)]
        if ward:
            conds.append(QuestionLog.ward == ward)
        async with self.sessions() as s:
            return sorted(set(await s.scalars(select(QuestionLog.normalized).where(*conds).distinct())))

    async def texts_of(self, forms: list[str], ward: str | None, limit: int = 12) -> list[str]:
        """The most frequent redacted wordings of these forms: the variants to add to an entry."""
        if not forms:
            return []
        conds = [QuestionLog.normalized.in_(forms)]
        if ward:
            conds.append(QuestionLog.ward == ward)
        async with self.sessions() as s:
            rows = await s.execute(select(QuestionLog.text, func.count()).where(*conds)
                                   .group_by(QuestionLog.text).order_by(func.count().desc()).limit(limit * 3))
            seen: dict[str, str] = {}
            for text, _n in rows:
                seen.setdefault(" ".join(text.lower().split()), " ".join(text.split()))
            return [t for t in seen.values() if t][:limit]

    async def set_triage(self, forms: list[str], state: str, actor: str, *, ward: str | None = None,
                         faq_id: str | None = None, draft_id: int | None = None) -> None:
        """Record a decision; a ward account's (ward set) covers only its ward's askers."""
        now = utcnow()
        async with self.sessions.begin() as s:
            for form in forms:
                key = triage_key(form, ward)
                row = await s.scalar(select(QuestionTriage).where(QuestionTriage.key == key))
                if row is None:
                    row = QuestionTriage(key=key, normalized=form, ward=ward or None, created_at=now)
                    s.add(row)
                row.state, row.faq_id, row.draft_id, row.updated_by, row.updated_at = (
                    state, faq_id, draft_id, actor, now)

    async def reopen(self, keys: list[str], ward: str | None) -> int:
        """Undo decisions; a ward account may only undo its own ward's."""
        conds = [QuestionTriage.key.in_(keys)]
        if ward:
            conds.append(QuestionTriage.ward == ward)
        async with self.sessions.begin() as s:
            return (await s.execute(delete(QuestionTriage).where(*conds))).rowcount

    async def resolve_drafted(self, draft_id: int, faq_id: str, actor: str, state: str = "resolved") -> None:
        """Publishing a draft closes the questions it was written for."""
        async with self.sessions.begin() as s:
            await s.execute(update(QuestionTriage).where(QuestionTriage.draft_id == draft_id).values(
                state=state, faq_id=faq_id, updated_by=actor, updated_at=utcnow()))

    async def release_drafted(self, draft_id: int) -> None:
        """An archived draft puts its questions back in the queue."""
        async with self.sessions.begin() as s:
            await s.execute(delete(QuestionTriage).where(QuestionTriage.draft_id == draft_id,
                                                         QuestionTriage.state == "drafted"))

    async def closed_triage(self, ward: str | None, limit: int = 300) -> list[TriageRow]:
        """Closed forms with how often they were asked since (the counting instead of re-queuing).

        A ward decision counts its ward's askers only. A ward account sees its own ward's
        decisions and the all-ward ones its citizens asked about, counted in its ward.
        """
        join = and_(QuestionLog.normalized == QuestionTriage.normalized,
                    or_(QuestionTriage.ward.is_(None), QuestionLog.ward == QuestionTriage.ward))
        where = [QuestionTriage.state.in_(CLOSED_TRIAGE)]
        if ward:
            join = and_(join, QuestionLog.ward == ward)
            where.append(or_(QuestionTriage.ward.is_(None), QuestionTriage.ward == ward))
        since = func.sum(case((QuestionLog.created_at > QuestionTriage.updated_at, 1), else_=0))
        query = (select(QuestionTriage, since, func.count(QuestionLog.id))
                 .outerjoin(QuestionLog, join).where(*where)
                 .group_by(QuestionTriage.id).order_by(QuestionTriage.updated_at.desc()).limit(limit))
        if ward:
            query = query.having(or_(func.count(QuestionLog.id) > 0, func.max(QuestionTriage.ward) == ward))
        async with self.sessions() as s:
            out = []
            for r, asked_since, total in await s.execute(query):
                out.append(TriageRow(r.key, r.normalized, r.state, r.faq_id, r.draft_id, r.updated_by,
                                     r.updated_at, int(asked_since or 0), int(total or 0), ward=r.ward))
            return out

    # --- knowledge overlays and drafts ---------------------------------------------------
    async def published_overlays(self) -> list[DraftRow]:
        async with self.sessions() as s:
            rows = await s.scalars(select(FaqDraft).where(FaqDraft.state == "published").order_by(FaqDraft.id))
            return [_draft_row(r) for r in rows]

    async def overlay_fingerprint(self) -> tuple:
        """Changes whenever a published overlay is added, edited or withdrawn (cheap to poll)."""
        async with self.sessions() as s:
            row = (await s.execute(select(func.count(), func.max(FaqDraft.updated_at), func.sum(FaqDraft.id))
                                   .where(FaqDraft.state == "published"))).one()
            return tuple(row)

    async def drafts(self, ward: str | None, states: tuple[str, ...] = DRAFT_STATES) -> list[DraftRow]:
        conds = [FaqDraft.state.in_(states)]
        if ward:
            conds.append(FaqDraft.ward == ward)
        async with self.sessions() as s:
            rows = await s.scalars(select(FaqDraft).where(*conds).order_by(FaqDraft.id.desc()).limit(500))
            return [_draft_row(r) for r in rows]

    async def draft(self, draft_id: int) -> DraftRow | None:
        async with self.sessions() as s:
            row = await s.get(FaqDraft, draft_id)
            return _draft_row(row) if row else None

    async def create_draft(self, actor: str, source: str, **fields: Any) -> int:
        return await drafts.add_draft(self.sessions, actor, source, **fields)

    async def update_draft(self, draft_id: int, actor: str, action: str, **fields: Any) -> None:
        unknown = set(fields) - set(DRAFT_FIELDS) - {"published_at", "published_by"}
        if unknown:
            raise ValueError(f"unknown draft fields {unknown}")
        async with self.sessions.begin() as s:
            row = await s.get(FaqDraft, draft_id)
            if row is None:
                raise LookupError(draft_id)
            for name, value in fields.items():
                setattr(row, name, value)
            if row.questions:
                row.question = row.questions[0]
            row.updated_by, row.updated_at = actor, utcnow()
            s.add(AuditLog(actor=actor, action=action, target=str(draft_id),
                           detail={"state": row.state, "entry_id": row.entry_id}))

    async def entry_ids_in_drafts(self) -> set[str]:
        async with self.sessions() as s:
            return set(await s.scalars(select(FaqDraft.entry_id).where(FaqDraft.entry_id.is_not(None))))

    # --- figures ---------------------------------------------------------------------------
    async def feedback(self, scope: Scope) -> list[tuple[dt.datetime, bool, str | None, str | None]]:
        """(time, helpful, entry id, ward) of each 👍/👎; ward from the question, else the user."""
        question = aliased(QuestionLog)
        ward = func.coalesce(question.ward, User.ward)
        conds = scope.period(Feedback.created_at)
        if scope.ward:
            conds.append(ward == scope.ward)
        if scope.channel:
            conds.append(func.coalesce(question.channel, User.channel) == scope.channel)
        async with self.sessions() as s:
            rows = await s.execute(
                select(Feedback.created_at, Feedback.helpful, Feedback.faq_id, ward)
                .outerjoin(question, question.id == Feedback.question_id)
                .outerjoin(User, User.user_key == Feedback.user_key).where(*conds))
            return [tuple(r) for r in rows]

    async def handoffs(self, scope: Scope) -> list[tuple[dt.datetime, dt.datetime | None, str, str | None]]:
        """(opened, answered, state, ward) of hand-offs opened in the period."""
        conds = scope.period(Handoff.created_at)
        if scope.ward:
            conds.append(Handoff.ward == scope.ward)
        if scope.channel:
            conds.append(User.channel == scope.channel)
        async with self.sessions() as s:
            rows = await s.execute(select(Handoff.created_at, Handoff.answered_at, Handoff.state, Handoff.ward)
                                   .join(User, User.id == Handoff.user_id).where(*conds))
            return [tuple(r) for r in rows]

    async def subscribers_by_ward(self, ward: str | None, channel: str | None = None) -> dict[str | None, int]:
        conds = [Subscription.active.is_(True), User.active.is_(True)]
        if ward:
            conds.append(Subscription.ward == ward)
        if channel:
            conds.append(User.channel == channel)
        async with self.sessions() as s:
            rows = await s.execute(select(Subscription.ward, func.count()).join(User, User.id == Subscription.user_id)
                                   .where(*conds).group_by(Subscription.ward))
            return {w: n for w, n in rows}

    async def campaign_deliveries(self, scope: Scope) -> list[tuple[str, str | None, int]]:
        """(delivery state, ward, count) of campaign messages handled in the period."""
        conds = scope.period(Delivery.updated_at)
        if scope.ward:
            conds.append(User.ward == scope.ward)
        if scope.channel:
            conds.append(Delivery.channel == scope.channel)
        async with self.sessions() as s:
            rows = await s.execute(
                select(Delivery.state, User.ward, func.count()).join(Campaign, Campaign.id == Delivery.campaign_id)
                .outerjoin(User, User.id == Delivery.user_id).where(*conds).group_by(Delivery.state, User.ward))
            return [(state, ward, n) for state, ward, n in rows]

    async def campaign_figures(self, scope: Scope) -> list[CampaignFigures]:
        """Per campaign, delivery counts by state of messages handled in the period, to the
        scope's ward and channel; most recent campaign first."""
        conds = scope.period(Delivery.updated_at)
        if scope.ward:
            conds.append(User.ward == scope.ward)
        if scope.channel:
            conds.append(Delivery.channel == scope.channel)
        counts: dict[int, dict[str, int]] = {}
        async with self.sessions() as s:
            for campaign_id, state, n in await s.execute(
                    select(Delivery.campaign_id, Delivery.state, func.count())
                    .outerjoin(User, User.id == Delivery.user_id).where(*conds)
                    .group_by(Delivery.campaign_id, Delivery.state)):
                counts.setdefault(campaign_id, {})[state] = n
            rows = await s.scalars(select(Campaign).where(Campaign.id.in_(list(counts)))) if counts else []
            return sorted((CampaignFigures(c.id, c.title, c.state, dict(c.segment or {}), counts[c.id]) for c in rows),
                          key=lambda f: -f.id)

    async def campaign_list(self, ward: str | None, limit: int = 100) -> list[tuple[Campaign, dict[str, int]]]:
        """Latest campaigns with their delivery counts; for a ward account those aimed at its ward only."""
        query = select(Campaign).order_by(Campaign.id.desc())
        if ward:  # prefiltered in SQL, checked exactly below (JSON differs between the databases)
            query = query.where(cast(Campaign.segment, Text).like(f'%"{ward}"%'))
        async with self.sessions() as s:
            rows = [c for c in await s.scalars(query if ward else query.limit(limit))
                    if not ward or campaign_ward(c.segment) == ward][:limit]
            counts: dict[int, dict[str, int]] = {c.id: {} for c in rows}
            if rows:
                for campaign_id, state, n in await s.execute(
                        select(Delivery.campaign_id, Delivery.state, func.count())
                        .where(Delivery.campaign_id.in_(list(counts))).group_by(Delivery.campaign_id, Delivery.state)):
                    counts[campaign_id][state] = n
            return [(c, counts[c.id]) for c in rows]

    async def entry_usage(self, scope: Scope) -> dict[str, dict[str, int]]:
        """Per entry: times given (answered or picked), 👍 and 👎."""
        usage: dict[str, dict[str, int]] = {}

        def bump(faq_id: str | None, key: str, n: int) -> None:
            if faq_id:
                usage.setdefault(faq_id, {"matched": 0, "up": 0, "down": 0})[key] += n

        conds = self._question_scope(scope)
        async with self.sessions() as s:
            for faq_id, n in await s.execute(select(QuestionLog.faq_id, func.count()).where(
                    QuestionLog.decision == "answer", *conds).group_by(QuestionLog.faq_id)):
                bump(faq_id, "matched", n)
            for faq_id, n in await s.execute(select(QuestionLog.outcome_faq_id, func.count()).where(
                    QuestionLog.outcome == "picked", *conds).group_by(QuestionLog.outcome_faq_id)):
                bump(faq_id, "matched", n)
        for _at, helpful, faq_id, _ward in await self.feedback(scope):
            bump(faq_id, "up" if helpful else "down", 1)
        return usage

    # --- hand-offs ---------------------------------------------------------------------------
    async def handoff_list(self, scope: Scope, state: str | None, limit: int = 200) -> list[HandoffRow]:
        first_citizen = (select(HandoffMessage.text).where(HandoffMessage.handoff_id == Handoff.id,
                                                          HandoffMessage.direction == "citizen")
                         .order_by(HandoffMessage.id).limit(1).scalar_subquery())
        last_team = (select(HandoffMessage.text).where(HandoffMessage.handoff_id == Handoff.id,
                                                      HandoffMessage.direction == "team")
                     .order_by(HandoffMessage.id.desc()).limit(1).scalar_subquery())
        question = (select(QuestionLog.text).where(QuestionLog.id == Handoff.question_id).scalar_subquery())
        conds = scope.period(Handoff.created_at)
        if scope.ward:
            conds.append(Handoff.ward == scope.ward)
        if scope.channel:
            conds.append(User.channel == scope.channel)
        if state:
            conds.append(Handoff.state == state)
        async with self.sessions() as s:
            rows = await s.execute(
                select(Handoff.id, Handoff.ward, Handoff.state, Handoff.created_at, Handoff.answered_at,
                       Handoff.answered_by, Handoff.closed_at, User.channel,
                       func.coalesce(question, first_citizen), last_team)
                .join(User, User.id == Handoff.user_id).where(*conds).order_by(Handoff.id.desc()).limit(limit))
            return [HandoffRow(*r[:8], r[8] or "", r[9] or "") for r in rows]

    async def handoff_messages(self, handoff_id: int) -> list[tuple[dt.datetime, str, str, str | None]]:
        async with self.sessions() as s:
            rows = await s.execute(select(HandoffMessage.created_at, HandoffMessage.direction, HandoffMessage.text,
                                          HandoffMessage.author).where(HandoffMessage.handoff_id == handoff_id)
                                   .order_by(HandoffMessage.id))
            return [tuple(r) for r in rows]

    # --- audit -------------------------------------------------------------------------------
    async def audit_log(self, ward: str | None = None, limit: int = 300) -> list[AuditLog]:
        """Latest staff actions; for a ward-limited admin only those of that ward's staff."""
        query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        async with self.sessions() as s:
            if ward:
                actors: set[str] = set()
                for username, channel, platform_id in await s.execute(
                        select(Staff.username, Staff.channel, Staff.platform_id).where(Staff.ward == ward)):
                    if username:  # campaigns name staff by bare username (as the CLI's --by does)
                        actors |= {username, f"dashboard:{username}", f"login:{username}"}
                    if channel and platform_id:
                        actors.add(f"{channel}:{platform_id}")
                query = query.where(AuditLog.actor.in_(sorted(actors) or [""]))
            return list(await s.scalars(query))
