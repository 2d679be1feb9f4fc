"""Kho kiến thức: browse and search entries, see which are used and disliked, and write
local entries (drafts -> review -> published) that take effect without a restart.

Staff write and submit drafts; an admin publishes (the review step). A ward-limited
account's changes to a shipped entry become that ward's own version of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from aiohttp import web
from multidict import MultiDictProxy

from bot.dashboard.auth import requires
from bot.dashboard.common import dash, path_id, redirect, render, viewer
from bot.dashboard.overlay import DEFAULT_SOURCE, clean_question, problems_of, suggest_id
from bot.matching.normalize import fold
from bot.storage.dashboard_queries import DraftRow, Scope
from knowledge.schema import CATEGORIES

STATE_NAMES = {"draft": "Bản nháp", "review": "Chờ duyệt", "published": "Đã xuất bản", "archived": "Đã bỏ"}
SOURCE_NAMES = {"cluster": "Từ nhóm câu hỏi", "handoff": "Từ câu trả lời của cán bộ", "manual": "Soạn mới",
                "entry": "Sửa mục có sẵn"}
KIND_NAMES = {"entry": "Mục", "variants": "Thêm cách hỏi"}
USAGE_DAYS = 90
MAX_LINES = 40


def _lines(value: str) -> list[str]:
    out: list[str] = []
    for line in value.replace("\r\n", "\n").split("\n"):
        line = " ".join(line.split())
        if line and line not in out:
            out.append(line[:300])
    return out[:MAX_LINES]


def _questions(value: str) -> list[str]:
    """Question wordings from a text area: one per line, cleaned like the links' (clean_question)."""
    cleaned = (clean_question(line) for line in value.replace("\r\n", "\n").split("\n"))
    return list(dict.fromkeys(q for q in cleaned if q))[:MAX_LINES]


def _items(value: str) -> list[str]:
    return [p for p in dict.fromkeys(x.strip() for x in re.split(r"[,\n;]", value)) if p][:MAX_LINES]


def _search_text(entry) -> str:
    return fold(" ".join([entry.id, entry.title, *entry.questions, *entry.keywords])).lower()


async def _usage(request: web.Request) -> dict[str, dict[str, int]]:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=USAGE_DAYS)
    return await dash(request).queries.entry_usage(Scope(start=since, ward=viewer(request).ward))


@requires("viewer")
async def index(request: web.Request) -> web.Response:
    d = dash(request)
    kb = d.runtime.knowledge.kb
    q = request.query.get("q", "").strip()
    category = request.query.get("category", "")
    sort = request.query.get("sort", "matched")
    usage = await _usage(request)
    entries = kb.entries
    if category in CATEGORIES:
        entries = [e for e in entries if e.category == category]
    if q:
        needle = fold(q).lower()
        entries = [e for e in entries if needle in _search_text(e)]
    zero = {"matched": 0, "up": 0, "down": 0}
    if sort in ("matched", "down"):
        entries = sorted(entries, key=lambda e: (-usage.get(e.id, zero)[sort], e.id))
    else:
        entries = sorted(entries, key=lambda e: e.id)
    overlay = d.overlay
    local_ids = overlay.overlay_ids if overlay else set()
    shipped = overlay.base.by_id if overlay else kb.by_id
    trial = None
    ask = request.query.get("ask", "").strip()[:500]
    if ask:
        trial = d.runtime.knowledge.matcher.match(ask)
    return render(request, "kb.html", page="kb", entries=entries, usage=usage, zero=zero, q=q, category=category,
                  sort=sort, local_ids=local_ids, shipped=shipped, ask=ask, trial=trial, kb=kb,
                  usage_days=USAGE_DAYS, problems=overlay.problems if overlay else [])


@requires("viewer")
async def entry(request: web.Request) -> web.Response:
    d = dash(request)
    kb = d.runtime.knowledge.kb
    found = kb.get(request.match_info["id"])
    if found is None:
        raise web.HTTPNotFound(text="Không tìm thấy mục này.")
    usage = (await _usage(request)).get(found.id, {"matched": 0, "up": 0, "down": 0})
    own = viewer(request).ward  # a ward account sees its own ward's version only
    variants = {ward: e for (eid, ward), e in kb.ward_variants.items() if eid == found.id and own in (None, ward)}
    overlay = d.overlay
    drafts = [r for r in await d.queries.drafts(viewer(request).ward) if r.entry_id == found.id]
    return render(request, "kb_entry.html", page="kb", entry=found, usage=usage, variants=variants, kb=kb,
                  shipped=found.id in (overlay.base.by_id if overlay else kb.by_id), drafts=drafts,
                  STATE_NAMES=STATE_NAMES, KIND_NAMES=KIND_NAMES, usage_days=USAGE_DAYS)


