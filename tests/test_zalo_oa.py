"""Zalo Official Account channel: the real service driven through signed webhook posts against
the fake OA API and OAuth hosts (tests/fakes/zalo_oa.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

import pytest
from sqlalchemy import update

from bot.campaigns.service import CampaignDraft
from bot.contracts import texts
from bot.contracts.delivery import OutsideWindow
from bot.contracts.menus import menu_buttons
from bot.contracts.messages import Button, Reply
from bot.storage.models import (
    ChannelToken,
    Feedback,
    Handoff,
    HandoffMessage,
    InboundEvent,
    QuestionLog,
    Subscription,
    User,
    utcnow,
)
from bot.web import create_app
from tests.fakes._base import utf16_len
from tests.fakes.zalo_bot import FakeZaloBot
from tests.fakes.zalo_oa import FakeZaloOA
from tests.helpers import serve_app
from tests.telegram_harness import TEAM_DEFAULT, running_bot
from tests.zalo_harness import (
    USER,
    WEBHOOK,
    Service,
    choices,
    eventually,
    number_of,
    oa_say,
    oa_settings,
    options,
    running,
)

ANSWERED = "quen mat khau vneid thi lam the nao"  # the matcher answers this one outright
VAGUE = "mật khẩu"  # ... and offers suggestions for this one


@pytest.fixture
async def oa():
    async with FakeZaloOA() as fake:
        fake.add_user(USER)
        yield fake


def shown(messages) -> str:
    """Everything a citizen saw in some messages: texts, template texts and button titles."""
    parts = []
    for m in messages:
        parts.append(m.text if m.text is not None else m.template_text or "")
        parts += [b["title"] for b in m.buttons]
    return "\n".join(parts)


async def test_conversation_with_button_templates(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        menu = await oa_say(oa, svc, USER, "/start")
        assert menu and all(m.template_type == "button" for m in menu)
        assert all(1 <= len(m.buttons) <= 5 for m in menu)
        buttons = [b for m in menu for b in m.buttons]
        assert [b["payload"] for b in buttons] == [str(n) for n in range(1, len(buttons) + 1)]
        assert all(b["type"] == "oa.query.show" and b["title"].startswith(f"{b['payload']}. ") for b in buttons)
        assert menu[0].template_text.startswith(texts.GREETING)
        assert f"Gõ một số từ 1 đến {len(buttons)} để chọn." in menu[-1].template_text  # the typed-number hint

        # Tapping a button sends its payload back as the citizen's text, exactly like typing it.
        vneid = next(b for b in buttons if "VNeID" in b["title"])
        category = await oa_say(oa, svc, USER, vneid["payload"])
        assert "VNeID" in category[0].template_text

        answer = await oa_say(oa, svc, USER, ANSWERED)
        seen = shown(answer)
        assert "mật khẩu" in seen.lower() and "👍 Hữu ích" in seen
        [log] = await svc.rows(QuestionLog)
        assert (log.channel, log.decision) == ("zalo", "answer")

        # The feedback buttons of that answer, typed as a number.
        up = number_of(choices(seen), "Hữu ích")
        [thanks] = await oa_say(oa, svc, USER, up)
        assert thanks.text == texts.FEEDBACK_THANKS_UP
        [feedback] = await svc.rows(Feedback)
        assert feedback.helpful is True and feedback.faq_id == log.faq_id

        suggestions = await oa_say(oa, svc, USER, VAGUE)
        offered = choices(shown(suggestions))
        first = next(label for label, number in offered.items() if number == "1")
        picked = await oa_say(oa, svc, USER, "1")
        assert first.split("(")[0].strip()[:20] in shown(picked)
        logs = await svc.rows(QuestionLog, QuestionLog.decision == "suggest")
        assert logs[0].outcome == "picked"

        [out_of_range] = await oa_say(oa, svc, USER, "99")
        assert "Bạn vui lòng gõ một số từ 1 đến" in out_of_range.text


async def test_numbered_text_fallback(oa, database_url):
    async with running(oa_settings(oa, database_url, zalo_oa_interactive_buttons=False)) as svc:
        [menu] = await oa_say(oa, svc, USER, "/start")
        assert menu.attachment is None and menu.text.startswith(texts.GREETING)
        options = choices(menu.text)
        assert f"Gõ một số từ 1 đến {len(options)} để chọn." in menu.text
        [category] = await oa_say(oa, svc, USER, number_of(options, "VNeID"))
        assert "VNeID" in category.text.split("\n")[0]
        answer = await oa_say(oa, svc, USER, ANSWERED)
        assert "Gõ" in answer[-1].text and "👍 Hữu ích" in answer[-1].text


async def test_template_refused_falls_back_to_numbered_text(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        oa.fail_next("cs", -201, "template_type is invalid!")  # Zalo refuses the first template
        [menu] = await oa_say(oa, svc, USER, "/start")
        assert menu.attachment is None and menu.text.startswith(texts.GREETING)
        assert "Gõ một số từ 1 đến" in menu.text and "VNeID" in choices(menu.text)
        [again] = await oa_say(oa, svc, USER, "/menu")  # text from then on
        assert again.attachment is None


async def test_other_content_receipts_and_anonymous_chats(oa, database_url, caplog):
    async with running(oa_settings(oa, database_url)) as svc:
        url = svc.base + WEBHOOK
        assert (await oa.deliver_webhook(url, oa.make_event("user_send_image", USER)))[0] == 200
        await svc.channel().idle()
        [reply] = oa.sent_to(USER)
        assert reply.text == texts.ASK_TYPE_TEXT
        with caplog.at_level(logging.INFO, logger="bot.channels.zalo_oa"):
            for name in ("user_seen_message", "user_received_message", "anonymous_send_text"):
                assert (await oa.deliver_webhook(url, oa.make_event(name, USER, "xin chào")))[0] == 200
            await svc.channel().idle()
        assert len(oa.sent) == 1  # receipts and anonymous chats get no answer
        assert "anonymous_send_text not answered" in caplog.text


async def test_rejected_webhooks_have_no_side_effects(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        url = svc.base + WEBHOOK
        event = oa.make_event("user_send_text", USER, "quên mật khẩu")
        stale = oa.make_event("user_send_text", USER, "quên mật khẩu", timestamp=int((time.time() - 3600) * 1000))
        other_app = oa.make_event("user_send_text", USER, "quên mật khẩu", app_id="999")
        truncated = b'{"app_id": "' + oa.app_id.encode() + b'", "timestamp": "1", "event_name": "user_send_te'
        assert (await oa.deliver_webhook(url, event, secret="the-app-secret-by-mistake"))[0] == 403
        assert (await oa.deliver_webhook(url, event, signature="mac=" + "0" * 64))[0] == 403
        assert (await oa.deliver_webhook(url, event, signature=""))[0] == 401
        assert (await oa.deliver_webhook(url, stale))[0] == 403
        assert (await oa.deliver_webhook(url, other_app))[0] == 403
        assert (await oa.deliver_webhook(url, oa.make_event("user_send_text", USER, "x" * 70_000)))[0] == 413
        assert (await oa.deliver_webhook(url, truncated, timestamp="1"))[0] == 400
        assert (await oa.deliver_webhook(url, b'["a list"]', timestamp=""))[0] == 400
        await svc.channel().idle()
        assert oa.sent == []
        for model in (User, InboundEvent, QuestionLog):
            assert await svc.count(model) == 0, model

        # A retried (replayed) event is acknowledged but handled once.
        assert (await oa.deliver_webhook(url, event))[0] == 200
        await svc.channel().idle()
        answered = len(oa.sent)
        assert answered and await svc.count(QuestionLog) == 1
        assert (await oa.deliver_webhook(url, event))[0] == 200
        await svc.channel().idle()
        assert len(oa.sent) == answered and await svc.count(QuestionLog) == 1


async def test_follow_welcomes_and_unfollow_unsubscribes(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        url = svc.base + WEBHOOK
        assert (await oa.deliver_webhook(url, oa.make_event("follow", "777")))[0] == 200
        await svc.channel().idle()
        welcome = oa.sent_to("777")
        assert welcome and shown(welcome).startswith(texts.GREETING)

        user = await svc.store.users.touch("zalo", USER)
        await svc.store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        assert (await oa.deliver_webhook(url, oa.make_event("unfollow", USER)))[0] == 200
        await svc.channel().idle()
        [subscription] = await svc.rows(Subscription)
        [row] = await svc.rows(User, User.platform_id == USER)
        assert subscription.active is False and row.active is False
        assert oa.sent_to(USER) == []


async def test_typed_numbers_pass_the_flood_guard(oa, database_url):
    async with running(oa_settings(oa, database_url, flood_limit_per_minute=3)) as svc:
        await oa_say(oa, svc, USER, "/start")
        for _ in range(2):
            [hint] = await oa_say(oa, svc, USER, "99")  # out of range: answered by the adapter itself
            assert "Bạn vui lòng gõ một số từ 1 đến" in hint.text
        [notice] = await oa_say(oa, svc, USER, "99")
        assert notice.text == texts.FLOOD
        assert await oa_say(oa, svc, USER, "1") == []  # dropped, like any message over the limit


async def test_failed_event_is_not_remembered(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        channel = svc.channel()
        handled = []

        async def broken():
            raise RuntimeError("handler failed")

        async def works():
            handled.append(1)

        channel.take("zalo:test:m1", USER, broken)
        await channel.idle()
        assert await svc.count(InboundEvent) == 0
        channel.take("zalo:test:m1", USER, works)  # a redelivery is handled, not dropped
        await channel.idle()
        assert handled == [1]
        channel.take("zalo:test:m1", USER, works)  # once handled, it is a duplicate
        await channel.idle()
        assert handled == [1] and await svc.count(InboundEvent) == 1


async def test_one_citizens_events_in_order_others_not_held_up_no_locks_left(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        channel = svc.channel()
        order: list[str] = []

        def step(name: str, pause: float = 0.0):
            async def handle() -> None:
                order.append(f"{name}+")
                await asyncio.sleep(pause)
                order.append(f"{name}-")
            return handle

        channel.take("zalo:test:a1", USER, step("a1", 0.3))  # each key is claimed in the database first
        channel.take("zalo:test:a2", USER, step("a2"))
        channel.take("zalo:test:b1", "8000000000000000003", step("b1"))
        await channel.idle()
        assert order.index("a1-") < order.index("a2+")  # the same citizen: in order
        assert order.index("b1-") < order.index("a1-")  # another citizen does not wait
        for n in range(20):
            await oa_say(oa, svc, str(9000 + n), "/start")
        assert len(channel._locks) == 0  # one lock per citizen while busy, none kept after


# --- tokens ------------------------------------------------------------------------------


async def test_expired_token_refreshed_persisted_and_used_after_restart(oa, database_url):
    settings = oa_settings(oa, database_url)
    async with running(settings) as svc:
        oa.expire_token()
        assert await oa_say(oa, svc, USER, "/start")
        assert len(oa.refreshes) == 1 and oa.stats["token_rejected"] == 1
        [row] = await svc.rows(ChannelToken)
        assert (row.access_token, row.refresh_token) == (oa.access_token, oa.refresh_token)
        assert row.refresh_token != settings["zalo_oa_refresh_token"]
    # A restart with the same (now spent) tokens in the environment uses the stored pair.
    async with running(settings) as svc:
        assert await oa_say(oa, svc, USER, "/menu")
    assert len(oa.calls("refresh")) == 1 and oa.stats["token_rejected"] == 1


async def test_token_refreshed_before_it_expires(oa, database_url):
    settings = oa_settings(oa, database_url)
    async with running(settings) as svc:
        now = utcnow()
        async with svc.store.sessions.begin() as s:  # issued 10 s ago, valid 2 s more: due now
            await s.execute(update(ChannelToken).values(refreshed_at=now - dt.timedelta(seconds=10),
                                                        expires_at=now + dt.timedelta(seconds=2)))
    async with running(settings) as svc:
        async def stored_pair_is_new() -> bool:
            [row] = await svc.rows(ChannelToken)
            return bool(oa.refreshes) and row.refresh_token == oa.refresh_token

        await eventually(stored_pair_is_new)
        [row] = await svc.rows(ChannelToken)
        assert len(oa.refreshes) == 1 and row.expires_at > utcnow() + dt.timedelta(hours=24)
        assert await oa_say(oa, svc, USER, "/menu")
    assert oa.stats["token_rejected"] == 0  # refreshed in time, never refused


async def test_dead_new_token_does_not_burn_refresh_tokens(database_url):
    async with FakeZaloOA(expires_in=0) as oa:  # every token Zalo issues is refused (e.g. OA access revoked)
        oa.add_user(USER)
        async with running(oa_settings(oa, database_url)) as svc:
            assert await oa_say(oa, svc, USER, "/start") == []
            assert len(oa.calls("refresh")) == 1
            assert svc.runtime.channel_states["zalo"].startswith("down: the access token was refused")
            assert await oa_say(oa, svc, USER, "/menu") == []
            assert len(oa.calls("refresh")) == 1  # not one more per message
            [row] = await svc.rows(ChannelToken)
            assert row.refresh_token == oa.refresh_token  # the pair from the one refresh is kept


async def test_refused_refresh_token_is_not_retried_per_message(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        oa.expire_token()
        oa.revoke_refresh_token()
        assert await oa_say(oa, svc, USER, "/start") == []
        assert await oa_say(oa, svc, USER, "/menu") == []
        assert [r.ok for r in oa.calls("refresh")] == [False]
        assert svc.runtime.channel_states["zalo"].startswith("down: token refresh refused")


async def test_refresh_does_not_hold_up_webhooks(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        other = oa.add_user("8000000000000000001")
        oa.expire_token()
        oa.delay("refresh", 1.5)  # Zalo's OAuth host is slow today
        assert (await oa.deliver_webhook(svc.base + WEBHOOK, oa.make_event("user_send_text", USER, "/start")))[0] == 200
        await eventually(lambda: oa.holding("refresh"))  # the refresh is under way
        started = time.monotonic()
        status, _ = await oa.deliver_webhook(svc.base + WEBHOOK, oa.make_event("user_send_text", other, "/menu"))
        acked = time.monotonic() - started
        assert status == 200 and acked < 1.0, f"webhook acknowledged after {acked:.2f} s"
        await svc.channel().idle()
        assert oa.sent_to(USER) and oa.sent_to(other) and len(oa.refreshes) == 1


async def test_two_processes_refresh_once(oa, database_url):
    settings = oa_settings(oa, database_url)
    second = oa.add_user("8000000000000000002")
    async with running(settings) as one, running(settings) as two:
        oa.expire_token()
        oa.delay("refresh", 0.5)
        results = await asyncio.gather(
            oa.deliver_webhook(one.base + WEBHOOK, oa.make_event("user_send_text", USER, "/start")),
            oa.deliver_webhook(two.base + WEBHOOK, oa.make_event("user_send_text", second, "/start")))
        assert [status for status, _ in results] == [200, 200]
        await asyncio.gather(one.channel().idle(), two.channel().idle())
        assert oa.sent_to(USER) and oa.sent_to(second)
        assert [r.ok for r in oa.calls("refresh")] == [True]  # the spent refresh token was never reused


async def test_rate_limit_and_server_errors_are_retried(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        oa.fail_next("cs", -32)  # Zalo's rate limit
        menu = await oa_say(oa, svc, USER, "/start")
        assert menu and shown(menu).startswith(texts.GREETING)
        oa.fail_next("cs", http_status=502, count=2)
        again = await oa_say(oa, svc, USER, "/menu")
        assert [m.buttons for m in again] == [m.buttons for m in menu]  # delivered once, not duplicated by the retries
        assert oa.stats["error_-32"] == 1 and len([r for r in oa.calls("cs") if r.status == 502]) == 2


async def test_rate_limit_mid_reply_does_not_repeat_its_first_messages(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        oa.enforce_rate_limit(per_second=1)  # the menu's second template hits Zalo's limit
        menu = await oa_say(oa, svc, USER, "/start")
        assert oa.stats["rate_limited"] >= 1
        buttons = sum(len(row) for row in menu_buttons())
        assert [len(m.buttons) for m in menu] == [5, buttons - 5]  # each template once, in order
        assert menu[0].template_text.startswith(texts.GREETING)


async def test_reply_outside_the_window_raises_outside_window(oa, database_url):
    async with running(oa_settings(oa, database_url)) as svc:
        oa.set_last_interaction(USER, dt.datetime.now(dt.UTC) - dt.timedelta(days=8))
        with pytest.raises(OutsideWindow):
            await svc.channel().send(USER, Reply("Cán bộ trả lời: bạn mang căn cước đến phường nhé."))
        assert oa.sent == []


async def test_emoji_heavy_text_fits_zalo_limits_in_utf16_units(oa, database_url):
    """Zalo's 2,000 (text) and 100 (button title) are counted in UTF-16 units, an emoji being
    two: the fake refuses more (tests/fakes/_base.py says why)."""
    async with running(oa_settings(oa, database_url)) as svc:
        channel = svc.channel()
        exact = "😀" * 1000  # 2,000 units: one message
        await channel.send(USER, Reply(exact))
        assert oa.texts_to(USER) == [exact]
        lines = ["😀" * 900] * 3  # two lines are 1,801 characters but 3,601 units: one message each
        await channel.send(USER, Reply("\n".join(lines)))
        assert oa.texts_to(USER)[1:] == lines
        words = "Bà con 🇻🇳 nhớ cài VNeID 😀 " * 150  # one line, 3,900 characters, 4,350 units
        await channel.send(USER, Reply(words))
        parts = oa.texts_to(USER)[4:]
        assert len(parts) == 3 and all(utf16_len(p) <= 2000 for p in parts)  # cut between words
        assert " ".join(parts).split() == words.split()

        # A body that would fit a button template by characters, not by units: numbered text for
        # this reply (the template is not refused and then given up for good); a long label is
        # clipped to 100 units.
        await channel.send(USER, Reply("😀" * 1000, [[Button(texts.MENU, "menu")]]))
        assert oa.sent_to(USER)[-1].attachment is None and "1. " in oa.texts_to(USER)[-1]
        await channel.send(USER, Reply("Bạn chọn:", [[Button("😀" * 60, "menu")]]))
        [title] = [b["title"] for b in oa.sent_to(USER)[-1].buttons]
        assert title == "1. " + "😀" * 48
        assert all(r.response["error"] == 0 for r in oa.calls("cs")) and channel.buttons


# --- hand-off and campaigns across channels ------------------------------------------------


@contextlib.asynccontextmanager
async def with_telegram(oa: FakeZaloOA, database_url: str, **overrides):
    """The whole service: Telegram (team groups) and the Zalo OA, with its web app."""
    settings = oa_settings(oa, database_url, telegram_rate_per_second=200.0, **overrides)
    del settings["telegram_bot_token"], settings["wards"]  # the Telegram harness sets them
    async with running_bot(**settings) as bot, serve_app(create_app(bot.runtime)) as base:
        yield bot, Service(bot.runtime, base)


async def test_handoff_reply_from_telegram_team_reaches_zalo_citizen(oa, database_url):
    async with with_telegram(oa, database_url) as (bot, svc):
        await oa_say(oa, svc, USER, "con mèo nhà tôi bỏ ăn hai hôm nay")  # nothing in the knowledge base
        before = len(bot.fake.sent_to(TEAM_DEFAULT))
        handoff = await oa_say(oa, svc, USER, number_of(options(await oa_say(oa, svc, USER, "/menu")), "cán bộ"))
        assert handoff
        [post] = await bot.fake.wait_for_sent(before + 1, chat_id=TEAM_DEFAULT)
        post = bot.fake.sent_to(TEAM_DEFAULT)[-1]
        assert "con mèo" in (post.plain_text or "")

        sent = len(oa.sent_to(USER))
        await bot.team_reply(TEAM_DEFAULT, 555, post.message_id, "Bạn nên đưa mèo đến cơ sở thú y gần nhất.")
        await oa.wait_for_sent(sent + 1, user_id=USER)
        assert "Bạn nên đưa mèo đến cơ sở thú y gần nhất." in shown(oa.sent_to(USER)[sent:])
        [message] = await svc.rows(HandoffMessage, HandoffMessage.direction == "team")
        assert message.delivered is True

        # Outside Zalo's 7-day window the answer cannot go out yet: it stays queued.
        oa.set_last_interaction(USER, dt.datetime.now(dt.UTC) - dt.timedelta(days=8))
        bot.fake.member_replies_in_group(TEAM_DEFAULT, 555, post.message_id, "Bạn đã đưa mèo đi khám chưa?")
        queued = (HandoffMessage.direction == "team", HandoffMessage.delivered.is_(False))
        await eventually(lambda: svc.count(HandoffMessage, *queued))
        await eventually(lambda: oa.calls("cs")[-1].response["error"] == -230)
        assert [m.text for m in await svc.rows(HandoffMessage, *queued)] == ["Bạn đã đưa mèo đi khám chưa?"]
        assert len(oa.sent_to(USER)) == sent + 1
        assert (await svc.rows(Handoff))[0].user_id == (await svc.rows(User, User.platform_id == USER))[0].id


async def test_handoff_reply_to_a_citizen_who_unfollowed_is_not_reported_sent(oa, database_url):
    async with with_telegram(oa, database_url) as (bot, svc):
        await oa_say(oa, svc, USER, "con mèo nhà tôi bỏ ăn hai hôm nay")
        before = len(bot.fake.sent_to(TEAM_DEFAULT))
        assert await oa_say(oa, svc, USER, number_of(options(await oa_say(oa, svc, USER, "/menu")), "cán bộ"))
        await bot.fake.wait_for_sent(before + 1, chat_id=TEAM_DEFAULT)
        post = bot.fake.sent_to(TEAM_DEFAULT)[-1]

        oa.set_follower(USER, False)  # unfollowed, and the unfollow event never reached us
        sent = len(oa.sent_to(USER))
        [notice] = await bot.team_reply(TEAM_DEFAULT, 555, post.message_id, "Bạn nên đưa mèo đến thú y.")
        assert notice.plain_text == texts.GROUP_CITIZEN_GONE.format(id=1)  # not "✅ Đã gửi"
        assert oa.calls("cs")[-1].response["error"] == -213 and len(oa.sent_to(USER)) == sent
        [row] = await svc.rows(User, User.platform_id == USER)
        [message] = await svc.rows(HandoffMessage, HandoffMessage.direction == "team")
        [handoff] = await svc.rows(Handoff)
        assert row.active is False and handoff.state == "closed"
        assert message.delivered is False and message.delivery_error.startswith("recipient gone")


async def test_campaign_reaches_telegram_and_both_zalo_products(oa, database_url):
    async with FakeZaloBot(max_long_poll=0.2) as zbot, with_telegram(
            oa, database_url, zalo_bot_token=zbot.token, zalo_bot_api_base_url=zbot.base_url) as (bot, svc):
        rt = svc.runtime
        assert rt.channel_states["zalobot"] == "on"
        store = svc.store

        async def subscriber(channel: str, platform_id: str, wrote_days_ago: float = 0) -> None:
            user = await store.users.touch(channel, platform_id)
            await store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
            async with store.sessions.begin() as s:
                await s.execute(update(User).where(User.id == user.id).values(
                    last_inbound_at=utcnow() - dt.timedelta(days=wrote_days_ago)))

        for chat in (40, 41):
            bot.fake.add_private_chat(chat, first_name="Dân")
            await subscriber("telegram", str(chat))
        for uid in ("222", "333", "444"):
            oa.add_user(uid)
        await subscriber("zalo", "222")
        await subscriber("zalo", "333", wrote_days_ago=3)  # outside the 48 h campaign window
        await subscriber("zalo", "444")
        oa.set_last_interaction("444", dt.datetime.now(dt.UTC) - dt.timedelta(days=8))  # Zalo says -230
        zbot.add_user("b1")
        await subscriber("zalobot", "b1", wrote_days_ago=30)  # the Bot Platform has no such window

        campaigns = rt.campaigns
        assert await campaigns.count_recipients({}, "zalo") == 4  # both Zalo products
        assert await campaigns.count_recipients({}, "telegram") == 2
        assert await campaigns.count_recipients({}, "all") == 6
        campaign = await campaigns.create(CampaignDraft(
            title="Tuần lễ Bình dân học vụ số", text="Mời bà con đến nhà văn hoá học dùng VNeID.",
            created_by="cli", channel="all", wards=["phuong-a"]))
        while await rt.campaign_runner.run_once():
            pass

        status = await campaigns.status(campaign.id)
        assert status["deliveries"]["sent"] == 4 and status["deliveries"]["skipped"] == 2
        reasons = status["skipped_reasons"]
        assert reasons == {"zalo: no message from the citizen within 48 h (messaging window)": 1,
                           "zalo: citizen has not written to the OA for 7 days (error -230)": 1}
        for chat in (40, 41):
            assert "Tuần lễ Bình dân học vụ số" in bot.fake.sent_to(chat)[-1].plain_text
        assert "Tuần lễ Bình dân học vụ số" in oa.texts_to("222")[-1]
        assert oa.sent_to("333") == [] and oa.sent_to("444") == []
        assert "Tuần lễ Bình dân học vụ số" in zbot.texts_to("b1")[-1]


async def test_campaign_monthly_quota(oa, database_url):
    async with running(oa_settings(oa, database_url, zalo_oa_campaign_monthly_quota=2)) as svc:
        for uid in ("222", "333", "444"):
            oa.add_user(uid)
            user = await svc.store.users.touch("zalo", uid)
            await svc.store.subscriptions.save(user.id, ward="phuong-a", topics=[], active=True)
        rt = svc.runtime
        first = await rt.campaigns.create(CampaignDraft(title="Lịch tiếp dân", text="Thứ Năm hằng tuần.",
                                                        created_by="cli", channel="zalo"))
        while await rt.campaign_runner.run_once():
            pass
        status = await rt.campaigns.status(first.id)
        assert status["deliveries"]["sent"] == 2
        assert status["skipped_reasons"] == {"zalo: monthly quota of 2 campaign messages reached": 1}
        second = await rt.campaigns.create(CampaignDraft(title="Nhắc lịch", text="Thứ Năm tuần này.",
                                                         created_by="cli", channel="zalo"))
        while await rt.campaign_runner.run_once():
            pass
        assert (await rt.campaigns.status(second.id))["deliveries"]["skipped"] == 3  # used up this month
        assert len(oa.sent) == 2
