"""Zalo Bot Platform channel: the real service against the fake Bot API (tests/fakes/zalo_bot.py),
by getUpdates long polling and by webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

import aiohttp
import pytest

from bot.contracts import texts
from bot.contracts.delivery import RecipientGone
from bot.contracts.messages import Reply
from bot.storage.models import InboundEvent, QuestionLog, Subscription, User
from tests.fakes.zalo_bot import FakeZaloBot
from tests.zalo_harness import bot_settings, choices, eventually, number_of, running

CHAT = "e4ea2cd5189df1c3a88c"
SECRET = "s3cret-token-for-tests"
HOOK_URL = "https://bot.example.vn/zalobot/hook"  # what Zalo is told; we listen on its path


@pytest.fixture
async def zbot():
    async with FakeZaloBot(max_long_poll=0.2) as fake:
        yield fake


async def say(fake: FakeZaloBot, svc, text: str) -> list[str]:
    """A citizen's text picked up by getUpdates; the texts the bot sent back."""
    before = len(fake.sent_to(CHAT))
    fake.user_sends_text(CHAT, text)
    await fake.wait_for_sent(before + 1, chat_id=CHAT)
    await svc.channel("zalobot").idle()
    return fake.texts_to(CHAT)[before:]


async def test_polling_conversation(zbot, database_url):
    async with running(bot_settings(zbot, database_url)) as svc:
        assert [r.method for r in zbot.calls("deleteWebhook")] == ["deleteWebhook"]  # polling excludes a webhook
        [menu] = await say(zbot, svc, "/start")
        assert menu.startswith(texts.GREETING) and "Gõ một số từ 1 đến" in menu
        await eventually(lambda: any(p.error_code == 408 for p in zbot.calls("getUpdates")))  # a quiet poll
        [category] = await say(zbot, svc, number_of(choices(menu), "VNeID"))
        assert "VNeID" in category.split("\n")[0]
        [answer] = await say(zbot, svc, "quen mat khau vneid thi lam the nao")
        assert "Gõ" in answer and "👍 Hữu ích" in answer
        [log] = await svc.rows(QuestionLog)
        assert (log.channel, log.decision) == ("zalobot", "answer")

        before = len(zbot.sent_to(CHAT))
        zbot.user_sends_image(CHAT, caption="giấy tờ")
        [ask] = [m.text for m in await zbot.wait_for_sent(before + 1, chat_id=CHAT)][before:]
        assert ask == texts.ASK_TYPE_TEXT

    # Each getUpdates returned one update (a dict) or 408 "no update", and polling went on after a 408.
    polls = zbot.calls("getUpdates")
    assert {p.error_code for p in polls if not p.ok} == {408}
    assert all(isinstance(p.response["result"], dict) for p in polls if p.ok)
    first_timeout = next(i for i, p in enumerate(polls) if p.error_code == 408)
    assert any(p.ok for p in polls[first_timeout:])


async def test_polling_with_errors_as_http_200(database_url):
    async with FakeZaloBot(max_long_poll=0.1, errors_as_http_status=False) as fake, \
            running(bot_settings(fake, database_url)) as svc:
        await eventually(lambda: any(p.error_code == 408 for p in fake.calls("getUpdates")))
        [menu] = await say(fake, svc, "/start")
        assert menu.startswith(texts.GREETING)
        assert all(p.status == 200 for p in fake.calls("getUpdates"))


