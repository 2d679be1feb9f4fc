"""/chiendich for staff in chat: a short guided dialogue (text -> segment -> time -> preview ->
confirm) and list/status/pause/resume/cancel/approve. The engine itself is bot/campaigns.

The preview carries optional extras as buttons (link, image, expiry, channel): each asks for
one thing and shows the preview again, so the usual path stays five steps."""

from __future__ import annotations

import datetime as dt

from bot.campaigns.service import (
    LOCAL_TZ,
    CampaignDraft,
    CampaignError,
    CampaignService,
    campaign_reply,
    parse_link,
)
from bot.contracts import texts
from bot.contracts.menus import TOPICS
from bot.contracts.messages import Button, Link, Reply
from bot.contracts.payloads import (
    CampaignAbort,
    CampaignBack,
    CampaignCancel,
    CampaignChannel,
    CampaignConfirm,
    CampaignOption,
    CampaignSegment,
    CampaignTime,
    Payload,
)
from bot.contracts.states import (
    CampaignAwaitingExtra,
    CampaignAwaitingSegment,
    CampaignAwaitingText,
    CampaignAwaitingTime,
    State,
)
from handlers.router import FeatureContext, Routes, Turn

EDIT_ROLES = ("admin", "staff")
STATE_LABELS = {
    "draft": "nháp", "pending_approval": "chờ duyệt", "scheduled": "đã lên lịch", "sending": "đang gửi",
    "paused": "tạm dừng", "done": "đã xong", "cancelled": "đã hủy", "expired": "hết hạn",
}
SUBCOMMANDS = {"tamdung": "pause", "tieptuc": "resume", "huy": "cancel", "duyet": "approve"}
USAGE = (
    "Chiến dịch nhắn tin:\n/chiendich — tạo mới (có hướng dẫn từng bước)\n/chiendich ds — danh sách\n"
    "/chiendich xem <số> — tình trạng\n/chiendich tamdung|tieptuc|huy <số>\n/chiendich duyet <số> — duyệt (cán bộ thứ hai)"
)


TIME_FORMAT = "%H:%M %d/%m/%Y"
CHANNEL_LABELS = {"all": "mọi kênh", "telegram": "Telegram", "zalo": "Zalo"}
PROMPTS = {
    "link": "Gửi liên kết theo dạng: Nhãn | https://địa-chỉ (ví dụ: Cổng Dịch vụ công | https://...).",
    "img": "Gửi địa chỉ ảnh, bắt đầu bằng https://",
    "exp": "Gõ hạn cuối theo dạng 20:00 25/12/2026. Sau hạn này, tin chưa gửi sẽ được bỏ.",
}


def _local(value: dt.datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime(TIME_FORMAT) if value else "ngay"


def _parse_local(text: str) -> dt.datetime:
    return dt.datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=LOCAL_TZ).astimezone(dt.UTC)


