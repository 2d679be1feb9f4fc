"""Chiến dịch: create, preview, approve, schedule, watch and stop campaigns, and read their final report.

Everything goes through bot/campaigns/service.py (the same rules as the Telegram dialogue
and the CLI): a new campaign is a draft until its creator confirms it; above
CAMPAIGN_APPROVAL_THRESHOLD recipients a second staff member must approve it. The preview
is the service's own `campaign_reply`, i.e. exactly the message citizens get.

A ward-limited account works on campaigns confined to its ward only: it creates them for
its ward and neither sees nor steers campaigns aimed at other or several wards.

Staff act on campaigns under their username, the service's name for a staff account (the
same as `campaign ... --by <username>` on the CLI), so the service can tell that a dashboard
user and their linked Telegram account are one person.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from multidict import MultiDictProxy

from bot.campaigns.service import (
    CHANNELS,
    DELIVERY_STATES,
    CampaignDraft,
    CampaignError,
    CampaignService,
    campaign_reply,
    parse_local_time,
)
from bot.contracts.messages import Link
from bot.dashboard.auth import requires
from bot.dashboard.common import dash, is_https_url, path_id, redirect, render, viewer
from bot.localtime import VN_TZ
from bot.storage.dashboard_queries import StaffAccount, campaign_ward
from bot.storage.models import Campaign
from knowledge.schema import TOPICS

STATE_NAMES = {"draft": "Bản nháp", "pending_approval": "Chờ duyệt", "scheduled": "Đã lên lịch",
               "sending": "Đang gửi", "paused": "Tạm dừng", "done": "Đã gửi xong", "cancelled": "Đã hủy",
               "expired": "Hết hạn"}
DELIVERY_NAMES = {"pending": "Chờ gửi", "sending": "Đang gửi", "sent": "Đã gửi", "failed": "Lỗi",
                  "blocked": "Không nhận được (chặn hoặc rời kênh)", "skipped": "Bỏ qua",
                  "uncertain": "Không chắc đã gửi (hệ thống dừng giữa chừng)"}
CHANNEL_CHOICES = {"all": "Mọi kênh", "telegram": "Telegram", "zalo": "Zalo (OA và Zalo Bot)"}
SKIP_REASONS = {"expired": "Chiến dịch hết hạn trước khi gửi tới", "cancelled": "Chiến dịch bị hủy",
                "recipient left or deleted their data": "Người nhận đã hủy hoặc xóa dữ liệu",
                "outside messaging window": "Ngoài thời gian Zalo cho phép nhắn"}


def skip_reason(reason: str) -> str:
    """The engine's reason for skipping a delivery, in words for staff."""
    if reason in SKIP_REASONS:
        return SKIP_REASONS[reason]
    if reason.startswith("channel ") and reason.endswith(" is not running"):
        return f"Kênh {reason[8:-15]} chưa được bật trên máy chủ"
    return reason


ACTIVE = ("scheduled", "sending", "paused")  # progress changes by itself: the page refreshes
FINISHED = ("done", "expired", "cancelled")
OPS = {  # operation -> (service method, states it applies to, done message)
    "confirm": ("confirm", ("draft",), "Đã xác nhận."),
    "approve": ("approve", ("pending_approval",), "Đã duyệt. Chiến dịch sẽ được gửi đúng lịch."),
    "pause": ("pause", ("scheduled", "sending"), "Đã tạm dừng."),
    "resume": ("resume", ("paused",), "Đã cho gửi tiếp."),
    "cancel": ("cancel", ("draft", "pending_approval", "scheduled", "sending", "paused"), "Đã hủy chiến dịch."),
}
MAX_LINKS = 3
MISSING = "Không tìm thấy chiến dịch này."


def _service(request: web.Request) -> CampaignService:
    return dash(request).runtime.campaigns


def _may_see(account: StaffAccount, campaign: Campaign) -> bool:
    return not account.ward or campaign_ward(campaign.segment) == account.ward


async def _campaign(request: web.Request) -> Campaign:
    try:
        campaign = await _service(request).get(path_id(request, MISSING))
    except CampaignError:
        raise web.HTTPNotFound(text=MISSING) from None
    if not _may_see(viewer(request), campaign):
        raise web.HTTPNotFound(text=MISSING)
    return campaign


