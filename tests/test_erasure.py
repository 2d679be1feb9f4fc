"""/xoadulieu also removes the citizen's own wordings where staff work copied them: knowledge
drafts made from their questions and the audit log's details (over real HTTP, both databases)."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from bot.storage.models import AuditLog, FaqDraft, QuestionLog
from tests.dashboard_harness import running_site
from tests.test_dashboard_pages import act

PERSONAL = "con mèo nhà tôi ở ngõ 17 hàng bạc bỏ ăn mấy hôm nay"
SHARED = "con mèo bỏ ăn mấy hôm nay phải làm sao"


def all_cluster_forms(html: str) -> list[list[str]]:
    blocks = html.split('<article class="cluster')[1:]
    return [re.findall(r'name="form" value="([^"]+)"', b.split('class="link-form"')[1].split("</form>")[0])
            for b in blocks]


async def test_deleting_my_data_removes_my_wordings_from_drafts_and_audit(database_url):
    async with running_site(database_url) as site:
        await site.account("can-bo", "staff")
        leaving, staying, other = await site.client(), await site.client(), await site.client()
        await leaving.chat(PERSONAL, ward="phuong-a")
        await leaving.chat(SHARED, ward="phuong-a")
        await other.chat(SHARED, ward="phuong-a")  # the same words from someone else: not personal
        await staying.chat("thủ tục nuôi chim cảnh ở phường", ward="phuong-a")

        staff = await site.client("can-bo")
        page = await staff.get("/dashboard/unanswered")
        for forms in all_cluster_forms(page.text):  # every group linked (to review) and one also drafted
            await act(staff, "link", forms, entry_id="bot.human", back="")
        page = await staff.get("/dashboard/unanswered")
        async with site.runtime.store.sessions() as s:
            before = json.dumps([d.questions for d in await s.scalars(select(FaqDraft))], ensure_ascii=False)
            audit_before = json.dumps([a.detail for a in await s.scalars(select(AuditLog))], ensure_ascii=False)
        assert PERSONAL in before and SHARED in before and PERSONAL in audit_before  # copied into staff work

        assert "xóa" in (await leaving.chat("/xoadulieu"))["replies"][0]["text"].lower()
        await leaving.chat(action="del:yes")

        async with site.runtime.store.sessions() as s:
            drafts = list(await s.scalars(select(FaqDraft)))
            audit = json.dumps([a.detail for a in await s.scalars(select(AuditLog))], ensure_ascii=False)
            logged = list(await s.scalars(select(QuestionLog.text)))
        stored = json.dumps([[d.question, *d.questions] for d in drafts], ensure_ascii=False)
        assert PERSONAL not in stored and PERSONAL not in audit and PERSONAL not in logged
        assert "ngõ 17" not in stored + audit
        assert SHARED in stored  # another citizen asked it in the same words
        assert "chim cảnh" in stored  # other citizens' questions are untouched
