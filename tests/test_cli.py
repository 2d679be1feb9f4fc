"""Command-line round trips in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    proc = run_cli("match", stdin="\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", 3]
    for o in out:
        assert set(o) == {"id", "decision", "faq_id", "score", "alternatives"}
        assert o["decision"] in ("answer", "suggest", "fallback")
    assert out[0]["faq_id"] == "vneid.forgot_password"
    assert out[1]["decision"] == "fallback" and out[1]["faq_id"] is None
    assert out[2]["decision"] == "fallback"


def test_match_cli_reports_bad_lines_and_continues():
    proc = run_cli("match", stdin='not json\n{"id": "x"}\n{"id": "ok", "text": "vneid là gì"}\n')
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "error" in out[0] and "error" in out[1]
    assert out[2]["id"] == "ok" and out[2]["faq_id"] == "vneid.what_is"


def test_bad_setting_is_named_at_startup():
    proc = run_cli("kb", "validate", env={"WEB_PORT": "not-a-port"})
    assert proc.returncode == 2
    assert "WEB_PORT" in proc.stderr and "Traceback" not in proc.stderr


def test_unreadable_knowledge_dir_is_named(tmp_path):
    proc = run_cli("match", stdin="", env={"KNOWLEDGE_DIR": str(tmp_path / "nope")})
    assert proc.returncode == 2
    assert "KNOWLEDGE_DIR" in proc.stderr and "does not exist" in proc.stderr


def test_terminal_chat_answers_and_presses_buttons():
    proc = run_cli("chat", stdin="/menu\n1\nquen passcode vneid\n")
    assert proc.returncode == 0, proc.stderr
    assert "VNeID" in proc.stdout
    assert "Passcode" in proc.stdout or "passcode" in proc.stdout


async def arun_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Like run_cli, without blocking the event loop (for tests that also serve fakes)."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())
