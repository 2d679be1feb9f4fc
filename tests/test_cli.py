"""Command-line round trips: the entry point in a real subprocess, the commands in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ConfigurationError, load_settings
from tests.helpers import cli_in_process

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, input=stdin, capture_output=True,
        text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def test_match_cli_round_trip():
    lines = [
        {"id": "a", "text": "quên mật khẩu VNeID"},
        {"id": "b", "text": "thời tiết hà nội ngày mai"},
        {"id": 3, "text": ""},
    ]
    proc = cli_in_process("match", stdin="\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", 3]
    for o in out:
        assert set(o) == {"id", "decision", "faq_id", "score", "alternatives", "not_covered"}
        assert o["decision"] in ("answer", "suggest", "fallback")
    assert out[0]["faq_id"] == "vneid.forgot_password"
    assert out[1]["decision"] == "fallback" and out[1]["faq_id"] is None
    assert out[2]["decision"] == "fallback"


def test_match_cli_reports_bad_lines_and_continues():
    stdin = ('{"id": "first", "text": "quên mật khẩu vneid"}\nnot json\n[1, 2]\n{"id": "x"}\n'
             '{"id": "y", "text": 5}\n{"id": "ok", "text": "vneid là gì"}\n')
    proc = cli_in_process("match", stdin=stdin)
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert out[0]["id"] == "first" and "error" not in out[0]
    # A line that is not JSON (or not an object) has no id: never the previous line's.
    assert out[1]["id"] is None and out[1]["line"] == 2 and "error" in out[1]
    assert out[2]["id"] is None and out[2]["line"] == 3 and "error" in out[2]
    assert out[3]["id"] == "x" and "error" in out[3]
    assert out[4]["id"] == "y" and "text must be a string" in out[4]["error"]
    assert out[5]["id"] == "ok" and out[5]["faq_id"] == "vneid.what_is"


def test_bad_setting_is_named_at_startup():  # what `python -m bot` itself prints and returns
    proc = run_cli("kb", "validate", env={"WEB_PORT": "not-a-port"})
    assert proc.returncode == 2
    assert "WEB_PORT" in proc.stderr and "Traceback" not in proc.stderr


def test_unreadable_knowledge_dir_is_named(tmp_path):
    proc = cli_in_process("match", env={"KNOWLEDGE_DIR": str(tmp_path / "nope")})
    assert proc.returncode == 2
    assert "KNOWLEDGE_DIR" in proc.stderr and "does not exist" in proc.stderr


def test_broken_local_knowledge_file_is_named_as_such(tmp_path):
    local = tmp_path / "local.yaml"
    local.write_text("entries: [ {id: dvc.service_center\n", encoding="utf-8")
    proc = cli_in_process("match", env={"KNOWLEDGE_LOCAL_FILE": str(local)})
    assert proc.returncode == 2
    assert f"KNOWLEDGE_LOCAL_FILE={local}" in proc.stderr and "invalid YAML" in proc.stderr
    assert "KNOWLEDGE_DIR" not in proc.stderr  # the shipped knowledge base is fine


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"match_answer_score": 50, "match_suggest_score": 60}, ["MATCH_SUGGEST_SCORE", "MATCH_ANSWER_SCORE"]),
        ({"telegram_api_base_url": "api.telegram.org"}, ["TELEGRAM_API_BASE_URL"]),
        ({"telegram_api_base_url": "ftp://files.example"}, ["TELEGRAM_API_BASE_URL"]),
        ({"event_loop": "trio"}, ["EVENT_LOOP"]),
    ],
)
def test_inconsistent_settings_are_refused_by_name(overrides, named):
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None, **overrides)
    assert all(name in str(caught.value) for name in named)


def test_self_hosted_bot_api_url_is_accepted_without_trailing_slash():
    settings = load_settings(_env_file=None, telegram_api_base_url="http://127.0.0.1:8081/")
    assert settings.telegram_api_base_url == "http://127.0.0.1:8081"


def test_terminal_chat_answers_and_presses_buttons(knowledge):
    proc = cli_in_process("chat", stdin="/menu\n1\nquen passcode vneid\n")
    assert proc.returncode == 0, proc.stderr
    # "1" pressed the first menu button: the VNeID topic list, with its entries' titles.
    vneid_titles = [e.title for e in knowledge.kb.in_category("vneid")]
    assert sum(title in proc.stdout for title in vneid_titles) >= 3
    # The typed question got the passcode entry's answer itself, not just a menu naming it.
    first_line = knowledge.kb.get("vneid.passcode").answer_text.splitlines()[0]
    assert first_line in proc.stdout


async def arun_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Like run_cli, without blocking the event loop (for tests that also serve fakes)."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())