def _local_input(value: dt.datetime | None) -> str:
    """A UTC time as the value of <input type=datetime-local> in Vietnam time."""
    return value.astimezone(VN_TZ).strftime("%Y-%m-%dT%H:%M") if value else ""


def segment_text(request: web.Request, campaign: Campaign) -> str:
    segment = campaign.segment or {}
    d = dash(request)
    wards = ", ".join(d.ward_name(w) for w in segment.get("wards") or []) or "mọi xã/phường"
    topics = ", ".join(TOPICS.get(t, t) for t in segment.get("topics") or []) or "mọi chủ đề"
    return f"{wards} · {topics} · {CHANNEL_CHOICES.get(campaign.channel, campaign.channel)}"


# --- list -------------------------------------------------------------------------------------
@requires("viewer")
async def index(request: web.Request) -> web.Response:
    rows = await dash(request).queries.campaign_list(viewer(request).ward)
    return render(request, "campaigns.html", page="campaigns", rows=rows, STATE_NAMES=STATE_NAMES,
                  segment_text=lambda c: segment_text(request, c))


# --- create --------------------------------------------------------------------------------------
def _blank_form(account: StaffAccount) -> dict:
    return {"title": "", "text": "", "image_url": "", "links": [("", "")] * MAX_LINKS,
            "wards": [account.ward] if account.ward else [], "topics": [], "channel": "all", "when": "now",
            "send_at": "", "expires_at": ""}


def _read_form(form: MultiDictProxy, account: StaffAccount) -> dict:
    labels = [str(v).strip()[:60] for v in form.getall("link_label", [])][:MAX_LINKS]
    urls = [str(v).strip()[:500] for v in form.getall("link_url", [])][:MAX_LINKS]
    links = list(zip(labels, urls, strict=False))
    links += [("", "")] * (MAX_LINKS - len(links))
    return {
        "title": " ".join(str(form.get("title", "")).split())[:200],
        "text": str(form.get("text", "")).replace("\r\n", "\n").strip()[:4000],
        "image_url": str(form.get("image_url", "")).strip()[:1000], "links": links,
        "wards": [account.ward] if account.ward else [str(w) for w in form.getall("wards", []) if w],
        "topics": [str(t) for t in form.getall("topics", []) if t], "channel": str(form.get("channel", "all")),
        "when": "at" if form.get("when") == "at" else "now", "send_at": str(form.get("send_at", "")).strip(),
        "expires_at": str(form.get("expires_at", "")).strip(),
    }


def _draft(values: dict, account: StaffAccount) -> CampaignDraft:
    """The service's draft from the form; CampaignError (Vietnamese) for what staff must fix."""
    links = []
    for label, url in values["links"]:
        if not label and not url:
            continue
        if not label or not url:
            raise CampaignError("mỗi nút liên kết cần cả tên nút và địa chỉ")
        if not is_https_url(url):
            raise CampaignError(f"liên kết phải là địa chỉ https://: {url}")
        links.append(Link(label, url))
    if values["image_url"] and not is_https_url(values["image_url"]):
        raise CampaignError("ảnh phải là địa chỉ https://")
    now = dt.datetime.now(dt.UTC)
    scheduled = None
    if values["when"] == "at":
        if not values["send_at"]:
            raise CampaignError("hãy chọn ngày giờ gửi")
        scheduled = parse_local_time(values["send_at"])
        if scheduled < now - dt.timedelta(minutes=1):
            raise CampaignError("thời điểm gửi đã qua")
    expires = parse_local_time(values["expires_at"]) if values["expires_at"] else None
    if expires is not None and expires <= (scheduled or now):
        raise CampaignError("thời hạn phải sau thời điểm gửi")
    return CampaignDraft(title=values["title"], text=values["text"], created_by=account.username,
                         wards=values["wards"], topics=values["topics"], channel=values["channel"], links=links,
                         image_url=values["image_url"] or None, scheduled_at=scheduled, expires_at=expires)


