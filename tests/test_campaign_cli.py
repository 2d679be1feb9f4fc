"""`python -m bot campaign ...` in-process (the same parser and code, without a subprocess per
call): link buttons, quiz files, who may create and approve, times in the past."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.runtime import open_store
from bot.settings import load_settings
from bot.storage.models import Campaign, Staff
from tests.helpers import cli_in_process


@pytest.fixture
def campaign_cli(database_url):
    settings = load_settings(_env_file=None, database_url=database_url, user_key_secret="x",
                             campaign_approval_threshold=1)

    async def seed() -> None:
        engine, store = await open_store(settings)
        for uid in (1, 2, 3):
            user = await store.users.touch("telegram", str(uid))
            await store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        async with store.sessions.begin() as s:
            s.add(Staff(username="lan", channel="telegram", platform_id="42", role="staff", active=True))
            s.add(Staff(username="minh", role="admin", active=True))
            s.add(Staff(username="xem", role="viewer", active=True))
        await engine.dispose()

    asyncio.run(seed())

    env = {"DATABASE_URL": database_url, "USER_KEY_SECRET": "x", "CAMPAIGN_APPROVAL_THRESHOLD": "1"}

    def call(*argv: str) -> tuple[int, str, str]:
        proc = cli_in_process("campaign", *argv, env=env)  # the settings above, from the environment
        return proc.returncode, proc.stdout, proc.stderr

    call.settings = settings
    return call


def stored(settings, campaign_id: int) -> Campaign:
    async def read() -> Campaign:
        engine, store = await open_store(settings)
        async with store.sessions() as s:
            row = await s.get(Campaign, campaign_id)
        await engine.dispose()
        return row

    return asyncio.run(read())


def test_links_and_quiz_files_in_json_and_yaml(campaign_cli, tmp_path):
    quiz_json = tmp_path / "quiz.json"
    quiz_json.write_text(json.dumps({"question": "Mã OTP có được đưa cho người khác không?",
                                     "options": ["Có", "Không"], "correct": 1,
                                     "explanation": "Không bao giờ chia sẻ OTP."}, ensure_ascii=False))
    code, out, err = campaign_cli(
        "create", "--title", "Cảnh báo lừa đảo", "--text", "Không chia sẻ OTP.", "--yes", "--by", "lan",
        "--link", "Cổng Dịch vụ công=https://dichvucong.gov.vn", "--link", "VNeID=https://vneid.gov.vn",
        "--quiz-file", str(quiz_json))
    assert code == 0, err
    row = stored(campaign_cli.settings, int(out.strip()))
    assert row.links == [{"label": "Cổng Dịch vụ công", "url": "https://dichvucong.gov.vn"},
                         {"label": "VNeID", "url": "https://vneid.gov.vn"}]
    assert row.quiz == {"question": "Mã OTP có được đưa cho người khác không?", "options": ["Có", "Không"],
                        "correct": 1, "explanation": "Không bao giờ chia sẻ OTP."}
    assert row.created_by == "lan"

    quiz_yaml = tmp_path / "quiz.yaml"
    quiz_yaml.write_text("question: Ứng dụng nào để định danh điện tử?\n"
                         "options: [VNeID, Zalo, Facebook]\ncorrect: 0\n", encoding="utf-8")
    code, out, err = campaign_cli("create", "--title", "Đố vui", "--text", "Thử sức nhé.", "--yes",
                                  "--quiz-file", str(quiz_yaml))
    assert code == 0, err
    row = stored(campaign_cli.settings, int(out.strip()))
    assert row.quiz["options"] == ["VNeID", "Zalo", "Facebook"] and row.quiz["correct"] == 0
    assert row.created_by.startswith("operator:")  # no --by: a named operator, not a staff member


@pytest.mark.parametrize(("quiz", "message"), [
    ({"question": "Q?", "options": ["A"], "correct": 0}, "2-12 phương án"),
    ({"question": "Q?", "options": [f"o{i}" for i in range(13)], "correct": 0}, "2-12 phương án"),
    ({"question": "Q?", "options": ["A", "B"], "correct": 2}, "đáp án đúng"),
    ({"question": "Q?", "options": ["A", "B"], "correct": True}, "đáp án đúng"),
    ({"question": "Q" * 301, "options": ["A", "B"], "correct": 0}, "300"),
    ({"question": "Q?", "options": ["A", "B" * 101], "correct": 0}, "100"),
    ({"question": "Q?", "options": ["A", "B"], "correct": 0, "explanation": "x" * 201}, "200"),
    ({"question": "Q?", "options": ["A", "B"], "correct": 0, "explanation": "a\nb\nc\nd"}, "xuống dòng"),
    ({"question": "Q?", "options": ["A", "a"], "correct": 0}, "khác nhau"),
    ({"question": "Q?", "options": ["A", "B"]}, "thiếu"),
    ({"question": "Q?", "options": ["A", "B"], "correct": 0, "answer": 1}, "thừa"),
])
def test_quiz_files_outside_telegram_poll_limits_are_refused(campaign_cli, tmp_path, quiz, message):
    path = tmp_path / "quiz.json"
    path.write_text(json.dumps(quiz))
    code, _out, err = campaign_cli("create", "--title", "T", "--text", "x", "--yes", "--quiz-file", str(path))
    assert code == 1 and message in err and "Traceback" not in err


def test_bad_links_times_and_names_are_refused_with_a_clear_message(campaign_cli, tmp_path):
    base = ("create", "--title", "T", "--text", "x", "--yes")
    cases = [
        (("--link", "Trang=http://example.com"), "NHÃN=https://"),
        (("--link", "chỉ có nhãn"), "NHÃN=https://"),
        (("--at", "2020-01-01T08:00"), "đã qua"),
        (("--expires", "2020-01-01T08:00"), "đã qua"),
        (("--at", "2099-01-02T08:00", "--expires", "2099-01-01T08:00"), "sau thời điểm gửi"),
        (("--by", "khach"), "không phải cán bộ"),
        (("--by", "xem"), "không phải cán bộ"),  # a viewer account
    ]
    for extra, message in cases:
        code, _out, err = campaign_cli(*base, *extra)
        assert code == 1 and message in err, (extra, err)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("question: [unclosed\n")
    code, _out, err = campaign_cli(*base, "--quiz-file", str(bad_yaml))
    assert code == 1 and "JSON/YAML" in err


def test_only_another_staff_member_approves_and_an_operator_never_does(campaign_cli):
    code, out, _ = campaign_cli("create", "--title", "T", "--text", "x", "--yes", "--by", "telegram:42")
    by_lan = int(out.strip())  # 3 recipients > threshold 1
    code, out, _ = campaign_cli("create", "--title", "T", "--text", "x", "--yes")
    by_operator = int(out.strip())
    operator = stored(campaign_cli.settings, by_operator).created_by
    code, _, err = campaign_cli("approve", str(by_lan), "--by", "lan")  # telegram:42 is lan
    assert code == 1 and "hai người" in err
    code, _, err = campaign_cli("approve", str(by_operator), "--by", operator)
    assert code == 1 and "không phải cán bộ" in err
    code, _, err = campaign_cli("approve", str(by_lan), "--by", "xem")
    assert code == 1 and "không phải cán bộ" in err
    assert campaign_cli("approve", str(by_lan), "--by", "minh")[0] == 0
    assert campaign_cli("approve", str(by_operator), "--by", "lan")[0] == 0
    code, out, _ = campaign_cli("status", str(by_lan), "--json")
    status = json.loads(out)
    assert status["state"] == "scheduled" and status["approved_by"] == "minh" and status["created_by"] == "telegram:42"
    code, _, err = campaign_cli("approve", str(by_lan), "--by", "lan")
    assert code == 1 and "không chờ duyệt" in err