class CampaignFeature:
    def __init__(self, ctx: FeatureContext, service: CampaignService | None):
        self.ctx = ctx
        self.service = service

    def routes(self) -> Routes:
        actions = (CampaignSegment, CampaignTime, CampaignOption, CampaignChannel, CampaignBack,
                   CampaignConfirm, CampaignCancel)
        return Routes(
            commands={"chiendich": self.command},
            actions={CampaignAbort: self.on_abort, **dict.fromkeys(actions, self.on_action)},
            malformed={"camp": self.on_malformed},
            states=dict.fromkeys((CampaignAwaitingText, CampaignAwaitingSegment, CampaignAwaitingTime,
                                  CampaignAwaitingExtra), self.on_text),
            malformed_states={"camp": self.on_text},
        )

    async def _role(self, turn: Turn) -> str | None:
        return await self.ctx.store.staff.role(turn.msg.channel, turn.msg.user_id)

    def _actor(self, turn: Turn) -> str:
        return f"{turn.msg.channel}:{turn.msg.user_id}"

    async def command(self, turn: Turn) -> list[Reply]:
        role = await self._role(turn)
        if role is None or self.service is None or turn.user is None:
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        args = (turn.msg.text or "").split()[1:]
        try:
            if not args:
                if role not in EDIT_ROLES:
                    return [Reply(texts.STAFF_ONLY, kind="notice")]
                await self.ctx.set_state(turn.user, CampaignAwaitingText())
                return [Reply("Gửi nội dung tin nhắn chiến dịch. Dòng đầu là tiêu đề, các dòng sau là nội dung.",
                              [[Button("Hủy", CampaignAbort().pack())]], kind="notice")]
            if args[0] == "ds":
                rows = await self.service.recent()
                lines = [f"#{c.id} [{STATE_LABELS.get(c.state, c.state)}] {c.title} — {c.recipients} người"
                         for c in rows] or ["Chưa có chiến dịch nào."]
                return [Reply("\n".join(lines), kind="notice")]
            if len(args) == 2 and args[1].isdigit():
                campaign_id = int(args[1])
                if args[0] == "xem":
                    return [await self._status_reply(campaign_id)]
                if args[0] in SUBCOMMANDS and role in EDIT_ROLES:
                    method = getattr(self.service, SUBCOMMANDS[args[0]])
                    campaign = await method(campaign_id, self._actor(turn))
                    return [Reply(f"Chiến dịch #{campaign.id}: {STATE_LABELS.get(campaign.state, campaign.state)}.",
                                  kind="notice")]
        except CampaignError as exc:
            return [Reply(f"Không thực hiện được: {exc}.", kind="notice")]
        return [Reply(USAGE, kind="notice")]

    async def _status_reply(self, campaign_id: int) -> Reply:
        assert self.service is not None
        status = await self.service.status(campaign_id)
        d = status["deliveries"]
        return Reply(
            f"#{status['id']} {status['title']} — {STATE_LABELS.get(status['state'], status['state'])}\n"
            f"Người nhận: {status['recipients']} · đã gửi {d['sent']} · lỗi {d['failed']} · chặn bot {d['blocked']} · "
            f"bỏ qua {d['skipped']} · không chắc chắn {d['uncertain']} · chờ gửi {d['pending'] + d['sending']}",
            kind="notice")

    async def on_text(self, turn: Turn, state: State | None, text: str) -> list[Reply]:
        """Text typed during the dialogue: the message itself, a time, or an extra (link...)."""
        assert turn.user is not None
        if await self._role(turn) not in EDIT_ROLES or self.service is None:
            await self.ctx.set_state(turn.user, None)
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        try:
            if isinstance(state, CampaignAwaitingText):
                title, _, body = text.strip().partition("\n")
                campaign = await self.service.create(CampaignDraft(
                    title=title, text=body or title, created_by=self._actor(turn),
                    report_channel=turn.msg.channel, report_chat=turn.msg.chat), confirm=False)
                await self.ctx.set_state(turn.user, CampaignAwaitingSegment(campaign.id))
                return [self._segment_reply(campaign.id)]
            if isinstance(state, CampaignAwaitingTime):
                await self._own_draft(turn, state.campaign)
                return await self._preview(turn, state.campaign, scheduled_at=_parse_local(text))
            if isinstance(state, CampaignAwaitingExtra) and state.extra in PROMPTS:
                campaign_id = state.campaign
                await self._own_draft(turn, campaign_id)
                if state.extra == "link":
                    links = [*(await self._links(campaign_id)), parse_link(text.strip())]
                    return await self._preview(turn, campaign_id, links=links)
                if state.extra == "img":
                    return await self._preview(turn, campaign_id, image_url=text.strip())
                return await self._preview(turn, campaign_id, expires_at=_parse_local(text))
        except CampaignError as exc:
            return [Reply(f"Không thực hiện được: {exc}.", kind="notice")]
        except ValueError:
            return [Reply("Chưa đọc được thời gian. Gõ theo dạng 08:00 25/12/2026 hoặc bấm nút.", kind="notice")]
        return [Reply("Bấm một nút bên trên để tiếp tục, hoặc /chiendich để bắt đầu lại.", kind="notice")]

    async def _own_draft(self, turn: Turn, campaign_id: int):
        assert self.service is not None
        campaign = await self.service.get(campaign_id)
        if campaign.created_by != self._actor(turn):
            raise CampaignError("chỉ người tạo mới tiếp tục được bản nháp này")
        return campaign

    async def _links(self, campaign_id: int) -> list[Link]:
        assert self.service is not None
        campaign = await self.service.get(campaign_id)
        return [Link(item["label"], item["url"]) for item in campaign.links or []]

    def _segment_reply(self, campaign_id: int) -> Reply:
        rows = [[Button("Tất cả người đăng ký", CampaignSegment(campaign_id, "all").pack())]]
        rows += [[Button(name, CampaignSegment(campaign_id, "w", slug).pack())]
                 for slug, name in self.ctx.config.wards.items()]
        rows += [[Button(f"Chủ đề: {label}", CampaignSegment(campaign_id, "t", topic).pack())]
                 for topic, label in TOPICS.items()]
        return Reply("Gửi cho ai?", rows, kind="menu")

    async def _editor(self, turn: Turn) -> bool:
        """Only staff who may edit press these buttons; a forged one from a citizen does nothing."""
        return await self._role(turn) in EDIT_ROLES and self.service is not None

    async def on_malformed(self, turn: Turn) -> list[Reply]:
        if not await self._editor(turn):
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, kind="notice")]

    async def on_abort(self, turn: Turn, _pressed: CampaignAbort) -> list[Reply]:
        if not await self._editor(turn):
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        assert turn.user is not None
        await self.ctx.set_state(turn.user, None)
        return [Reply("Đã hủy tạo chiến dịch.", kind="notice")]

    async def on_action(self, turn: Turn, pressed: Payload) -> list[Reply]:
        if not await self._editor(turn):
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        assert self.service is not None and turn.user is not None
        campaign_id: int = pressed.campaign  # type: ignore[attr-defined]  # every campaign payload names one
        try:
            campaign = await self.service.get(campaign_id)
            if campaign.created_by != self._actor(turn):
                return [Reply("Chỉ người tạo mới tiếp tục được bản nháp này.", kind="notice")]
            match pressed:
                case CampaignSegment(kind=kind, value=value):
                    segment: dict[str, list[str]] = {"wards": [], "topics": []}
                    if value is not None:
                        segment["wards" if kind == "w" else "topics"] = [value]
                    await self.service.update_draft(campaign_id, segment=segment)
                    await self.ctx.set_state(turn.user, CampaignAwaitingTime(campaign_id))
                    rows = [[Button("Gửi ngay", CampaignTime(campaign_id, "now").pack())],
                            [Button("Sau 1 giờ", CampaignTime(campaign_id, "1h").pack())],
                            [Button("8 giờ sáng mai", CampaignTime(campaign_id, "tomorrow").pack())]]
                    return [Reply("Gửi lúc nào? Bấm nút hoặc gõ giờ theo dạng 08:00 25/12/2026.", rows, kind="menu")]
                case CampaignTime(when=when_name):
                    now = dt.datetime.now(dt.UTC)
                    when = {"now": now, "1h": now + dt.timedelta(hours=1)}.get(when_name)
                    if when is None:
                        local = now.astimezone(LOCAL_TZ) + dt.timedelta(days=1)
                        when = local.replace(hour=8, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
                    return await self._preview(turn, campaign_id, scheduled_at=when)
                case CampaignOption(extra=extra) if extra in PROMPTS:  # an optional extra: ask for it
                    await self.ctx.set_state(turn.user, CampaignAwaitingExtra(extra, campaign_id))
                    return [Reply(PROMPTS[extra], [[Button("Quay lại", CampaignBack(campaign_id).pack())]],
                                  kind="notice")]
                case CampaignOption(extra="ch"):
                    rows = [[Button(label, CampaignChannel(campaign_id, key).pack())]
                            for key, label in CHANNEL_LABELS.items()]
                    return [Reply("Gửi qua kênh nào?", rows, kind="menu")]
                case CampaignChannel(channel=channel) if channel in CHANNEL_LABELS:
                    return await self._preview(turn, campaign_id, channel=channel)
                case CampaignBack():
                    return await self._preview(turn, campaign_id)
                case CampaignConfirm():
                    campaign = await self.service.confirm(campaign_id, self._actor(turn))
                    if campaign.state == "pending_approval":
                        return [Reply(f"Chiến dịch #{campaign.id} gửi tới {campaign.recipients} người nên cần "
                                      f"một cán bộ khác duyệt: /chiendich duyet {campaign.id}", kind="notice")]
                    return [Reply(f"Đã lên lịch chiến dịch #{campaign.id} lúc {_local(campaign.scheduled_at)}. "
                                  "Bạn sẽ nhận tin nhắn tiến độ khi bắt đầu gửi.", kind="notice")]
                case CampaignCancel():
                    await self.service.cancel(campaign_id, self._actor(turn))
                    return [Reply(f"Đã hủy chiến dịch #{campaign_id}.", kind="notice")]
        except (CampaignError, ValueError) as exc:
            return [Reply(f"Không thực hiện được: {exc}.", kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, kind="notice")]

    async def _preview(self, turn: Turn, campaign_id: int, **changes) -> list[Reply]:
        """Apply `changes` to the draft, then show it exactly as citizens will see it, with the
        recipient count, the confirm buttons and the optional extras."""
        assert self.service is not None and turn.user is not None
        campaign = await self.service.update_draft(campaign_id, **changes) if changes \
            else await self.service.get(campaign_id)
        await self.ctx.set_state(turn.user, None)
        note = " (cần cán bộ khác duyệt)" if campaign.requires_approval else ""
        expiry = f", hết hạn lúc {_local(campaign.expires_at)}" if campaign.expires_at else ""
        n = campaign.id
        confirm = Reply(f"Trên đây là bản xem trước. Chiến dịch #{n} sẽ gửi tới {campaign.recipients} người "
                        f"qua {CHANNEL_LABELS.get(campaign.channel, campaign.channel)} lúc "
                        f"{_local(campaign.scheduled_at)}{expiry}{note}. Xác nhận?",
                        [[Button("Xác nhận gửi", CampaignConfirm(n).pack()), Button("Hủy", CampaignCancel(n).pack())],
                         [Button("➕ Liên kết", CampaignOption(n, "link").pack()),
                          Button("🖼 Ảnh", CampaignOption(n, "img").pack())],
                         [Button("⏳ Hạn gửi", CampaignOption(n, "exp").pack()),
                          Button("📡 Kênh", CampaignOption(n, "ch").pack())]],
                        kind="notice")
        return [campaign_reply(campaign), confirm]