def _form_page(request: web.Request, values: dict, error: str = "", status: int = 200) -> web.Response:
    return render(request, "campaign_new.html", page="campaigns", values=values, message=error, status=status,
                  topics=TOPICS, channels=CHANNEL_CHOICES, threshold=_service(request).approval_threshold)


@requires("staff")
async def new(request: web.Request) -> web.Response:
    account = viewer(request)
    if request.method != "POST":
        return _form_page(request, _blank_form(account))
    values = _read_form(await request.post(), account)
    try:
        if values["channel"] not in CHANNELS:
            raise CampaignError("hãy chọn kênh gửi")
        campaign = await _service(request).create(_draft(values, account), confirm=False)
    except CampaignError as exc:
        return _form_page(request, values, f"Chưa tạo được: {exc}.", status=400)
    raise redirect(f"/dashboard/campaigns/{campaign.id}",
                   ok="Đã lưu bản nháp. Xem lại tin nhắn bên dưới rồi bấm “Xác nhận gửi”.")


# --- one campaign ----------------------------------------------------------------------------------
def _report(status: dict) -> dict:
    counts = status["deliveries"]
    total = sum(counts.values())
    done = total - counts["pending"] - counts["sending"]
    started, finished = status["started_at"], status["finished_at"]
    minutes = None
    if started and finished:
        minutes = (dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(started)).total_seconds() / 60
    return {"counts": counts, "total": total, "done": done, "sent_share": counts["sent"] / total if total else None,
            "minutes": minutes, "reasons": status["skipped_reasons"]}


async def _detail_context(request: web.Request, campaign: Campaign) -> dict:
    service = _service(request)
    status = await service.status(campaign.id)
    account = viewer(request)
    live = None
    if campaign.state in ("draft", "pending_approval", "scheduled"):  # who it would reach if sent now
        live = await service.count_recipients(campaign.segment or {}, campaign.channel)
    own = await service.same_person(account.username, campaign.created_by)
    allowed = {op for op, (_m, states, _t) in OPS.items() if campaign.state in states and account.can("staff")}
    allowed.discard("approve" if own else "confirm")  # the two-person rule; only the creator sends a draft on
    return {"campaign": campaign, "info": status, "report": _report(status), "live_recipients": live,
            "own": own, "allowed": allowed, "active": campaign.state in ACTIVE,
            "finished": campaign.state in FINISHED, "threshold": service.approval_threshold}


def _names(request: web.Request) -> dict:
    return {"STATE_NAMES": STATE_NAMES, "DELIVERY_NAMES": DELIVERY_NAMES, "DELIVERY_STATES": DELIVERY_STATES,
            "skip_reason": skip_reason, "segment_text": lambda c: segment_text(request, c),
            "from_iso": lambda v: dt.datetime.fromisoformat(v) if v else None}


@requires("viewer")
async def detail(request: web.Request) -> web.Response:
    campaign = await _campaign(request)
    context = {**await _detail_context(request, campaign), **_names(request)}
    if request.query.get("fragment"):
        return render(request, "campaign_progress.html", page="campaigns", **context)
    return render(request, "campaign.html", page="campaigns", reply=campaign_reply(campaign), **context)


@requires("staff")
async def operate(request: web.Request) -> web.Response:
    account = viewer(request)
    campaign = await _campaign(request)
    here = f"/dashboard/campaigns/{campaign.id}"
    op = request.match_info["op"]
    method, states, done = OPS[op]
    if campaign.state not in states:
        raise redirect(here, err=f"Không thực hiện được khi chiến dịch đang ở trạng thái "
                                 f"“{STATE_NAMES.get(campaign.state, campaign.state)}”.")
    try:  # the service enforces the two-person rule and who confirms (it also recounts on confirm)
        updated = await getattr(_service(request), method)(campaign.id, account.username)
    except CampaignError as exc:
        raise redirect(here, err=f"Không thực hiện được: {exc}.") from None
    if op == "confirm":
        done = ("Đã gửi duyệt: cần một cán bộ khác duyệt vì chiến dịch tới hơn "
                f"{_service(request).approval_threshold} người." if updated.state == "pending_approval"
                else "Đã xác nhận. Chiến dịch sẽ được gửi đúng lịch.")
    raise redirect(here, ok=done)
