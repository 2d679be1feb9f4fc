"""Pure pieces of the dashboard: reporting periods, SVG charts, clustering, overlay merging, CSV."""

from __future__ import annotations

import dataclasses
import datetime as dt
import xml.etree.ElementTree as ET

from bot.dashboard import charts, clusters, periods
from bot.dashboard.overlay import export_yaml, merge, problems_of, slug, suggest_id
from bot.dashboard.stats import csv_text
from bot.storage.dashboard_queries import DraftRow, QuestionRow, TriageRow, text_key

NOW = dt.datetime(2026, 5, 1, 3, tzinfo=dt.UTC)


def test_default_report_period_follows_decree_09_cutoffs():
    assert periods.half_year(2026).start == dt.date(2025, 12, 15)
    assert periods.half_year(2026).end == dt.date(2026, 6, 14)
    assert (periods.full_year(2026).start, periods.full_year(2026).end) == (dt.date(2025, 12, 15), dt.date(2026, 12, 14))
    assert periods.default_period(dt.date(2026, 3, 1)).key == "6t-2026"
    assert periods.default_period(dt.date(2026, 7, 1)).key == "6t-2026"  # six-month report being written
    assert periods.default_period(dt.date(2026, 9, 1)).key == "nam-2026"
    assert periods.default_period(dt.date(2026, 12, 20)).key == "nam-2026"  # the year just closed
    assert periods.default_period(dt.date(2027, 1, 10)).key == "nam-2026"
    assert [p.key for p in periods.choices(dt.date(2026, 12, 20), years=1)] == ["6t-2027", "nam-2027"]
    assert periods.by_key("nam-2025", dt.date(2026, 1, 1)).end == dt.date(2025, 12, 14)
    assert periods.by_key("nam-1999", dt.date(2026, 1, 1)) is None and periods.by_key("x", dt.date(2026, 1, 1)) is None


def test_charts_are_valid_svg_with_escaped_labels():
    svg = charts.bar_chart(["01/05", "<script>"], [3, 7], title="Số câu hỏi & ngày")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and "<script>" not in svg and "&lt;script&gt;" in svg
    assert len([e for e in root.iter() if e.tag.endswith("rect")]) == 2
    line = charts.line_chart(["a", "b", "c"], [("Trả lời", [50.0, None, 70.0], charts.GREEN)], title="t",
                             top_value=100, suffix="%")
    ET.fromstring(line)
    assert "70%" in line
    ET.fromstring(charts.hbar_chart(["Phường A"], [5], title="x"))
    ET.fromstring(charts.split_bar([("👍", 3, charts.GREEN), ("👎", 1, charts.RED)], title="x"))
    assert "Chưa có dữ liệu" in charts.bar_chart(["a"], [0], title="x")
    assert charts.nice_max(7) == 10 and charts.nice_max(130) == 200 and charts.nice_max(0) == 1


def test_count_charts_have_whole_number_ticks():
    def ticks(svg: str) -> list[str]:
        return [e.text for e in ET.fromstring(svg).iter() if e.tag.endswith("text") and e.get("text-anchor") == "end"]

    assert ticks(charts.bar_chart(["a", "b"], [1, 0], title="x")) == ["0", "1"]
    assert ticks(charts.bar_chart(["a"], [7], title="x")) == ["0", "2", "4", "6", "8"]
    assert ticks(charts.line_chart(["a", "b"], [("Gửi", [1, 3], charts.BLUE)], title="x")) == ["0", "1", "2", "3"]
    rates = ticks(charts.line_chart(["a", "b"], [("x", [10.0, 40.0], charts.GREEN)], title="x", top_value=100, suffix="%"))
    assert rates == ["0%", "25%", "50%", "75%", "100%"]
    for value in (0.5, 1, 3, 7, 11, 26, 130, 1234):
        top, intervals = charts.count_axis(value)
        assert top >= value and 1 <= intervals <= 5 and (top / intervals).is_integer()


def _q(text: str, ward: str | None = "phuong-a", outcome: str | None = None, minutes: int = 0) -> QuestionRow:
    return QuestionRow(1, NOW + dt.timedelta(minutes=minutes), "telegram", ward, text, text, "fallback", None, 0.0,
                       outcome, None)


def test_clusters_merge_rewordings_but_not_short_subsets():
    rows = [_q("quên mật khẩu vneid"), _q("vneid quên mật khẩu", minutes=5), _q("mật khẩu", ward="phuong-b"),
            _q("quên mật khẩu vneid", outcome="unhelpful"), _q("nuôi chó")]
    found = clusters.build(rows, {})
    assert [(c.forms[0], c.count) for c in found] == [("quên mật khẩu vneid", 3), ("mật khẩu", 1), ("nuôi chó", 1)]
    top = found[0]
    assert top.reasons == {"fallback": 2, "unhelpful": 1} and top.last_seen == NOW + dt.timedelta(minutes=5)
    closed = {text_key("nuôi chó"): TriageRow(text_key("nuôi chó"), "nuôi chó", "out_of_scope", None, None, "x", NOW)}
    assert [c.forms[0] for c in clusters.build(rows, closed)] == ["quên mật khẩu vneid", "mật khẩu"]


