"""Creating and steering campaigns: used by the CLI, Telegram staff commands and the dashboard."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.contracts.messages import Link, Quiz, Reply
from bot.localtime import VN_TZ as LOCAL_TZ
from bot.storage.campaigns import SKIP_BATCH as SKIP_BATCH  # re-exported: rows skipped per transaction
from bot.storage.campaigns import CampaignStore
from bot.storage.models import Campaign, Staff, utcnow
from knowledge.schema import TOPICS

UNSUBSCRIBE_FOOTER = "—\nNgừng nhận tin: gõ /huydangky hoặc nhắn \"dừng\"."
CHANNELS = ("telegram", "zalo", "all")
# Which channels a campaign reaches (BROADCAST_CHANNELS, CHANNEL_GROUPS: "zalo" is both Zalo
# products) is decided by the recipients query, in bot/storage/campaigns.py.
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "blocked", "skipped", "uncertain")
APPROVER_ROLES = ("admin", "staff")
MAX_TEXT = 3500
MAX_LINKS = 6
MAX_LINK_LABEL = 64
# Telegram's poll limits (telegram.constants.PollLimit, PTB 22.8): the strictest of our channels.
QUIZ_MAX_QUESTION = 300
QUIZ_MAX_OPTIONS = 12
QUIZ_MAX_OPTION = 100
QUIZ_MAX_EXPLANATION = 200
QUIZ_MAX_EXPLANATION_LINE_FEEDS = 2
PAST_GRACE = dt.timedelta(minutes=1)  # "--at" a few seconds ago is a slow typist, not a mistake


class CampaignError(ValueError):
    """A request that cannot be carried out; the message says why (shown to staff)."""


@dataclass
class CampaignDraft:
    title: str
    text: str
    created_by: str
    wards: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    channel: str = "all"
    links: list[Link] = field(default_factory=list)
    image_url: str | None = None
    quiz: Quiz | None = None
    scheduled_at: dt.datetime | None = None  # None = now
    expires_at: dt.datetime | None = None
    report_channel: str | None = None
    report_chat: str | None = None


def _local(value: dt.datetime) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def parse_local_time(text: str) -> dt.datetime:
    """ISO-8601; without an offset it is Vietnam time (Asia/Ho_Chi_Minh)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise CampaignError(f"thời điểm không hợp lệ: {text!r} (dùng dạng 2026-12-01T08:00)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(dt.UTC)


def campaign_reply(c: Campaign) -> Reply:
    """Exactly what a citizen receives (also used for the staff preview)."""
    quiz = Quiz(**c.quiz) if c.quiz else None
    links = [Link(item["label"], item["url"]) for item in c.links or []]
    text = f"📣 {c.title}\n\n{c.text.strip()}\n\n{UNSUBSCRIBE_FOOTER}"
    return Reply(text, links=links, kind="campaign", image_url=c.image_url, quiz=quiz)


def validate_quiz(quiz: Quiz) -> None:
    """Within Telegram's poll limits, with the correct answer among the options."""
    if not isinstance(quiz.question, str) or not 1 <= len(quiz.question.strip()) <= QUIZ_MAX_QUESTION:
        raise CampaignError(f"câu hỏi của câu đố cần 1-{QUIZ_MAX_QUESTION} ký tự")
    if not isinstance(quiz.options, list) or not 2 <= len(quiz.options) <= QUIZ_MAX_OPTIONS:
        raise CampaignError(f"câu đố cần 2-{QUIZ_MAX_OPTIONS} phương án")
    for option in quiz.options:
        if not isinstance(option, str) or not 1 <= len(option.strip()) <= QUIZ_MAX_OPTION:
            raise CampaignError(f"mỗi phương án cần 1-{QUIZ_MAX_OPTION} ký tự: {option!r}")
    if len({o.strip().lower() for o in quiz.options}) != len(quiz.options):
        raise CampaignError("các phương án của câu đố phải khác nhau")
    if isinstance(quiz.correct, bool) or not isinstance(quiz.correct, int) \
            or not 0 <= quiz.correct < len(quiz.options):
        raise CampaignError(f"đáp án đúng là số thứ tự phương án, từ 0 đến {len(quiz.options) - 1}")
    explanation = quiz.explanation or ""
    if not isinstance(explanation, str) or len(explanation) > QUIZ_MAX_EXPLANATION \
            or explanation.count("\n") > QUIZ_MAX_EXPLANATION_LINE_FEEDS:
        raise CampaignError(f"lời giải thích tối đa {QUIZ_MAX_EXPLANATION} ký tự và "
                            f"{QUIZ_MAX_EXPLANATION_LINE_FEEDS} lần xuống dòng")


def parse_link(text: str) -> Link:
    """'LABEL=URL' (CLI) or 'LABEL | URL' (chat) -> Link; https only."""
    for sep in ("|", "="):
        label, found, url = text.partition(sep)
        if found and url.strip().startswith("https://"):
            return Link(label.strip(), url.strip())
    raise CampaignError(f"liên kết cần dạng NHÃN=https://... : {text!r}")


class CampaignService:
    def __init__(self, sessions, approval_threshold: int, known_wards: dict[str, str] | None = None):
        self.sessions = sessions
        self.store = CampaignStore(sessions)
        self.approval_threshold = approval_threshold
        self.known_wards = known_wards or {}

    def _validate(self, d: CampaignDraft) -> None:
        if not d.title.strip() or not d.text.strip():
            raise CampaignError("cần có tiêu đề và nội dung")
        if len(d.text) > MAX_TEXT:
            raise CampaignError("nội dung quá dài (tối đa 3.500 ký tự)")
        if d.channel not in CHANNELS:
            raise CampaignError(f"kênh phải là một trong {', '.join(CHANNELS)}")
        unknown = [t for t in d.topics if t not in TOPICS]
        if unknown:
            raise CampaignError(f"chủ đề không có: {', '.join(unknown)} (có: {', '.join(TOPICS)})")
        if self.known_wards:
            bad = [w for w in d.wards if w not in self.known_wards]
            if bad:
                raise CampaignError(f"phường/xã không có trong cấu hình WARDS: {', '.join(bad)}")
        if len(d.links) > MAX_LINKS:
            raise CampaignError(f"tối đa {MAX_LINKS} liên kết")
        for link in d.links:
            if not link.url.startswith("https://") or len(link.url) > 1000 or any(c.isspace() for c in link.url):
                raise CampaignError(f"liên kết phải là địa chỉ https: {link.url}")
            if not 1 <= len(link.label.strip()) <= MAX_LINK_LABEL:
                raise CampaignError(f"nhãn liên kết cần 1-{MAX_LINK_LABEL} ký tự: {link.label!r}")
        if d.image_url and (not d.image_url.startswith("https://") or len(d.image_url) > 1000):
            raise CampaignError("ảnh phải là địa chỉ https")
        if d.quiz:
            validate_quiz(d.quiz)
        now = utcnow()
        if d.scheduled_at and d.scheduled_at < now - PAST_GRACE:
            raise CampaignError(f"thời điểm gửi {_local(d.scheduled_at)} đã qua; chọn một thời điểm sắp tới")
        if d.expires_at and d.expires_at <= now:
            raise CampaignError(f"thời hạn {_local(d.expires_at)} đã qua; chọn một thời điểm sắp tới")
        if d.expires_at and d.expires_at <= (d.scheduled_at or now):
            raise CampaignError("thời hạn phải sau thời điểm gửi")

    async def count_recipients(self, segment: dict, channel: str) -> int:
        return await self.store.count_recipients(segment, channel)

    async def create(self, d: CampaignDraft, confirm: bool = True) -> Campaign:
        """Store a campaign; it is scheduled at once unless it needs a second person's approval."""
        self._validate(d)
        segment = {"wards": sorted(set(d.wards)), "topics": sorted(set(d.topics))}
        count = await self.count_recipients(segment, d.channel)
        needs_approval = count > self.approval_threshold
        state = "draft" if not confirm else ("pending_approval" if needs_approval else "scheduled")
        row = Campaign(
            title=d.title.strip()[:200], text=d.text.strip(), created_by=d.created_by, segment=segment,
            channel=d.channel, links=[{"label": link.label, "url": link.url} for link in d.links],
            image_url=d.image_url, quiz=(d.quiz.__dict__ if d.quiz else None), state=state,
            scheduled_at=d.scheduled_at or utcnow(), expires_at=d.expires_at, requires_approval=needs_approval,
            recipients=count, report_channel=d.report_channel, report_chat=d.report_chat)
        return await self.store.create(row, d.created_by, {"recipients": count, "state": state})

    async def update_draft(self, campaign_id: int, **changes) -> Campaign:
        """Change a draft (segment, scheduled_at, expires_at, channel, links, image_url), validated
        like a new campaign; the recipient count and the approval need follow."""
        allowed = {"segment", "scheduled_at", "expires_at", "channel", "links", "image_url"}
        if set(changes) - allowed:
            raise TypeError(f"cannot change {sorted(set(changes) - allowed)}")
        row = await self.get(campaign_id)
        if row.state != "draft":
            raise CampaignError(f"chiến dịch #{campaign_id} không còn là bản nháp")
        segment = changes.get("segment", row.segment or {})
        links = changes.get("links", [Link(item["label"], item["url"]) for item in row.links or []])
        self._validate(CampaignDraft(
            title=row.title, text=row.text, created_by=row.created_by, wards=segment.get("wards", []),
            topics=segment.get("topics", []), channel=changes.get("channel", row.channel), links=links,
            image_url=changes.get("image_url", row.image_url), quiz=Quiz(**row.quiz) if row.quiz else None,
            scheduled_at=changes.get("scheduled_at", row.scheduled_at),
            expires_at=changes.get("expires_at", row.expires_at)))
        values = dict(changes)
        if "links" in values:
            values["links"] = [{"label": link.label, "url": link.url} for link in links]
        if "segment" in values or "channel" in values:
            values["recipients"] = count = await self.count_recipients(segment, changes.get("channel", row.channel))
            values["requires_approval"] = count > self.approval_threshold
        await self.store.update_draft(campaign_id, values)
        return await self.get(campaign_id)

    async def get(self, campaign_id: int) -> Campaign:
        row = await self.store.get(campaign_id)
        if row is None:
            raise CampaignError(f"không có chiến dịch #{campaign_id}")
        return row

    async def confirm(self, campaign_id: int, by: str) -> Campaign:
        """The creator sends their draft on. The recipients are counted again first (people may
        have subscribed since the draft was saved), and that count decides on approval."""
        row = await self.get(campaign_id)
        if row.state != "draft":
            raise CampaignError(f"chiến dịch #{campaign_id} đang ở trạng thái {row.state}")
        if not await self.same_person(by, row.created_by):
            raise CampaignError("chỉ người tạo mới xác nhận được bản nháp này")
        count = await self.count_recipients(row.segment or {}, row.channel)
        needs_approval = count > self.approval_threshold
        state = "pending_approval" if needs_approval else "scheduled"
        return await self._transition(campaign_id, ("draft",), state, by, "campaign.confirm",
                                      recipients=count, requires_approval=needs_approval)

    async def find_staff(self, who: str) -> Staff | None:
        """The active staff account named by a dashboard username or `<channel>:<id>`
        (`dashboard:<username>`, how early dashboard campaigns were signed, is the username)."""
        who = (who or "").strip()
        channel, sep, platform_id = who.partition(":")
        if channel == "dashboard":
            who, sep = platform_id, ""
        if sep:
            return await self.store.active_staff(channel=channel, platform_id=platform_id)
        return await self.store.active_staff(username=who.lower())

    async def same_person(self, who: str, other: str) -> bool:
        """Whether two actor names are one person: the same name, or two names of one active
        staff account (its dashboard username and its linked telegram:<id>)."""
        if who.strip().lower() == other.strip().lower():
            return True
        first, second = await self.find_staff(who), await self.find_staff(other)
        return first is not None and second is not None and first.id == second.id

    async def staff_member(self, who: str) -> Staff:
        """Like find_staff, but only admins and staff, else a CampaignError saying so."""
        row = await self.find_staff(who)
        if row is None or row.role not in APPROVER_ROLES:
            raise CampaignError(f"{who!r} không phải cán bộ (cần tên đăng nhập hoặc telegram:<id> của một "
                                "tài khoản cán bộ đang hoạt động)")
        return row

    async def approve(self, campaign_id: int, by: str) -> Campaign:
        """The two-person rule: a staff member other than the creator (under any of their names)."""
        await self.staff_member(by)  # only staff approve
        row = await self.get(campaign_id)
        if row.state != "pending_approval":
            raise CampaignError(f"chiến dịch #{campaign_id} không chờ duyệt (trạng thái: {row.state})")
        if await self.same_person(by, row.created_by):
            raise CampaignError("cần một cán bộ khác người tạo duyệt chiến dịch này (quy tắc hai người)")
        # The check and the change in one statement: two approvals at once cannot both win.
        if not await self.store.approve(campaign_id, by, {"created_by": row.created_by, "recipients": row.recipients}):
            raise CampaignError(f"chiến dịch #{campaign_id} vừa được duyệt hoặc đổi trạng thái")
        return await self.get(campaign_id)

    async def _transition(self, campaign_id: int, from_states: tuple[str, ...], to: str, by: str,
                          action: str, **changes) -> Campaign:
        values: dict = {"state": to, **changes}
        if to == "cancelled":
            values["finished_at"] = utcnow()
        detail = {"recipients": changes["recipients"]} if "recipients" in changes else {}
        changed, state = await self.store.transition(campaign_id, from_states, values, by, action, detail)
        if not changed:
            if state is None:
                raise CampaignError(f"không có chiến dịch #{campaign_id}")
            raise CampaignError(f"không thể chuyển chiến dịch #{campaign_id} từ {state} sang {to}")
        if to == "cancelled":
            # After the state change is committed: from then on no pending row can go in flight
            # (the engine marks a row in flight only while its campaign is sending).
            await self.store.skip_pending(campaign_id, "cancelled")
        return await self.get(campaign_id)

    async def pause(self, campaign_id: int, by: str) -> Campaign:
        return await self._transition(campaign_id, ("scheduled", "sending"), "paused", by, "campaign.pause")

    async def resume(self, campaign_id: int, by: str) -> Campaign:
        return await self._transition(campaign_id, ("paused",), "scheduled", by, "campaign.resume")

    async def cancel(self, campaign_id: int, by: str) -> Campaign:
        """Pending messages are dropped at once; those in flight finish and are counted."""
        return await self._transition(campaign_id, ("draft", "pending_approval", "scheduled", "sending", "paused"),
                                      "cancelled", by, "campaign.cancel")

    async def delivery_counts(self, campaign_id: int) -> dict[str, int]:
        counts = dict.fromkeys(DELIVERY_STATES, 0)
        counts.update(await self.store.delivery_counts(campaign_id))
        return counts

    async def status(self, campaign_id: int) -> dict:
        row = await self.get(campaign_id)
        return {
            "id": row.id, "title": row.title, "state": row.state, "channel": row.channel,
            "segment": row.segment, "recipients": row.recipients, "requires_approval": row.requires_approval,
            "created_by": row.created_by, "approved_by": row.approved_by,
            "scheduled_at": row.scheduled_at.isoformat() if row.scheduled_at else None,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "started_at": row.started_at.isoformat() if row.started_at else None,
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "deliveries": await self.delivery_counts(campaign_id),
            "skipped_reasons": await self.skipped_reasons(campaign_id),
        }

    async def skipped_reasons(self, campaign_id: int) -> dict[str, int]:
        """Skipped deliveries by reason (e.g. Zalo's messaging window, expiry, cancellation)."""
        return await self.store.skipped_reasons(campaign_id)

    async def recent(self, limit: int = 20) -> list[Campaign]:
        return await self.store.recent(limit)