@requires("staff")
async def override(request: web.Request) -> web.Response:
    """Start a local version of an entry (a ward account's version applies to its ward only)."""
    d = dash(request)
    account = viewer(request)
    found = d.runtime.knowledge.kb.get(request.match_info["id"], ward=account.ward)
    if found is None:
        raise web.HTTPNotFound(text="Không tìm thấy mục này.")
    draft_id = await d.queries.create_draft(
        account.actor, "entry", kind="entry", state="draft", entry_id=found.id, category=found.category,
        title=found.title, questions=list(found.questions), keywords=list(found.keywords), answer=found.answer,
        links=list(found.links), related=list(found.related), entry_source=found.source,
        wards=[account.ward] if account.ward else [], ward=account.ward)
    raise redirect(f"/dashboard/kb/drafts/{draft_id}", ok="Đã tạo bản sửa đổi. Sửa rồi gửi duyệt.")


# --- drafts ------------------------------------------------------------------------------------------
NO_DRAFT = "Không tìm thấy bản nháp này."


def _may_see(request: web.Request, row: DraftRow | None) -> DraftRow:
    ward = viewer(request).ward
    if row is None or (ward and row.ward != ward):
        raise web.HTTPNotFound(text=NO_DRAFT)
    return row


def _may_edit(request: web.Request, row: DraftRow) -> bool:
    account = viewer(request)
    if not account.can("staff") or row.state == "archived":
        return False
    return row.state != "published" or account.can("admin")


@requires("viewer")
async def drafts(request: web.Request) -> web.Response:
    d = dash(request)
    state = request.query.get("state", "")
    states = (state,) if state in STATE_NAMES else ("draft", "review", "published")
    rows = await d.queries.drafts(viewer(request).ward, states)
    return render(request, "kb_drafts.html", page="kb", rows=rows, state=state, STATE_NAMES=STATE_NAMES,
                  SOURCE_NAMES=SOURCE_NAMES, KIND_NAMES=KIND_NAMES)


@requires("staff")
async def new(request: web.Request) -> web.Response:
    d = dash(request)
    account = viewer(request)
    if request.method == "POST":
        draft_id = await d.queries.create_draft(account.actor, "manual", kind="entry", state="draft",
                                                ward=account.ward)
        await _save(request, draft_id, await request.post())
        raise redirect(f"/dashboard/kb/drafts/{draft_id}", ok="Đã lưu bản nháp.")
    blank = DraftRow(id=0, kind="entry", state="draft", source="manual", entry_id=None, category=None, title="",
                     question="", answer="", entry_source="")
    return render(request, "kb_draft.html", page="kb", row=blank, editable=True, problems=[], checks=[],
                  STATE_NAMES=STATE_NAMES, SOURCE_NAMES=SOURCE_NAMES, KIND_NAMES=KIND_NAMES, shipped_ids=set())


@requires("viewer")
async def draft(request: web.Request) -> web.Response:
    d = dash(request)
    row = _may_see(request, await d.queries.draft(path_id(request, NO_DRAFT)))
    kb = d.runtime.knowledge.kb
    matcher = d.runtime.knowledge.matcher
    checks = []
    for question in row.questions[:MAX_LINES]:
        _normalized, ranked = matcher.scores(question)
        if ranked:
            best = kb.get(ranked[0][0])
            checks.append((question, ranked[0][0], best.title if best else "", float(ranked[0][1])))
        else:
            checks.append((question, None, "", 0.0))
    overlay = d.overlay
    return render(request, "kb_draft.html", page="kb", row=row, editable=_may_edit(request, row),
                  problems=problems_of(row, kb) if row.state != "archived" else [], checks=checks,
                  STATE_NAMES=STATE_NAMES, SOURCE_NAMES=SOURCE_NAMES, KIND_NAMES=KIND_NAMES,
                  shipped_ids=set(overlay.base.by_id) if overlay else set(kb.by_id))


async def _save(request: web.Request, draft_id: int, form: MultiDictProxy, state: str | None = None) -> None:
    row = await dash(request).queries.draft(draft_id)
    assert row is not None
    fields = await _fields(request, row, form)
    if state is not None:
        fields["state"] = state
    await dash(request).queries.update_draft(draft_id, viewer(request).actor, "kb.draft.save", **fields)


