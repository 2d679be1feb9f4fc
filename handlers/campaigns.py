"""/chiendich for staff in chat: a short guided dialogue (text -> segment -> time -> preview ->
confirm) and list/status/pause/resume/cancel/approve. The engine itself is bot/campaigns."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bot.campaigns.service import LOCAL_TZ, CampaignDraft, CampaignError, CampaignService, campaign_reply
from handlers import texts
from handlers.menus import TOPICS
from handlers.messages import Button, Reply

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


def _local(value: dt.datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y") if value else "ngay"


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
        """Text typed during the dialogue: the message itself, or a time."""
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
            if state.startswith("camp:time:"):
                campaign_id = int(state.rsplit(":", 1)[1])
                when = dt.datetime.strptime(text.strip(), "%H:%M %d/%m/%Y").replace(tzinfo=LOCAL_TZ)
                return await self._preview(turn, campaign_id, when.astimezone(dt.UTC))
        except ValueError:
            return [Reply("Chưa đọc được thời gian. Gõ theo dạng 08:00 25/12/2026 hoặc bấm nút.", kind="notice")]
        except CampaignError as exc:
            return [Reply(f"Không thực hiện được: {exc}.", kind="notice")]
        return [Reply("Bấm một nút bên trên để tiếp tục, hoặc /chiendich để bắt đầu lại.", kind="notice")]

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
                return await self._preview(turn, campaign_id, when)
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

    async def _preview(self, turn: Turn, campaign_id: int, when: dt.datetime) -> list[Reply]:
        assert self.service is not None and self.conv.store is not None and turn.user is not None
        campaign = await self.service.update_draft(campaign_id, scheduled_at=when)
        await self.conv.store.update_user(turn.user.id, state="")
        note = " (cần cán bộ khác duyệt)" if campaign.requires_approval else ""
        confirm = Reply(f"Trên đây là bản xem trước. Chiến dịch #{campaign.id} sẽ gửi tới {campaign.recipients} "
                        f"người lúc {_local(campaign.scheduled_at)}{note}. Xác nhận?",
                        [[Button("Xác nhận gửi", f"camp:ok:{campaign.id}"), Button("Hủy", f"camp:no:{campaign.id}")]],
                        kind="notice")
        return [campaign_reply(campaign), confirm]