async def test_webhook_mode(zbot, database_url):
    settings = bot_settings(zbot, database_url, zalo_bot_webhook_url=HOOK_URL, zalo_bot_webhook_secret=SECRET)
    async with running(settings) as svc:
        assert zbot.webhook["url"] == HOOK_URL and zbot.webhook["secret_token"] == SECRET
        local = svc.base + "/zalobot/hook"
        channel = svc.channel("zalobot")
        flat = zbot.make_update("message.text.received", CHAT, text="/start")
        wrapped = zbot.make_update("message.text.received", CHAT, text="/menu", shape="B")

        async def post(body, headers) -> int:
            async with aiohttp.ClientSession() as http, http.post(local, data=body, headers=headers) as resp:
                return resp.status

        # Refused before anything is processed.
        assert await zbot.deliver_webhook([flat], url=local, secret_token="wrong-secret") == [403]
        assert await zbot.deliver_webhook([flat], url=local, secret_token="") == [401]
        good = {"X-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
        assert await post(b'{"event_name": "message.text.rec', good) == 400
        assert await post(b'{"x": "' + b"y" * 70_000 + b'"}', good) == 413
        # Authentic but not an update we know: acknowledged (or Zalo would resend it) and ignored.
        assert await post(b'{"ok": true, "result": {"event_name": "bot.added"}}', good) == 200
        await channel.idle()
        assert zbot.sent == [] and await svc.count(User) == 0 and await svc.count(InboundEvent) == 0

        # Both envelopes the sources describe; a redelivered update is handled once.
        assert await zbot.deliver_webhook([flat], url=local) == [200]
        assert await zbot.deliver_webhook([wrapped], url=local, shape="B") == [200]
        assert await zbot.deliver_webhook([flat], url=local) == [200]
        await channel.idle()
        sent = zbot.texts_to(CHAT)
        assert len(sent) == 2 and sent[0].startswith(texts.GREETING) and sent[1].startswith(texts.MENU_PROMPT)
        assert zbot.calls("getUpdates") == []


async def test_long_replies_are_split_at_2000_characters(zbot, database_url):
    async with running(bot_settings(zbot, database_url)) as svc:
        zbot.add_user(CHAT)
        text = ("Bà con mang căn cước đến bộ phận một cửa của phường để được hướng dẫn. " * 60).strip()
        assert 4000 < len(text) <= 6000  # one paragraph: it must be cut between words
        await svc.channel("zalobot").send(CHAT, Reply(text))
        parts = zbot.texts_to(CHAT)
        assert len(parts) == 3 and all(len(p) <= 2000 for p in parts)
        assert " ".join(parts).split() == text.split()  # nothing lost, no word cut


async def test_emoji_heavy_replies_are_split_in_utf16_units(zbot, database_url):
    async with running(bot_settings(zbot, database_url)) as svc:
        zbot.add_user(CHAT)
        exact = "🇻🇳" * 500  # 1,000 characters, 2,000 UTF-16 units: one message
        lines = ["😀" * 900] * 3  # two lines are 1,801 characters but 3,601 units: one message each
        await svc.channel("zalobot").send(CHAT, Reply(exact))
        await svc.channel("zalobot").send(CHAT, Reply("\n".join(lines)))
        assert zbot.texts_to(CHAT) == [exact, *lines]
        assert all(r.ok for r in zbot.calls("sendMessage"))


async def test_rate_limit_and_server_errors_are_retried(zbot, database_url):
    async with running(bot_settings(zbot, database_url)) as svc:
        zbot.add_user(CHAT)
        zbot.fail_next("sendMessage", 429)
        zbot.fail_next("sendMessage", 502)
        await svc.channel("zalobot").send(CHAT, Reply("Thông báo lịch tiếp dân."))
        assert zbot.texts_to(CHAT) == ["Thông báo lịch tiếp dân."]
        assert [r.status for r in zbot.calls("sendMessage")] == [429, 502, 200]


async def test_send_to_a_citizen_who_blocked_the_bot_raises_recipient_gone(zbot, database_url):
    async with running(bot_settings(zbot, database_url)) as svc:
        zbot.add_user(CHAT)
        user = await svc.store.users.touch("zalobot", CHAT)
        await svc.store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        zbot.fail_next("sendMessage", 403)  # what the adapter reads as "blocked" (Zalo documents none)
        with pytest.raises(RecipientGone):
            await svc.channel("zalobot").send(CHAT, Reply("Cán bộ trả lời: bạn mang căn cước đến phường nhé."))
        [row], [subscription] = await svc.rows(User), await svc.rows(Subscription)
        assert row.active is False and subscription.active is False and zbot.sent == []
