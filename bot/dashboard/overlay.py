"""Knowledge entries written by staff (the local overlay), merged into the served knowledge base.

Published overlay rows live in the database (table faq_drafts), so every process sees
them: each one polls a cheap fingerprint every KB_RELOAD_SECONDS and, when it changes,
rebuilds the matcher from the shipped entries plus the overlays and swaps it in without
a restart. `export_yaml` writes them in the knowledge-file format for curation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping

import yaml
from pydantic import ValidationError

from bot.localtime import vn_date
from bot.matching.normalize import fold
from bot.runtime import Runtime
from bot.storage.dashboard_queries import DashboardQueries, DraftRow
from bot.storage.kb_status import EntryStatus, KbStatusQueries
from knowledge.freshness import names_a_document
from knowledge.loader import KnowledgeBase
from knowledge.schema import CATEGORIES, ID_PATTERN, MAX_ANSWER_CHARS, Entry

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "Cán bộ xã/phường (bảng điều khiển)"  # what an empty source is stored as; not a source
SOURCE_NEEDED = ("Nguồn: cần ghi địa chỉ trang chính thức (https://...) hoặc tên văn bản làm căn cứ "
                 "(ví dụ: Quyết định số .../QĐ-UBND, Thông báo của UBND phường ngày ...).")
FIELD_NAMES = {"id": "Mã mục", "category": "Chủ đề", "title": "Tiêu đề", "questions": "Các cách hỏi",
               "keywords": "Từ khóa", "answer": "Câu trả lời", "links": "Liên kết", "related": "Mục liên quan",
               "source": "Nguồn", "reviewed": "Ngày rà soát", "wards": "Xã/phường"}


MAX_QUESTION_CHARS = 300
# Characters that show nothing: a wording made only of them (or of punctuation) matches nothing
# a citizen types and only hides what was added.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")


def clean_question(text: str) -> str | None:
    """A question wording as stored: invisible characters removed, spaces collapsed, cut to
    MAX_QUESTION_CHARS; None when no letter or digit is left."""
    line = " ".join(_INVISIBLE.sub("", text).split())[:MAX_QUESTION_CHARS].strip()
    return line if any(ch.isalnum() for ch in line) else None


def question_problems(questions: Iterable[str]) -> list[str]:
    """What is wrong with a list of wordings, in words staff understand (drafts and links alike)."""
    found = []
    if any(clean_question(q) is None for q in questions if q.strip()):
        found.append("Mỗi cách hỏi cần có chữ hoặc số đọc được (không chỉ ký tự ẩn hay dấu).")
    if any(len(q) > MAX_QUESTION_CHARS for q in questions):
        found.append(f"Mỗi cách hỏi tối đa {MAX_QUESTION_CHARS} ký tự.")
    return found


def slug(text: str, limit: int = 40) -> str:
    """'Làm thẻ thư viện' -> 'lam_the_thu_vien' (for entry ids): whole words up to `limit`
    characters; a first word longer than that is cut, as nothing else would fit."""
    words = re.sub(r"[^a-z0-9]+", " ", fold(text).lower().replace("đ", "d")).split()
    out = ""
    for word in words:
        candidate = f"{out}_{word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    return out or (words[0][:limit] if words else "muc_moi")


def suggest_id(category: str, title: str, taken: set[str]) -> str:
    base = f"{category}.local_{slug(title)}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def entry_from_draft(row: DraftRow, base: KnowledgeBase | None = None) -> Entry:
    """Build the entry a kind="entry" row describes; raises ValueError naming the bad field.

    An edit of a shipped entry (`base` holds it) keeps what the form does not show: the review
    period and the "uncertain" flag, and the answer's parts for follow-ups ("còn lệ phí thì
    sao?") while the answer is unchanged; a changed answer drops them, as they could
    contradict it (follow-ups then get the whole new answer)."""
    reviewed = (row.published_at or row.updated_at or dt.datetime.now(dt.UTC)).date()
    data = {
        "id": row.entry_id or "", "category": row.category or "", "title": (row.title or "").strip(),
        "questions": [q for q in row.questions if q.strip()], "keywords": [k for k in row.keywords if k.strip()],
        "answer": row.answer, "links": list(row.links), "related": list(row.related),
        "source": (row.entry_source or DEFAULT_SOURCE).strip(), "reviewed": reviewed, "wards": list(row.wards),
    }
    shipped = base.get(row.entry_id) if base is not None and row.entry_id else None
    if shipped is not None:
        data |= {"review_days": shipped.review_days, "uncertain": shipped.uncertain}
        if row.answer.strip() == shipped.answer.strip():
            data["facets"] = dict(shipped.facets)
    try:
        entry = Entry.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = FIELD_NAMES.get(str(err["loc"][0]) if err["loc"] else "", "Mục")
        raise ValueError(f"{name}: {err['msg']}") from None
    for link in entry.links:  # the loader checks shipped files the same way; links go to citizens as buttons
        if not link.startswith("https://") or any(ch.isspace() for ch in link):
            raise ValueError(f"Liên kết {link!r} phải là địa chỉ https://.")
    return entry


def problems_of(row: DraftRow, kb: KnowledgeBase) -> list[str]:
    """What keeps a draft from being published, in words staff understand."""
    if row.kind == "variants":
        found = []
        if not row.entry_id or kb.get(row.entry_id) is None:
            found.append(f"Không tìm thấy mục {row.entry_id!r} để thêm cách hỏi.")
        if not any(q.strip() for q in row.questions):
            found.append("Cần ít nhất một cách hỏi.")
        return found + question_problems(row.questions)
    found = question_problems(row.questions)
    if not row.title or len(row.title.strip()) < 3:
        found.append("Cần có tiêu đề (ít nhất 3 ký tự).")
    if row.category not in CATEGORIES:
        found.append("Cần chọn chủ đề.")
    if not row.entry_id or not ID_PATTERN.match(row.entry_id):
        found.append("Mã mục phải có dạng 'chude.ten_muc' (chữ thường không dấu, số, dấu _).")
    if not any(q.strip() for q in row.questions):
        found.append("Cần ít nhất một cách hỏi.")
    if len(row.answer.strip()) < 10:
        found.append("Câu trả lời cần ít nhất 10 ký tự.")
    if found:
        return found
    try:
        entry = entry_from_draft(row)
    except ValueError as exc:
        return [str(exc)]
    if len(entry.answer_text) > MAX_ANSWER_CHARS:
        found.append(f"Câu trả lời dài {len(entry.answer_text)} ký tự; tối đa {MAX_ANSWER_CHARS} ký tự "
                     "để vừa một tin nhắn.")
    for link in entry.links:
        if not link.startswith("https://") or " " in link:
            found.append(f"Liên kết {link!r} phải là địa chỉ https://.")
    if entry.id in entry.related:
        found.append("Mục liên quan không được là chính mục này.")
    if entry.source == DEFAULT_SOURCE or not names_a_document(entry.source):
        found.append(SOURCE_NEEDED)
    for rel in entry.related:
        if kb.get(rel) is None:
            found.append(f"Mục liên quan {rel!r} không tồn tại.")
    return found


def merge(base: KnowledgeBase, rows: Iterable[DraftRow]) -> tuple[KnowledgeBase, list[str]]:
    """Shipped entries plus published overlays; a broken overlay is skipped and reported."""
    entries = dict(base.by_id)
    ward_variants = dict(base.ward_variants)
    extra: dict[str, list[str]] = {}
    problems: list[str] = []
    rows = list(rows)
    for row in rows:
        if row.kind == "variants":
            extra.setdefault(row.entry_id or "", []).extend(q.strip() for q in row.questions if q.strip())
            continue
        try:
            entry = entry_from_draft(row, base)
        except ValueError as exc:
            problems.append(f"#{row.id}: {exc}")
            continue
        if entry.wards and entry.id in base.by_id:  # a ward's own version of a shipped entry
            for ward in entry.wards:
                ward_variants[(entry.id, ward)] = entry
        else:
            entries[entry.id] = entry
    for entry_id, questions in extra.items():
        entry = entries.get(entry_id)
        if entry is None:
            problems.append(f"{entry_id}: mục không còn tồn tại, bỏ qua các cách hỏi thêm")
            continue
        merged = list(dict.fromkeys([*entry.questions, *questions]))
        entries[entry_id] = entry.model_copy(update={"questions": merged})
    for entry_id, entry in list(entries.items()):  # drop dangling related ids rather than fail
        kept = [r for r in entry.related if r in entries]
        if kept != entry.related:
            entries[entry_id] = entry.model_copy(update={"related": kept})
    return KnowledgeBase(list(entries.values()), ward_variants), problems


def apply_status(kb: KnowledgeBase, statuses: Mapping[str, EntryStatus]) -> KnowledgeBase:
    """Recorded reviews (bot/storage/kb_status.py) on top of the entries: a later review moves
    `reviewed`, and the source it names goes first (citizens see its site); suspended ids are
    carried for the conversation to withhold."""

    def reviewed(entry: Entry) -> Entry:
        status = statuses.get(entry.id)
        if status is None or status.reviewed_at is None:
            return entry
        day = vn_date(status.reviewed_at)
        if day < entry.reviewed:  # the file was curated after this review
            return entry
        update: dict = {"reviewed": day}
        if status.review_source and not entry.source.startswith(status.review_source):
            update["source"] = f"{status.review_source}; {entry.source}"
        return entry.model_copy(update=update)

    suspended = frozenset(entry_id for entry_id, status in statuses.items() if status.suspended)
    return KnowledgeBase([reviewed(e) for e in kb.entries], {k: reviewed(e) for k, e in kb.ward_variants.items()},
                         suspended)


class OverlaySync:
    """Keeps runtime.knowledge = shipped knowledge + published overlays, in this process."""

    def __init__(self, runtime: Runtime, queries: DashboardQueries):
        self.runtime = runtime
        self.queries = queries
        self.base = runtime.knowledge.kb  # shipped files (+ KNOWLEDGE_LOCAL_FILE), before any overlay
        self.fingerprint: tuple | None = None
        self.problems: list[str] = []
        self.overlay_ids: set[str] = set()
        self.statuses: dict[str, EntryStatus] = {}  # recorded reviews and suspensions, as last applied
        self.status_queries = KbStatusQueries(queries.sessions)
        self._lock = asyncio.Lock()

    async def refresh(self, force: bool = False) -> bool:
        """Reload if published overlays changed; True when the served knowledge was replaced."""
        async with self._lock:
            fingerprint = (await self.queries.overlay_fingerprint(), await self.status_queries.fingerprint())
            if fingerprint == self.fingerprint and not force:
                return False
            rows = await self.queries.published_overlays()
            statuses = await self.status_queries.statuses()
            if not rows and not statuses and self.runtime.knowledge.kb is self.base:
                # Nothing published, reviewed or suspended: the shipped knowledge is what is served
                # (the common start), and indexing it again would cost a second of CPU.
                self.fingerprint, self.problems, self.statuses, self.overlay_ids = fingerprint, [], {}, set()
                return False
            kb, problems = merge(self.base, rows)
            kb = apply_status(kb, statuses)
            await asyncio.to_thread(self.runtime.knowledge.replace, kb)
            self.fingerprint, self.problems, self.statuses = fingerprint, problems, statuses
            self.overlay_ids = {r.entry_id for r in rows if r.entry_id}
            for problem in problems:
                log.warning("knowledge overlay skipped: %s", problem)
            log.info("knowledge base reloaded: %d entries (%d overlay rows)", len(kb), len(rows))
            return True

    async def run(self, interval: float) -> None:
        """Poll for changes published by any process (cancel the task to stop)."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("knowledge overlay refresh failed; will retry")
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def polling(sync: OverlaySync, interval: float):
    await sync.refresh(force=True)
    task = asyncio.create_task(sync.run(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- export ------------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    if "\n" in value:
        value = "\n".join(line.rstrip() for line in value.strip("\n").splitlines()) + "\n"
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)
ORDER = ("id", "category", "title", "questions", "keywords", "answer", "facets", "links", "related", "source",
         "reviewed", "review_days", "uncertain", "wards")
OPTIONAL = ("wards", "review_days", "uncertain", "facets")  # left out when empty


def _item(entry: Entry) -> dict:
    data = entry.model_dump()
    item = {name: data[name] for name in ORDER if name in data and (data[name] or name not in OPTIONAL)}
    if item.get("answer") and not item["answer"].endswith("\n"):
        item["answer"] += "\n"
    return item


def export_yaml(base: KnowledgeBase, rows: list[DraftRow],
                statuses: Mapping[str, EntryStatus] | None = None) -> tuple[str, int]:
    """Published overlays, and shipped entries reviewed since their file says, as a knowledge
    YAML file (usable as KNOWLEDGE_LOCAL_FILE); (text, entries)."""
    merged, _problems = merge(base, rows)
    merged = apply_status(merged, statuses or {})
    out: list[dict] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for row in rows:
        if not row.entry_id:
            continue
        if row.kind == "entry" and row.wards and row.entry_id in base.by_id:
            entry = merged.ward_variants.get((row.entry_id, row.wards[0]))
        else:
            entry = merged.get(row.entry_id)
        if entry is None:
            continue
        key = (entry.id, tuple(entry.wards) if entry is not merged.get(entry.id) else ())
        if key in seen:
            continue
        seen.add(key)
        out.append(_item(entry))
    for entry_id in sorted(statuses or {}):  # reviews of shipped entries wait here until curated
        entry = merged.get(entry_id)
        if entry is not None and (entry_id, ()) not in seen and entry != base.get(entry_id):
            seen.add((entry_id, ()))
            out.append(_item(entry))
    header = ("# Local knowledge entries exported from the dashboard (python -m bot kb export).\n"
              "# Curate them into the shipped files, or use this file as KNOWLEDGE_LOCAL_FILE.\n")
    body = yaml.dump({"entries": out}, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)
    return header + body, len(out)