async def _fields(request: web.Request, row: DraftRow, form: MultiDictProxy) -> dict:
    """The draft's columns as the submitted form sets them."""
    d = dash(request)
    account = viewer(request)
    fields: dict = {"questions": _questions(str(form.get("questions", "")))}
    if row.kind == "entry":
        category = str(form.get("category", ""))
        title = " ".join(str(form.get("title", "")).split())[:200]
        entry_id = str(form.get("entry_id", "")).strip().lower()[:96] or row.entry_id or ""
        kb = d.runtime.knowledge.kb
        if not entry_id and category in CATEGORIES and title:
            taken = set(kb.by_id) | await d.queries.entry_ids_in_drafts()
            entry_id = suggest_id(category, title, taken)
        shipped = d.overlay.base.by_id if d.overlay else kb.by_id
        wards = [w for w in form.getall("wards", []) if w in d.wards] if entry_id in shipped else []
        if account.ward and entry_id in shipped:
            wards = [account.ward]  # a ward account only ever changes its own ward's version
        fields.update(
            entry_id=entry_id or None, category=category if category in CATEGORIES else None, title=title,
            answer=str(form.get("answer", "")).replace("\r\n", "\n").strip()[:4000],
            keywords=_items(str(form.get("keywords", ""))), links=_lines(str(form.get("links", ""))),
            related=_items(str(form.get("related", ""))),
            entry_source=" ".join(str(form.get("entry_source", "")).split())[:500] or DEFAULT_SOURCE, wards=wards)
    return fields


@requires("staff")
async def save(request: web.Request) -> web.Response:
    d = dash(request)
    account = viewer(request)
    row = _may_see(request, await d.queries.draft(path_id(request, NO_DRAFT)))
    here = f"/dashboard/kb/drafts/{row.id}"
    form = await request.post()
    op = str(form.get("op", "save"))
    if op == "archive":
        if row.state == "published" and not account.can("admin"):
            raise redirect(here, err="Chỉ quản trị viên được gỡ mục đã xuất bản.")
        await d.queries.update_draft(row.id, account.actor, "kb.draft.archive", state="archived")
        await d.queries.release_drafted(row.id)
        if row.state == "published" and d.overlay is not None:
            await d.overlay.refresh()
        raise redirect("/dashboard/kb/drafts", ok="Đã bỏ bản nháp.")
    if not _may_edit(request, row):
        raise redirect(here, err="Bạn không sửa được mục này (mục đã xuất bản chỉ quản trị viên sửa).")
    if row.state == "published":  # citizens get it at once: it must pass the publishing checks first
        problems = problems_of(dataclasses.replace(row, **await _fields(request, row, form)), d.runtime.knowledge.kb)
        if problems:
            raise redirect(here, err="Chưa lưu: " + " ".join(problems))
    state = "review" if op == "submit" else None
    await _save(request, row.id, form, state)
    if row.state == "published" and d.overlay is not None:
        await d.overlay.refresh()
    saved = await d.queries.draft(row.id)
    assert saved is not None
    if op == "submit":
        problems = problems_of(saved, d.runtime.knowledge.kb)
        if problems:
            await d.queries.update_draft(row.id, account.actor, "kb.draft.save", state="draft")
            raise redirect(here, err="Chưa gửi duyệt được: " + " ".join(problems))
        raise redirect(here, ok="Đã gửi duyệt. Quản trị viên sẽ xem và xuất bản.")
    raise redirect(here, ok="Đã lưu.")


@requires("admin")
async def publish(request: web.Request) -> web.Response:
    d = dash(request)
    account = viewer(request)
    row = _may_see(request, await d.queries.draft(path_id(request, NO_DRAFT)))
    here = f"/dashboard/kb/drafts/{row.id}"
    problems = problems_of(row, d.runtime.knowledge.kb)
    if problems:
        raise redirect(here, err="Chưa xuất bản được: " + " ".join(problems))
    now = dt.datetime.now(dt.UTC)
    if row.kind == "entry":  # the new version replaces earlier published versions of the same entry
        for other in await d.queries.drafts(None, ("published",)):
            if other.id != row.id and other.kind == "entry" and other.entry_id == row.entry_id and \
                    sorted(other.wards) == sorted(row.wards):
                await d.queries.update_draft(other.id, account.actor, "kb.draft.superseded", state="archived")
    await d.queries.update_draft(row.id, account.actor, "kb.publish", state="published", published_at=now,
                                 published_by=account.actor)
    await d.queries.resolve_drafted(row.id, row.entry_id or "", account.actor,
                                    "linked" if row.kind == "variants" else "resolved")
    if d.overlay is not None:
        await d.overlay.refresh()
    raise redirect(here, ok="Đã xuất bản. Trợ lý dùng ngay nội dung mới.")


@requires("admin")
async def unpublish(request: web.Request) -> web.Response:
    d = dash(request)
    account = viewer(request)
    row = _may_see(request, await d.queries.draft(path_id(request, NO_DRAFT)))
    await d.queries.update_draft(row.id, account.actor, "kb.unpublish", state="draft")
    if d.overlay is not None:
        await d.overlay.refresh()
    raise redirect(f"/dashboard/kb/drafts/{row.id}", ok="Đã gỡ khỏi trợ lý; nội dung trở lại bản nháp.")
