"""The per-message hot path made cheap: writes committed in groups (bot/storage/group_commit.py)
on both backends, PTB's requests on aiohttp (bot/channels/telegram_http.py) against the fake
Bot API, the keyboard as JSON, and the question-log text not normalised twice."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.channels.telegram_http import AiohttpRequest
from bot.storage.db import create_engine, migrate, session_factory
from bot.storage.group_commit import LogRow
from bot.storage.models import InboundEvent, QuestionLog, User
from bot.storage.store import Store
from tests.fakes.telegram_api import FakeTelegram


@pytest.fixture
async def store(database_url):
    engine = create_engine(database_url)
    await migrate(engine)
    store = Store(engine, "secret")
    yield store
    store.group.close()
    await engine.dispose()


async def rows(store: Store, model, *where):
    async with session_factory(store.engine)() as s:
        return list(await s.scalars(select(model).where(*where)))


async def test_many_messages_share_one_transaction_and_each_gets_its_own_result(store):
    users = [str(1000 + i) for i in range(30)]
    arrivals = await asyncio.gather(*(store.users.arrive(f"telegram:{i}", "telegram", u, "phuong-a" if i == 0 else None)
                                      for i, u in enumerate(users)))
    assert store.group.groups == 1 and store.group.writes == 60  # 30 claims + 30 users, one commit
    assert all(fresh for fresh, _user in arrivals)
    infos = [user for _fresh, user in arrivals]
    assert [u.platform_id for u in infos] == users and len({u.id for u in infos}) == 30
    assert infos[0].ward == "phuong-a" and infos[1].ward is None
    assert all(u.key == store.users.key_for("telegram", u.platform_id) for u in infos)

    texts = [f"câu hỏi {i}, gọi 0912 345 67{i % 10}" for i in range(30)]
    ids = await asyncio.gather(*(store.questions.log(u, t, t.lower(), "fallback", None, 1.5, ["a"], streak=1)
                                 for u, t in zip(infos, texts, strict=True)))
    assert store.group.groups == 2 and len(set(ids)) == 30
    logged = {r.id: r for r in await rows(store, QuestionLog)}
    for question_id, user, text in zip(ids, infos, texts, strict=True):  # each id is the caller's own row
        row = logged[question_id]
        assert row.user_key == user.key and row.text.startswith(text.split(",")[0]) and "0912" not in row.text
        assert "[SĐT]" in row.text and row.decision == "fallback" and row.alternatives == ["a"]
    assert {u.fallback_streak for u in await rows(store, User)} == {1}  # saved with the log rows

    again = await store.users.arrive("telegram:99", "telegram", users[0])  # a known user keeps their ward
    assert again[1].id == infos[0].id and again[1].ward == "phuong-a" and again[1].fallback_streak == 1


async def test_an_update_is_claimed_once_in_a_group_across_groups_and_across_processes(store):
    first, second = await asyncio.gather(store.claim_inbound_event("telegram:7"),
                                         store.claim_inbound_event("telegram:7"))
    assert (first, second) == (True, False)
    assert store.group.groups == 1
    other = Store(store.engine, "secret")  # another process: no memory of the key, only the database
    try:
        assert await other.claim_inbound_event("telegram:7") is False
        assert (await other.users.arrive("telegram:8", "telegram", "5"))[0] is True
        assert (await store.users.arrive("telegram:8", "telegram", "5"))[0] is False
    finally:
        other.group.close()
    assert sorted(r.key for r in await rows(store, InboundEvent)) == ["telegram:7", "telegram:8"]


async def test_a_bad_row_fails_only_its_own_caller(store):
    [user] = [u for _f, u in [await store.users.arrive("telegram:1", "telegram", "42")]]
    good = dict(channel="telegram", user_key=user.key, ward=None, text="vneid là gì", normalized="vneid la gi",
                decision="answer", faq_id="vneid.what", score=90.0, alternatives=[])
    bad = {**good, "text": None}  # NOT NULL
    results = await asyncio.gather(store.group.submit(LogRow(good)), store.group.submit(LogRow(bad)),
                                   store.group.submit(LogRow(good)), return_exceptions=True)
    assert isinstance(results[1], IntegrityError)
    assert [r.text for r in await rows(store, QuestionLog)] == ["vneid là gì", "vneid là gì"]
    assert {r.id for r in await rows(store, QuestionLog)} == {results[0][0], results[2][0]}


# --- PTB on aiohttp ------------------------------------------------------------------------------


async def test_aiohttp_request_sends_like_ptb_and_maps_failures():
    async with FakeTelegram() as fake:
        fake.add_private_chat(42, first_name="Lan")
        base_url = fake.base_url
        bot = Bot(fake.token, base_url=base_url, request=AiohttpRequest(read_timeout=0.5))
        async with bot:
            message = await bot.send_message(42, "<b>Xin chào</b> bạn", parse_mode="HTML")
            assert fake.texts_to(42, plain=True) == ["Xin chào bạn"] and message.message_id
            assert fake.calls("sendMessage")[0].content_type == "application/x-www-form-urlencoded"
            with pytest.raises(BadRequest, match="(?i)chat not found"):
                await bot.send_message(43, "x")
            fake.set_outage(5, "timeout", hang=3)
            started = time.monotonic()
            with pytest.raises(TimedOut):
                await bot.send_message(42, "x")
            assert time.monotonic() - started < 2  # the read timeout, not the hang
            fake.set_outage(5, "disconnect")
            with pytest.raises(NetworkError):
                await bot.send_message(42, "x")
            fake.clear_outage()
    down = Bot(fake.token, base_url=base_url, request=AiohttpRequest())  # the server is gone
    with pytest.raises(NetworkError):
        async with down:
            pass


def test_aiohttp_request_takes_the_proxy_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    request = AiohttpRequest()
    assert request._proxy("https://api.telegram.org/bot1:x/getMe") == "http://proxy.example:3128"
    assert request._proxy("http://127.0.0.1:8081/bot1:x/getMe") is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert request._proxy("https://api.telegram.org/bot1:x/sendMessage") == "http://proxy.example:3128"  # cached


def test_the_keyboard_sent_as_json_is_the_one_ptb_would_send():
    from bot.channels.telegram import keyboard, keyboard_json
    from bot.contracts.messages import Button, Link, Reply

    reply = Reply("x", [[Button("Đăng ký tài khoản VNeID mức 2 cho người cao tuổi ở phường " * 2, "faq:a")],
                        [Button("👍", "fb:up:1:a"), Button("👎", "fb:down:1:a")]], [Link("vneid.gov.vn", "https://vneid.gov.vn")])
    assert keyboard_json(reply) == keyboard(reply).to_dict()
    assert keyboard_json(Reply("x")) is None and keyboard(Reply("x")) is None


def test_the_logged_form_is_the_same_when_the_matchers_normalisation_is_reused(knowledge):
    from bot.privacy import loggable

    normalize = knowledge.normalizer.normalized
    texts = ["Quên mật khẩu VNeID thì làm sao ạ", "cho em hoi cccd o dau", "gọi 0912 345 678 giúp tôi",
             "email a.b@gmail.com", "tôi gõ [SĐT] vào đây", "  ", "091/234/5678"]
    for text in texts:
        assert loggable(text, normalize, normalize(text)) == loggable(text, normalize)