def test_a_copy_typed_without_diacritics_joins_its_accented_cluster():
    rows = [_q("quên mật khẩu vneid"), _q("quên mật khẩu vneid", minutes=1), _q("quen mat khau vneid", minutes=2),
            _q("mat khau"), _q("nuôi chó")]
    found = clusters.build(rows, {})
    assert [(c.forms, c.count) for c in found] == [
        (["quên mật khẩu vneid", "quen mat khau vneid"], 3), (["mat khau"], 1), (["nuôi chó"], 1)]
    # Linking the cluster closes every form in it (unanswered.action), the unaccented one too.
    closed = {text_key(f): TriageRow(text_key(f), f, "linked", None, None, "x", NOW) for f in found[0].forms}
    assert [c.forms for c in clusters.build(rows, closed)] == [["mat khau"], ["nuôi chó"]]


def _draft(**fields) -> DraftRow:
    base = dict(id=1, kind="entry", state="published", source="manual", entry_id="dvc.local_x", category="dvc",
                title="Mục thử", question="", answer="Câu trả lời đủ dài.", questions=["hỏi thử"],
                entry_source="https://dichvucong.gov.vn")
    base.update(fields)
    return DraftRow(**base)


def test_overlay_merge_adds_replaces_and_skips_broken_rows(knowledge):
    base = knowledge.kb
    rows = [_draft(), _draft(id=2, kind="variants", entry_id="vneid.forgot_password", questions=["mất pass"]),
            _draft(id=3, entry_id="dvc.service_center", wards=["phuong-a"], answer="Địa chỉ riêng phường A."),
            _draft(id=4, entry_id="BAD ID"), _draft(id=5, entry_id="dvc.local_y", related=["khong.co"])]
    kb, problems = merge(base, rows)
    assert kb.get("dvc.local_x").title == "Mục thử"
    assert "mất pass" in kb.get("vneid.forgot_password").questions
    assert kb.get("dvc.service_center", ward="phuong-a").answer == "Địa chỉ riêng phường A."
    assert kb.get("dvc.service_center").answer == base.get("dvc.service_center").answer
    assert kb.get("dvc.local_y").related == []  # a dangling related id is dropped, not fatal
    assert len(problems) == 1 and problems[0].startswith("#4")
    assert len(base) == len(knowledge.kb)  # the shipped knowledge base is not modified
    assert problems_of(_draft(title="", category=None, links=["http://x"]), base)
    assert any("https://" in p for p in problems_of(_draft(links=["http://x.vn"]), base))
    assert problems_of(_draft(kind="variants", entry_id="khong.co"), base)
    assert problems_of(_draft(), base) == []


def test_an_edited_shipped_entry_keeps_what_the_form_does_not_show(knowledge):
    base = knowledge.kb
    shipped = next(e for e in base.by_id.values() if e.facets)
    same = _draft(entry_id=shipped.id, category=shipped.category, title=shipped.title,
                  questions=[*shipped.questions, "thêm một cách hỏi"], answer=shipped.answer,
                  entry_source=shipped.source)
    kb, problems = merge(base, [same])
    assert problems == []
    edited = kb.get(shipped.id)
    assert "thêm một cách hỏi" in edited.questions
    assert edited.facets == shipped.facets  # follow-ups ("còn lệ phí thì sao?") still answer from it
    assert (edited.review_days, edited.uncertain) == (shipped.review_days, shipped.uncertain)
    text, count = export_yaml(base, [same])
    assert count == 1 and "facets:" in text
    changed = dataclasses.replace(same, answer="Câu trả lời mới, khác hẳn câu cũ, của cán bộ phường.")
    kb, _ = merge(base, [changed])
    assert kb.get(shipped.id).facets == {}  # parts of the old answer could contradict the new one


def test_ids_and_csv_encoding():
    assert slug("Làm thẻ Đoàn viên!") == "lam_the_doan_vien"
    long_title = "Đăng ký tham gia câu lạc bộ dưỡng sinh của phường vào buổi sáng"
    assert slug(long_title) == "dang_ky_tham_gia_cau_lac_bo_duong_sinh"  # whole words, at most 40 characters
    assert long_title.lower().startswith("đăng ký tham gia câu lạc bộ dưỡng sinh")
    assert slug("x" * 60) == "x" * 40 and slug("!!!") == "muc_moi"
    assert suggest_id("dvc", "Thẻ thư viện", {"dvc.local_the_thu_vien"}) == "dvc.local_the_thu_vien_2"
    text = csv_text(["Câu hỏi", "Số lần"], [["Quên mật khẩu, làm sao?", 3], ["x", None]])
    assert text.startswith("\ufeff") and '"Quên mật khẩu, làm sao?",3\r\n' in text and "x,\r\n" in text


def test_dashboard_settings_are_documented():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = (root / ".env.example").read_text(encoding="utf-8")
    names = ["DASHBOARD_SESSION_HOURS", "DASHBOARD_COOKIE_SECURE", "DASHBOARD_LOGIN_MAX_FAILURES",
             "DASHBOARD_LOGIN_LOCK_MINUTES", "TRUST_PROXY_HEADERS", "KB_RELOAD_SECONDS", "WEBCHAT_FRAME_ANCESTORS"]
    for name in names:
        assert f"| `{name}` |" in readme, name  # a row of the settings table
        assert f"\n{name}=" in example, name
    assert '<iframe src="https://' in readme and "## Staff dashboard" in readme and "staff add --username" in readme
