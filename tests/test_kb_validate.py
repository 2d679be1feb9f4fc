"""The validator reports every problem with file and entry id, and the CLI exits non-zero."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from knowledge.loader import TOPICS_FILES, collect, required_topic_ids, validate_knowledge

ROOT = Path(__file__).resolve().parent.parent
SHARED_TOPICS_2 = (ROOT.parent / "shared" / "kb" / "topics-2.yaml", Path("/work/shared/kb/topics-2.yaml"))

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


def test_default_coverage_requires_every_id_of_both_topic_files(tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    write(kb, "v.yaml", "entries:" + GOOD.format(id="vneid.what_is"))
    found = messages(kb, TOPICS_FILES)
    assert [p.name for p in TOPICS_FILES] == ["topics.yaml", "topics-2.yaml"]
    missing = {m.split(": ")[1] for m in found if m.endswith("required topic has no entry")}
    first, second = (set(required_topic_ids(p)) for p in TOPICS_FILES)
    assert len(second) == 26 and not first & second
    assert missing == (first | second) - {"vneid.what_is"}
    assert "topics-2.yaml: bot.smalltalk: required topic has no entry" in found
    assert "topics.yaml: vneid.install: required topic has no entry" in found
    assert collect(kb)[1] == collect(kb, None, TOPICS_FILES)[1]  # both files are the default


def test_several_topic_files_each_report_their_own_missing_ids(tmp_path: Path):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("vneid.a: {}\nvneid.b: {}\n", encoding="utf-8")
    two.write_text("vneid.c: {}\n", encoding="utf-8")
    kb = tmp_path / "kb"
    kb.mkdir()
    write(kb, "v.yaml", "entries:" + GOOD.format(id="vneid.a"))
    found = messages(kb, [one, two])
    assert found == ["one.yaml: vneid.b: required topic has no entry",
                     "two.yaml: vneid.c: required topic has no entry"]
    assert any("cannot read the required topic list" in m for m in messages(kb, [one, tmp_path / "gone.yaml"]))


def test_repository_copy_of_topics_2_matches_the_shared_file():
    shared = next((p for p in SHARED_TOPICS_2 if p.is_file()), None)
    if shared is None:
        pytest.skip(f"shared topics-2.yaml not found (looked at {', '.join(map(str, SHARED_TOPICS_2))})")
    ours = yaml.safe_load(TOPICS_FILES[1].read_text(encoding="utf-8"))
    assert ours == yaml.safe_load(shared.read_text(encoding="utf-8"))


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


def test_no_knowledge_file_repeats_a_key():
    """YAML keeps the last of two equal keys without a word: a lexicon phrase written twice with
    different expansions would silently lose one."""
    import collections

    repeats = []

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = collections.Counter(str(self.construct_object(key, deep=deep)) for key, _ in node.value)
            repeats.extend(key for key, count in keys.items() if count > 1)
            return super().construct_mapping(node, deep)

    for path in sorted((ROOT / "knowledge").rglob("*.yaml")):
        yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - a safe loader
        assert not repeats, (path.name, repeats)
