"""`/id` and the greeting on joining a group: the ids BOT_ADMINS and TEAM_CHATS need, found from
inside Telegram, through the real PTB Application against the fake Bot API."""

from __future__ import annotations

import asyncio

import pytest

from bot.contracts.messages import IncomingMessage
from handlers.answering import Answerer
from handlers.router import ConversationConfig
from tests.telegram_harness import TEAM_A, running_bot

NEW_GROUP = -1001234567890  # a supergroup not (yet) in TEAM_CHATS


@pytest.fixture
async def bot(database_url):
    async with running_bot(database_url) as harness:
        harness.fake.add_group(NEW_GROUP, "Tổ CNS phường C")
        yield harness


async def test_private_id_shows_the_user_id_in_bot_admins_form(bot):
    [reply] = await bot.say(2, "/id")
    assert "2" in reply.plain_text.split("\n")[0]
    assert "telegram:2" in reply.plain_text and "BOT_ADMINS" in reply.plain_text


async def test_id_in_an_unconfigured_group_answers_its_chat_id(bot):
    bot.fake.member_sends_in_group(NEW_GROUP, 5, "/id@TestBot")
    await bot.fake.wait_for_sent(1, timeout=8.0, chat_id=NEW_GROUP)
    [reply] = bot.fake.sent_to(NEW_GROUP)
    assert f"{NEW_GROUP}" in reply.plain_text
    assert f"phuong-a:{NEW_GROUP}" in reply.plain_text and "TEAM_CHATS" in reply.plain_text
    assert "đã được cấu hình" not in reply.plain_text


async def test_id_in_a_team_group_says_which_slug_uses_it(bot):
    bot.fake.member_sends_in_group(TEAM_A, 5, "/id")
    await bot.fake.wait_for_sent(1, timeout=8.0, chat_id=TEAM_A)
    [reply] = bot.fake.sent_to(TEAM_A)
    assert str(TEAM_A) in reply.plain_text and "phuong-a" in reply.plain_text.split("\n")[-1]


async def test_other_group_chatter_and_commands_stay_unanswered(bot):
    bot.fake.member_sends_in_group(NEW_GROUP, 5, "chào mọi người")
    bot.fake.member_sends_in_group(NEW_GROUP, 5, "/start")
    bot.fake.member_sends_in_group(NEW_GROUP, 5, "/id")  # processed after the two above
    await bot.fake.wait_for_sent(1, timeout=8.0, chat_id=NEW_GROUP)
    await asyncio.sleep(0.5)
    assert len(bot.fake.sent_to(NEW_GROUP)) == 1


@pytest.mark.parametrize("status", ["member", "administrator"])
async def test_added_to_a_group_posts_the_group_id_once(bot, status):
    bot.fake.bot_added_to_group(NEW_GROUP, 7, status=status)
    await bot.fake.wait_for_sent(1, timeout=8.0, chat_id=NEW_GROUP)
    await asyncio.sleep(0.5)  # the service message that came with it gets no answer
    [greeting] = bot.fake.sent_to(NEW_GROUP)
    assert "Xin chào" in greeting.plain_text and f":{NEW_GROUP}" in greeting.plain_text


async def test_removed_from_a_group_posts_nothing_and_rejoining_greets_again(bot):
    bot.fake.bot_added_to_group(NEW_GROUP, 7)
    await bot.fake.wait_for_sent(1, timeout=8.0, chat_id=NEW_GROUP)
    bot.fake.bot_removed_from_group(NEW_GROUP, 7)
    await asyncio.sleep(0.5)
    assert len(bot.fake.sent_to(NEW_GROUP)) == 1
    bot.fake.bot_added_to_group(NEW_GROUP, 7)
    await bot.fake.wait_for_sent(2, timeout=8.0, chat_id=NEW_GROUP)


async def test_id_command_is_offered_in_groups_only(bot):
    group_commands = [c["command"] for c in bot.fake.commands_for({"type": "all_group_chats"})]
    assert group_commands == ["id"]
    assert "id" not in [c["command"] for c in bot.fake.commands_for()]


@pytest.mark.parametrize(("channel", "platform"), [("zalo", "Zalo"), ("zalobot", "Zalo Bot")])
async def test_id_is_channel_neutral(knowledge, channel, platform):
    conversation = Answerer(knowledge, ConversationConfig(team_chats={"phuong-a": "g-1"}))
    [mine] = await conversation.handle(IncomingMessage(channel=channel, user_id="8123456789012345678", text="/id"))
    assert f"Mã người dùng {platform} của bạn: 8123456789012345678" in mine.text
    assert f"{channel}:8123456789012345678" in mine.text
    [group] = await conversation.handle(IncomingMessage(channel=channel, user_id="5", text="/id", chat_id="g-1",
                                                        chat_type="group"))
    assert "phuong-a:g-1" in group.text and "TEAM_CHATS: phuong-a." in group.text
