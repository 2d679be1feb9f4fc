"""The validator reports every problem with file and entry id, and the CLI exits non-zero."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from knowledge.loader import collect, validate_knowledge

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
  - id: {id}
    category: vneid
    title: "Tiêu đề {id}"
    questions: ["Câu hỏi một?", "Câu hỏi hai?"]
    answer: "Trả lời đủ dài cho mục {id}."
    links: [https://vneid.gov.vn]
    related: []
    source: "https://vneid.gov.vn"
    reviewed: 2026-11-22
"""


def write(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(textwrap.dedent(body), encoding="utf-8")


def messages(directory: Path, topics: Path) -> list[str]:
    _, problems = collect(directory, None, topics)
    return [str(p) for p in problems]


def test_shipped_knowledge_base_is_valid():
    assert validate_knowledge(ROOT / "knowledge") == []


def test_every_problem_reported_with_file_and_id(tmp_path: Path):
    topics = tmp_path / "topics.yaml"
    topics.write_text("vneid.a: {}\nvneid.missing: {}\n", encoding="utf-8")
    kb = tmp_path / "kb"
    kb.mkdir()
    long_answer = "x" * 1300
    write(
        kb,
        "one.yaml",
        "entries:" + GOOD.format(id="vneid.a") + GOOD.format(id="vneid.a")
        + f"""
  - id: vneid.bad
    category: nowhere
    title: "Bad"
    questions: []
    answer: "{long_answer}"
    links: [http://example.com]
    related: [vneid.ghost]
    source: "x"
    reviewed: not-a-date
  - id: vneid.long
    category: vneid
    title: "Quá dài"
    questions: ["a?"]
    answer: "{long_answer}"
    links: [http://vneid.gov.vn]
    related: [vneid.ghost]
    source: "somewhere"
    reviewed: 2026-11-22
""",
    )
    write(kb, "broken.yaml", "entries: [ {id: x\n")
    found = messages(kb, topics)
    joined = "\n".join(found)
    assert "one.yaml: vneid.a: duplicate id" in joined
    assert "one.yaml: vneid.bad: category" in joined
    assert "one.yaml: vneid.bad: questions" in joined
    assert "one.yaml: vneid.bad: reviewed" in joined
    assert "one.yaml: vneid.long: answer is 1300 characters" in joined
    assert "one.yaml: vneid.long: link 'http://vneid.gov.vn' must be an https:// URL" in joined
    assert "one.yaml: vneid.long: related id 'vneid.ghost' does not exist" in joined
    assert "topics.yaml: vneid.missing: required topic has no entry" in joined
    assert "broken.yaml: invalid YAML" in joined


def test_cli_exits_non_zero_and_lists_problems(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    write(kb, "x.yaml", "entries:" + GOOD.format(id="vneid.a").replace("vneid.gov.vn]", "vneid.gov.vn, ftp://x]"))
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "kb", "validate", "--dir", str(kb)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "x.yaml: vneid.a: link 'ftp://x' must be an https:// URL" in proc.stdout
    assert "required topic has no entry" in proc.stdout  # the real topic list is enforced


def test_local_overrides_replace_and_specialise_by_ward(tmp_path: Path):
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    write(kb_dir, "v.yaml", "entries:" + GOOD.format(id="vneid.a") + GOOD.format(id="vneid.b"))
    local = tmp_path / "local.yaml"
    local.write_text(
        "entries:\n"
        "  - id: vneid.a\n    answer: 'Địa chỉ chung mới của phường.'\n"
        "  - id: vneid.b\n    wards: [phuong-a]\n    answer: 'Riêng phường A: số 1 phố X.'\n",
        encoding="utf-8",
    )
    kb, problems = collect(kb_dir, local, topics_file=None)
    assert problems == []
    assert kb.get("vneid.a").answer == "Địa chỉ chung mới của phường."
    assert kb.get("vneid.b").answer.startswith("Trả lời")
    assert kb.get("vneid.b", ward="phuong-a").answer.startswith("Riêng phường A")
    assert kb.get("vneid.b", ward="phuong-khac").answer.startswith("Trả lời")


def test_missing_topic_list_is_a_problem_not_a_silent_skip(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    write(kb, "v.yaml", "entries:" + GOOD.format(id="vneid.a"))
    found = messages(kb, tmp_path / "gone" / "topics.yaml")
    assert any("cannot read the required topic list" in m for m in found), found
    assert collect(kb, None, topics_file=None)[1] == []  # skipping is explicit


def test_unknown_placeholder_in_an_answer_is_a_problem(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    write(kb, "v.yaml", "entries:" + GOOD.format(id="vneid.a").replace(
        'answer: "Trả lời', 'answer: "Lưu {retention_days} ngày, gọi {hotline}. Trả lời'))
    found = messages(kb, None)
    assert any("vneid.a: unknown placeholder {hotline}" in m for m in found), found
    assert not any("{retention_days}" in m.split("known:")[0] for m in found)


def test_privacy_answer_states_the_configured_retention():
    from bot.runtime import Runtime
    from bot.settings import load_settings

    runtime = Runtime.build(load_settings(_env_file=None, log_retention_days=30))
    answer = runtime.knowledge.kb.get("bot.privacy").answer
    assert "30 ngày" in answer and "{retention_days}" not in answer
    # A knowledge base swapped in later (dashboard overlays) is filled the same way.
    runtime.knowledge.replace(collect(ROOT / "knowledge")[0])
    assert "30 ngày" in runtime.knowledge.kb.get("bot.privacy").answer
