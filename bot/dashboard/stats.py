"""Thống kê (statistics with SVG charts), Báo cáo (period report as HTML, CSV, XLSX) and CSV exports."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from bot.dashboard import charts, figures, periods
from bot.dashboard import clusters as clustering
from bot.dashboard.auth import requires
from bot.dashboard.campaigns import STATE_NAMES as CAMPAIGN_STATES
from bot.dashboard.common import (
    CHANNEL_NAMES,
    DECISION_NAMES,
    OUTCOME_NAMES,
    Filters,
    dash,
    filters_from,
    fmt_day,
    fmt_dt,
    local_today,
    markup,
    parse_day,
    render,
    viewer,
)
from bot.storage.dashboard_queries import CampaignFigures, Scope, campaign_ward
from bot.storage.errors import DatabaseError

log = logging.getLogger(__name__)


@dataclass
class Data:
    questions: list
    feedback: list
    handoffs: list
    subscribers: dict
    deliveries: list | None  # None: campaign figures unavailable
    campaigns: list[CampaignFigures] = field(default_factory=list)


async def gather(request: web.Request, scope: Scope, per_campaign: bool = False) -> Data:
    q = dash(request).queries
    campaigns: list[CampaignFigures] = []
    try:
        deliveries = await q.campaign_deliveries(scope)
        if per_campaign:
            campaigns = await q.campaign_figures(scope)
    except DatabaseError:  # the campaign tables belong to another module; never break the page
        log.warning("campaign figures unavailable", exc_info=True)
        deliveries = None
    return Data(await q.questions(scope), await q.feedback(scope), await q.handoffs(scope),
                await q.subscribers_by_ward(scope.ward, scope.channel), deliveries, campaigns)


DELIVERY_PARTS = (("Đã gửi", ("sent",), charts.GREEN), ("Lỗi, không nhận được", ("failed", "blocked"), charts.RED),
                  ("Bỏ qua", ("skipped",), charts.GREY), ("Không chắc đã gửi", ("uncertain",), charts.AMBER),
                  ("Chờ gửi", ("pending", "sending"), charts.BLUE))


def _campaign_charts(data: Data) -> tuple[str, str]:
    states = figures.delivery_states(data.deliveries or [])
    split = charts.split_bar([(name, sum(states[s] for s in keys), color) for name, keys, color in DELIVERY_PARTS],
                             title="Tin chiến dịch theo kết quả gửi")
    top = data.campaigns[:10]
    sent = charts.hbar_chart([f"#{c.id} {c.title}" for c in top], [c.counts.get("sent", 0) for c in top],
                             title="Tin đã gửi theo chiến dịch", color=charts.GREEN)
    return split, sent


def overall(data: Data) -> figures.Totals:
    return figures.totals(data.questions, data.feedback, data.handoffs, sum(data.subscribers.values()),
                          data.deliveries or [])


@requires("viewer")
async def stats_page(request: web.Request) -> web.Response:
    d = dash(request)
    f = filters_from(request)
    data = await gather(request, f.scope(), per_campaign=True)
    t = overall(data)
    days = figures.per_day(data.questions, f.start, f.end)
    per_day = charts.bar_chart([fmt_day(day)[:5] for day, _n in days], [n for _d, n in days],
                               title="Số câu hỏi mỗi ngày", unit="câu hỏi")
    buckets, unit, series = figures.rates_over_time(data.questions, f.start, f.end)
    rates = charts.line_chart(
        [fmt_day(b)[:5] for b in buckets],
        [("Trả lời", series["answer"], charts.GREEN), ("Gợi ý", series["suggest"], charts.AMBER),
         ("Chưa trả lời được", series["fallback"], charts.RED)],
        title="Tỉ lệ trả lời, gợi ý, chưa trả lời được theo " + ("tuần" if unit == "week" else "ngày"),
        top_value=100, suffix="%")
    topics = figures.top_topics(data.questions, d.runtime.knowledge.kb)
    top_chart = charts.hbar_chart([title for _id, title, _n in topics.entries], [n for *_x, n in topics.entries],
                                  title="Các mục được hỏi nhiều nhất")
    feedback_chart = charts.split_bar([("👍 Hữu ích", t.helpful, charts.GREEN),
                                       ("👎 Chưa hữu ích", t.unhelpful, charts.RED)], title="Đánh giá của người dân")
    subs = sorted(data.subscribers.items(), key=lambda kv: -kv[1])
    subs_chart = charts.hbar_chart([d.ward_name(w) for w, _n in subs], [n for _w, n in subs],
                                   title="Người đăng ký nhận tin theo xã/phường", color=charts.GREEN)
    buckets, unit, opened, answered = figures.handoffs_over_time(data.handoffs, f.start, f.end)
    handoff_chart = charts.line_chart(
        [fmt_day(b)[:5] for b in buckets], [("Gửi cán bộ", opened, charts.BLUE), ("Được trả lời", answered, charts.GREEN)],
        title="Câu hỏi gửi cán bộ và câu trả lời theo " + ("tuần" if unit == "week" else "ngày"))
    delivery_chart, campaign_chart = _campaign_charts(data)
    ward = viewer(request).ward
    return render(request, "stats.html", page="stats", filters=f, t=t, topics=topics, data=data,
                  per_day=markup(per_day), rates=markup(rates), top_chart=markup(top_chart),
                  feedback_chart=markup(feedback_chart), subs_chart=markup(subs_chart),
                  handoff_chart=markup(handoff_chart), delivery_chart=markup(delivery_chart),
                  campaign_chart=markup(campaign_chart), CAMPAIGN_STATES=CAMPAIGN_STATES,
                  may_open=lambda c: not ward or campaign_ward(c.segment) == ward)


# --- report -----------------------------------------------------------------------------------------
COLUMNS = ["Xã/phường", "Số câu hỏi", "Trả lời", "Tỉ lệ trả lời (%)", "Gợi ý", "Tỉ lệ gợi ý (%)",
           "Chưa trả lời được", "Tỉ lệ chưa trả lời được (%)", "Đánh giá hữu ích", "Đánh giá chưa hữu ích",
           "Tỉ lệ hài lòng (%)", "Yêu cầu gặp cán bộ", "Đã được trả lời", "Thời gian trả lời (trung vị, giờ)",
           "Người đăng ký nhận tin", "Tin chiến dịch đã gửi", "Tin chiến dịch lỗi",
           "Chào hỏi, cảm ơn, trò chuyện (không tính là câu hỏi)"]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def report_row(name: str, t: figures.Totals) -> list:
    return [name, t.questions, t.answer, _pct(t.rate("answer")), t.suggest, _pct(t.rate("suggest")), t.fallback,
            _pct(t.rate("fallback")), t.helpful, t.unhelpful, _pct(t.feedback_ratio), t.handoffs_opened,
            t.handoffs_answered, None if t.median_answer_hours is None else round(t.median_answer_hours, 1),
            t.subscribers, t.campaign_sent, t.campaign_failed, t.smalltalk]


@dataclass
class Report:
    title: str
    filters: Filters
    period_key: str
    rows: list[list]
    total: list
    topics: figures.Topics


async def build_report(request: web.Request) -> Report:
    d = dash(request)
    today = local_today()
    key = request.query.get("period", "")
    chosen = periods.by_key(key, today) if key and key != "custom" else None
    if chosen is None and key != "custom":
        chosen = periods.default_period(today)
    f = filters_from(request)
    if chosen is not None:
        f.start, f.end = chosen.start, chosen.end
        title = chosen.label
    else:
        f.start = parse_day(request.query.get("from")) or f.start
        f.end = parse_day(request.query.get("to")) or f.end
        title = f"Từ {fmt_day(f.start)} đến {fmt_day(f.end)}"
    data = await gather(request, f.scope())
    wards = [f.ward] if f.ward else list(d.wards)
    per_ward = figures.by_ward(data.questions, data.feedback, data.handoffs, data.subscribers,
                               data.deliveries or [], wards)
    rows = [report_row(d.ward_name(w), t) for w, t in per_ward.items()]
    total = report_row("Tổng cộng", overall(data))
    topics = figures.top_topics(data.questions, d.runtime.knowledge.kb, limit=15)
    return Report(title, f, chosen.key if chosen else "custom", rows, total, topics)


@requires("viewer")
async def report_page(request: web.Request) -> web.Response:
    report = await build_report(request)
    today = local_today()
    return render(request, "report.html", page="report", report=report, columns=COLUMNS,
                  choices=periods.choices(today), today=today)


def _filename(report: Report, ext: str) -> str:
    return f"bao-cao-{report.filters.start.isoformat()}-{report.filters.end.isoformat()}.{ext}"


@requires("viewer")
async def report_csv(request: web.Request) -> web.StreamResponse:
    report = await build_report(request)
    await _audit(request, "export.report_csv", report.title)
    return csv_response(_filename(report, "csv"), COLUMNS, [*report.rows, report.total])


@requires("viewer")
async def report_xlsx(request: web.Request) -> web.StreamResponse:
    report = await build_report(request)
    await _audit(request, "export.report_xlsx", report.title)
    body = await asyncio.to_thread(xlsx_bytes, report)
    return _download(body, _filename(report, "xlsx"),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _append(ws, values: Sequence) -> None:
    """Append a row; strings stay text (openpyxl would store "=..." as a formula)."""
    ws.append(list(values))
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def xlsx_bytes(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "Báo cáo"
    ws.append(["Báo cáo trợ lý dịch vụ công số"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([f"Kỳ báo cáo: {report.title}"])
    ws.append([])
    ws.append(COLUMNS)
    for cell in ws[4]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in [*report.rows, report.total]:
        _append(ws, row)
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    ws.column_dimensions["A"].width = 28
    for i in range(2, len(COLUMNS) + 1):
        ws.column_dimensions[get_column_letter(i)].width = 14
    ws.freeze_panes = "B5"
    topics = wb.create_sheet("Chủ đề")
    topics.append(["Mục", "Tiêu đề", "Số lần"])
    for cell in topics[1]:
        cell.font = Font(bold=True)
    for faq_id, title, n in report.topics.entries:
        _append(topics, [faq_id, title, n])
    topics.column_dimensions["A"].width = 32
    topics.column_dimensions["B"].width = 60
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- CSV ------------------------------------------------------------------------------------------
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Spreadsheets skip leading spaces (and invisible characters) and read full-width ＝＋－＠ as
# formula signs too: " =HYPERLINK(...)" and "＝HYPERLINK(...)" run like "=HYPERLINK(...)".
_LEADING_BLANKS = re.compile(r"[\s\u00a0\u180e\u200b-\u200f\u2060-\u2064\ufeff]*")


def inert(value: object) -> object:
    """A citizen's text starting like a formula (=HYPERLINK(...)), also after spaces or in
    full-width signs, is shown as text, not run by Excel."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(FORMULA_START):
        return "'" + value
    rest = value[_LEADING_BLANKS.match(value).end():]  # type: ignore[union-attr]
    if rest and unicodedata.normalize("NFKC", rest[0]).startswith(FORMULA_START[:4]):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """UTF-8 CSV with a byte-order mark, so Excel shows Vietnamese letters correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else inert(v) for v in row])
    return "\ufeff" + buf.getvalue()


def _download(body: bytes, filename: str, content_type: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type)
    response.headers["Content-Disposition"] = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    return response


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> web.Response:
    response = _download(csv_text(header, rows).encode("utf-8"), filename, "text/csv")
    response.charset = "utf-8"
    return response


async def _audit(request: web.Request, action: str, target: str | None = None) -> None:
    await dash(request).runtime.store.audit_trail.record(viewer(request).actor, action, target)


UNANSWERED_COLUMNS = ["Câu hỏi tiêu biểu", "Số lần hỏi", "Lần đầu", "Lần gần nhất", "Xã/phường", "Kênh",
                      "Lý do", "Dự đoán của trợ lý", "Điểm", "Các cách hỏi khác"]
QUESTION_COLUMNS = ["Mã", "Thời gian", "Kênh", "Xã/phường", "Câu hỏi", "Kết quả", "Mục trả lời", "Điểm",
                    "Phản hồi"]
REASONS = {"fallback": "Chưa trả lời được", "unhelpful": "Đánh giá chưa hữu ích", "not_these": "Gợi ý không đúng"}


@requires("viewer")
async def export_unanswered(request: web.Request) -> web.Response:
    d = dash(request)
    f = filters_from(request)
    rows = await d.queries.unanswered(f.scope())
    found = clustering.build(rows, await d.queries.triage(viewer(request).ward), d.runtime.knowledge.matcher,
                             limit=10_000)
    out = []
    for c in found:
        others = [t for t, _n in c.texts.most_common(10) if t != c.representative]
        out.append([c.representative, c.count, fmt_dt(c.first_seen), fmt_dt(c.last_seen),
                    ", ".join(d.ward_name(w) for w in c.wards), ", ".join(CHANNEL_NAMES.get(x, x) for x in c.channels),
                    ", ".join(REASONS.get(r, r) for r in c.reasons), c.guess_title or "",
                    None if c.guess_score is None else round(c.guess_score, 1), " | ".join(others)])
    await _audit(request, "export.unanswered_csv", f.query())
    return csv_response(f"cau-hoi-chua-tra-loi-{f.start}-{f.end}.csv", UNANSWERED_COLUMNS, out)


@requires("viewer")
async def export_questions(request: web.Request) -> web.Response:
    d = dash(request)
    f = filters_from(request)
    rows = await d.queries.questions(f.scope())
    out = [[q.id, fmt_dt(q.created_at), CHANNEL_NAMES.get(q.channel, q.channel), d.ward_name(q.ward), q.text,
            DECISION_NAMES.get(q.decision, q.decision), q.faq_id or "", round(q.score, 1),
            OUTCOME_NAMES.get(q.outcome or "", q.outcome or "")] for q in reversed(rows)]
    await _audit(request, "export.questions_csv", f.query())
    return csv_response(f"nhat-ky-cau-hoi-{f.start}-{f.end}.csv", QUESTION_COLUMNS, out)


@requires("admin")
async def audit_page(request: web.Request) -> web.Response:
    rows = await dash(request).queries.audit_log(viewer(request).ward)
    return render(request, "audit.html", page="audit", rows=rows)

