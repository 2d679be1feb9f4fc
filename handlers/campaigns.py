"""/chiendich for staff in chat: a short guided dialogue (text -> segment -> time -> preview ->
confirm) and list/status/pause/resume/cancel/approve. The engine itself is bot/campaigns.

The preview carries optional extras as buttons (link, image, expiry, channel): each asks for
one thing and shows the preview again, so the usual path stays five steps."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bot.campaigns.service import (
    LOCAL_TZ,
    CampaignDraft,
    CampaignError,
    CampaignService,
    campaign_reply,
    parse_link,
)
from handlers import texts
from handlers.menus import TOPICS
from handlers.messages import Button, Link, Reply

if TYPE_CHECKING:
    from handlers.conversation import Conversation, Turn

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
    def __init__(self, conversation: Conversation, service: CampaignService | None):
        self.conv = conversation
        self.service = service

    async def _role(self, turn: Turn) -> str | None:
        store = self.conv.store
        return await store.staff_role(turn.msg.channel, turn.msg.user_id) if store else None

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
                await self.conv.store.update_user(turn.user.id, state="camp:text")  # type: ignore[union-attr]
                return [Reply("Gửi nội dung tin nhắn chiến dịch. Dòng đầu là tiêu đề, các dòng sau là nội dung.",
                              [[Button("Hủy", "camp:abort")]], kind="notice")]
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

    async def on_text(self, turn: Turn, text: str) -> list[Reply]:
        """Text typed during the dialogue: the message itself, a time, or an extra (link...)."""
        assert self.conv.store is not None and turn.user is not None
        state = turn.user.state
        if await self._role(turn) not in EDIT_ROLES or self.service is None:
            await self.conv.store.update_user(turn.user.id, state="")
            return [Reply(texts.STAFF_ONLY, kind="notice")]
        try:
            if state == "camp:text":
                title, _, body = text.strip().partition("\n")
                campaign = await self.service.create(CampaignDraft(
                    title=title, text=body or title, created_by=self._actor(turn),
                    report_channel=turn.msg.channel, report_chat=turn.msg.chat), confirm=False)
                await self.conv.store.update_user(turn.user.id, state=f"camp:seg:{campaign.id}")
                return [self._segment_reply(campaign.id)]
            step, _, number = state.removeprefix("camp:").partition(":")
            if number.isdigit() and step in ("time", "link", "img", "exp"):
                campaign_id = int(number)
                await self._own_draft(turn, campaign_id)
                if step == "time":
                    return await self._preview(turn, campaign_id, scheduled_at=_parse_local(text))
                if step == "link":
                    links = [*(await self._links(campaign_id)), parse_link(text.strip())]
                    return await self._preview(turn, campaign_id, links=links)
                if step == "img":
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
        rows = [[Button("Tất cả người đăng ký", f"camp:seg:{campaign_id}:all")]]
        rows += [[Button(name, f"camp:seg:{campaign_id}:w:{slug}")] for slug, name in self.conv.config.wards.items()]
        rows += [[Button(f"Chủ đề: {label}", f"camp:seg:{campaign_id}:t:{topic}")] for topic, label in TOPICS.items()]
        return Reply("Gửi cho ai?", rows, kind="menu")

    async def on_action(self, turn: Turn, arg: str) -> list[Reply]:
        if await self._role(turn) not in EDIT_ROLES or self.service is None or self.conv.store is None:
            return [Reply(texts.STAFF_ONLY, kind="notice")]  # a forged button from a citizen does nothing
        assert turn.user is not None
        parts = arg.split(":")
        try:
            if parts[0] == "abort":
                await self.conv.store.update_user(turn.user.id, state="")
                return [Reply("Đã hủy tạo chiến dịch.", kind="notice")]
            campaign_id = int(parts[1])
            campaign = await self.service.get(campaign_id)
            if campaign.created_by != self._actor(turn):
                return [Reply("Chỉ người tạo mới tiếp tục được bản nháp này.", kind="notice")]
            if parts[0] == "seg":
                segment = {"wards": [], "topics": []}
                if len(parts) == 4:
                    segment["wards" if parts[2] == "w" else "topics"] = [parts[3]]
                await self.service.update_draft(campaign_id, segment=segment)
                await self.conv.store.update_user(turn.user.id, state=f"camp:time:{campaign_id}")
                rows = [[Button("Gửi ngay", f"camp:time:{campaign_id}:now")],
                        [Button("Sau 1 giờ", f"camp:time:{campaign_id}:1h")],
                        [Button("8 giờ sáng mai", f"camp:time:{campaign_id}:tomorrow")]]
                return [Reply("Gửi lúc nào? Bấm nút hoặc gõ giờ theo dạng 08:00 25/12/2026.", rows, kind="menu")]
            if parts[0] == "time":
                now = dt.datetime.now(dt.UTC)
                when = {"now": now, "1h": now + dt.timedelta(hours=1)}.get(parts[2])
                if when is None:
                    local = now.astimezone(LOCAL_TZ) + dt.timedelta(days=1)
                    when = local.replace(hour=8, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
                return await self._preview(turn, campaign_id, scheduled_at=when)
            if parts[0] == "opt" and parts[2] in PROMPTS:  # an optional extra: ask for it
                await self.conv.store.update_user(turn.user.id, state=f"camp:{parts[2]}:{campaign_id}")
                return [Reply(PROMPTS[parts[2]], [[Button("Quay lại", f"camp:back:{campaign_id}")]], kind="notice")]
            if parts[0] == "opt" and parts[2] == "ch":
                rows = [[Button(label, f"camp:ch:{campaign_id}:{key}")] for key, label in CHANNEL_LABELS.items()]
                return [Reply("Gửi qua kênh nào?", rows, kind="menu")]
            if parts[0] == "ch" and parts[2] in CHANNEL_LABELS:
                return await self._preview(turn, campaign_id, channel=parts[2])
            if parts[0] == "back":
                return await self._preview(turn, campaign_id)
            if parts[0] == "ok":
                campaign = await self.service.confirm(campaign_id, self._actor(turn))
                if campaign.state == "pending_approval":
                    return [Reply(f"Chiến dịch #{campaign.id} gửi tới {campaign.recipients} người nên cần một cán bộ "
                                  f"khác duyệt: /chiendich duyet {campaign.id}", kind="notice")]
                return [Reply(f"Đã lên lịch chiến dịch #{campaign.id} lúc {_local(campaign.scheduled_at)}. "
                              "Bạn sẽ nhận tin nhắn tiến độ khi bắt đầu gửi.", kind="notice")]
            if parts[0] == "no":
                await self.service.cancel(campaign_id, self._actor(turn))
                return [Reply(f"Đã hủy chiến dịch #{campaign_id}.", kind="notice")]
        except (CampaignError, ValueError, IndexError) as exc:
            return [Reply(f"Không thực hiện được: {exc}.", kind="notice")]
        return [Reply(texts.UNKNOWN_ACTION, kind="notice")]

    async def _preview(self, turn: Turn, campaign_id: int, **changes) -> list[Reply]:
        """Apply `changes` to the draft, then show it exactly as citizens will see it, with the
        recipient count, the confirm buttons and the optional extras."""
        assert self.service is not None and self.conv.store is not None and turn.user is not None
        campaign = await self.service.update_draft(campaign_id, **changes) if changes \
            else await self.service.get(campaign_id)
        await self.conv.store.update_user(turn.user.id, state="")
        note = " (cần cán bộ khác duyệt)" if campaign.requires_approval else ""
        expiry = f", hết hạn lúc {_local(campaign.expires_at)}" if campaign.expires_at else ""
        n = campaign.id
        confirm = Reply(f"Trên đây là bản xem trước. Chiến dịch #{n} sẽ gửi tới {campaign.recipients} người "
                        f"qua {CHANNEL_LABELS.get(campaign.channel, campaign.channel)} lúc "
                        f"{_local(campaign.scheduled_at)}{expiry}{note}. Xác nhận?",
                        [[Button("Xác nhận gửi", f"camp:ok:{n}"), Button("Hủy", f"camp:no:{n}")],
                         [Button("➕ Liên kết", f"camp:opt:{n}:link"), Button("🖼 Ảnh", f"camp:opt:{n}:img")],
                         [Button("⏳ Hạn gửi", f"camp:opt:{n}:exp"), Button("📡 Kênh", f"camp:opt:{n}:ch")]],
                        kind="notice")
        return [campaign_reply(campaign), confirm]
