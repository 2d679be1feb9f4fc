"""Chưa trả lời: clusters of questions the bot could not answer, and what staff decide about them."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard import clusters as clustering
from bot.dashboard.auth import requires
from bot.dashboard.common import dash, filters_from, redirect, render, viewer
from bot.dashboard.kb import MAX_LINES
from bot.dashboard.overlay import clean_question

ACTIONS = {"link", "draft", "out_of_scope", "resolved", "reopen"}
DONE = {"link": "Đã gắn câu hỏi vào mục có sẵn.", "draft": "Đã tạo bản nháp.",
        "out_of_scope": "Đã đánh dấu ngoài phạm vi.", "resolved": "Đã đánh dấu đã xử lý.",
        "reopen": "Đã đưa câu hỏi trở lại danh sách."}
LINK_REVIEW = ("Đã gửi các cách hỏi để quản trị viên duyệt. Sau khi duyệt, trợ lý sẽ trả lời các câu này bằng "
               "mục đã chọn.")
STATE_NAMES = {"linked": "Đã gắn vào mục", "out_of_scope": "Ngoài phạm vi", "resolved": "Đã xử lý",
               "drafted": "Đang soạn"}


async def _clusters(request: web.Request):
    d = dash(request)
    filters = filters_from(request)
    rows = await d.queries.unanswered(filters.scope())
    triage = await d.queries.triage(viewer(request).ward)
    return filters, clustering.build(rows, triage, d.runtime.knowledge.matcher)


@requires("viewer")
async def page(request: web.Request) -> web.Response:
    d = dash(request)
    if request.query.get("view") == "closed":
        filters = filters_from(request)
        closed = await d.queries.closed_triage(viewer(request).ward)
        kb = d.runtime.knowledge.kb
        titles = {t.faq_id: entry.title for t in closed if t.faq_id and (entry := kb.get(t.faq_id))}
        return render(request, "unanswered_closed.html", page="unanswered", filters=filters, closed=closed,
                      STATE_NAMES=STATE_NAMES, titles=titles)
    filters, found = await _clusters(request)
    template = "unanswered_list.html" if request.query.get("fragment") else "unanswered.html"
    kb = d.runtime.knowledge.kb
    return render(request, template, page="unanswered", filters=filters, clusters=found,
                  entries=sorted(kb.entries, key=lambda e: e.id), total=sum(c.count for c in found))


@requires("staff")
async def action(request: web.Request) -> web.Response:
    d = dash(request)
    account = viewer(request)
    form = await request.post()
    name = str(form.get("action", ""))
    back = "/dashboard/unanswered?" + str(form.get("back", ""))
    if name not in ACTIONS:
        raise redirect(back, err="Thao tác không hợp lệ.")
    if name == "reopen":
        keys = [str(k) for k in form.getall("key", [])]
        count = await d.queries.reopen(keys, account.ward)
        if not count:
            raise redirect("/dashboard/unanswered?view=closed",
                           err="Không mở lại được: câu hỏi này do cán bộ cấp trên xử lý cho mọi xã/phường.")
        await d.queries.store.audit_trail.record(account.actor, "unanswered.reopen", None, count=count)
        raise redirect("/dashboard/unanswered?view=closed", ok=DONE[name])
    forms = await d.queries.forms_in_scope([str(f) for f in form.getall("form", [])], account.ward)
    if not forms:
        raise redirect(back, err="Không tìm thấy các câu hỏi này (có thể đã bị xóa).")
    store = d.queries.store
    if name == "link":
        entry_id = str(form.get("entry_id", "")).strip()
        entry = d.runtime.knowledge.kb.get(entry_id)
        if entry is None:
            raise redirect(back, err="Hãy chọn một mục có sẵn trong kho kiến thức.")
        known = {q.lower() for q in entry.questions}
        # Checked like a draft's wordings: no invisible-only text, at most 300 characters each.
        cleaned = (clean_question(t) for t in await d.queries.texts_of(forms, account.ward))
        texts = list(dict.fromkeys(t for t in cleaned if t and t.lower() not in known))[:MAX_LINES]
        if not account.can("admin") and texts:
            # New wordings change how the bot answers in every ward (matching is shared), so a
            # staff account's link (a ward's or an all-ward one) waits for an admin's review like
            # any other knowledge edit; an admin's is published at once.
            draft_id = await d.queries.create_draft(account.actor, "cluster", kind="variants", state="review",
                                                    entry_id=entry.id, questions=texts, ward=account.ward)
            await d.queries.set_triage(forms, "drafted", account.actor, ward=account.ward, draft_id=draft_id)
            await store.audit_trail.record(account.actor, "unanswered.link", entry.id, forms=len(forms), variants=texts,
                              review=draft_id)
            raise redirect(back, ok=LINK_REVIEW)
        if texts:
            await d.queries.create_draft(account.actor, "cluster", kind="variants", state="published",
                                         entry_id=entry.id, questions=texts, ward=account.ward)
        await d.queries.set_triage(forms, "linked", account.actor, ward=account.ward, faq_id=entry.id)
        await store.audit_trail.record(account.actor, "unanswered.link", entry.id, forms=len(forms), variants=texts)
        if d.overlay is not None:
            await d.overlay.refresh()
        raise redirect(back, ok=DONE[name])
    if name == "draft":
        texts = await d.queries.texts_of(forms, account.ward)
        guess = d.runtime.knowledge.kb.get(str(form.get("guess", "")))
        draft_id = await d.queries.create_draft(
            account.actor, "cluster", kind="entry", state="draft", questions=texts or forms[:12],
            category=guess.category if guess else None, ward=account.ward)
        await d.queries.set_triage(forms, "drafted", account.actor, ward=account.ward, draft_id=draft_id)
        raise redirect(f"/dashboard/kb/drafts/{draft_id}", ok="Đã tạo bản nháp từ nhóm câu hỏi. Hãy điền tiêu đề và "
                                                             "câu trả lời.")
    await d.queries.set_triage(forms, name, account.actor, ward=account.ward)
    await store.audit_trail.record(account.actor, f"unanswered.{name}", account.ward, forms=len(forms), sample=forms[0][:100])
    raise redirect(back, ok=DONE[name])
