"""The conversation's routing contract: typed payloads and states that pack to the strings
buttons and the users table carry, route tables that refuse a clash, and the middleware
chain's rules (de-duplication that forgets a failed event, one flood rule for every channel),
through the in-process harness (real Conversation, SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bot.contracts import texts
from bot.contracts.messages import IncomingMessage, Reply
from bot.contracts.payloads import (
    AskTeam,
    CampaignSegment,
    CloseThread,
    Feedback,
    LeaveHandoff,
    Menu,
    Payload,
    PayloadError,
    Pick,
)
from bot.contracts.states import (
    AwaitingTeamQuestion,
    CampaignAwaitingExtra,
    CampaignAwaitingSegment,
    CampaignAwaitingText,
    Relaying,
)
from bot.runtime import conversation_config
from handlers.answering import STORAGE_COMMANDS, Answerer
from handlers.conversation import Conversation
from handlers.router import ConversationConfig, Router, Routes, Turn
from tests.conversation_harness import actions, conversation


def _all_payloads() -> list[type[Payload]]:
    found, todo = [], list(Payload.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_payloads_pack_to_the_strings_buttons_always_carried():
    assert Menu().pack() == "menu" and AskTeam().pack() == "human" and AskTeam(12).pack() == "human:12"
    assert AskTeam.about("0") == AskTeam() and AskTeam.about("7") == AskTeam(7)
    assert LeaveHandoff().pack() == "ho:leave" and CloseThread(5).pack() == "ho:close:5"
    assert Feedback("down", 3, "vneid.what_is").pack() == "fb:down:3:vneid.what_is"
    assert CampaignSegment(7, "all").pack() == "camp:seg:7:all"
    assert CampaignSegment(7, "w", "phuong-a").pack() == "camp:seg:7:w:phuong-a"
    assert CampaignSegment.unpack("camp:seg:7:all") == CampaignSegment(7, "all")
    assert CampaignSegment.unpack("camp:seg:7:t:dvc") == CampaignSegment(7, "t", "dvc")
    assert AskTeam.unpack("human") == AskTeam() and AskTeam.unpack("human:9") == AskTeam(9)


def test_payloads_refuse_what_does_not_fit():
    for bad in ("pick:x:a", "pick:-1:a", "pick:٣:a", "pick:99999999999:a", "pick:1", "pick:1:a:b", "pick::a",
                "pickle:1:a", "pick:1:" + "x" * 70):
        assert Pick.unpack(bad) is None, bad
    assert CloseThread.unpack("ho:leave") is None and LeaveHandoff.unpack("ho:close:1") is None
    with pytest.raises(PayloadError):
        Pick(1, "x" * 70).pack()
    with pytest.raises(PayloadError):
        Pick(1, "a:b").pack()


def test_every_payload_class_has_its_own_prefix():
    prefixes = [cls.PREFIX for cls in _all_payloads()]
    assert all(prefixes) and len(prefixes) == len(set(prefixes))


def test_states_pack_to_the_stored_strings():
    assert Relaying(42).pack() == "relay:42" and Relaying.unpack("relay:42") == Relaying(42)
    assert AwaitingTeamQuestion().pack() == "await_handoff_question"
    assert CampaignAwaitingText().pack() == "camp:text" and CampaignAwaitingSegment(3).pack() == "camp:seg:3"
    assert CampaignAwaitingExtra("link", 3).pack() == "camp:link:3"
    assert Relaying.unpack("relay:x") is None
    with pytest.raises(PayloadError):
        Relaying(10**40).pack()  # users.state holds 32 characters


def test_actions_and_states_are_parsed_and_built_only_by_their_classes():
    """No `split(":")` / `startswith` on an action or a stored state, and no button built from
    an f-string, outside bot/contracts/payloads.py and bot/contracts/states.py."""
    root = Path(__file__).resolve().parent.parent
    parsing = re.compile(r"(\baction\w*|\.action|user\.state)\.(split|partition|startswith|removeprefix)\(")
    building = re.compile(r'Button\([^()]*(\([^()]*\))?[^()]*, f"|state=f"')
    offenders = []
    for path in [*(root / "handlers").glob("*.py"), *(root / "bot").rglob("*.py")]:
        if path.name in ("payloads.py", "states.py") and path.parent.name == "contracts":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if parsing.search(line) or building.search(line):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []


def test_router_finds_the_longest_prefix_and_refuses_clashes():
    async def handler(*_args):
        return []

    router = Router([Routes(states={CampaignAwaitingExtra: handler, CampaignAwaitingSegment: handler})])
    assert router.state("camp:seg:3")[0] == CampaignAwaitingSegment(3)
    assert router.state("camp:img:3")[0] == CampaignAwaitingExtra("img", 3)
    assert router.state("") == (None, None) and router.state("relay:1") == (None, None)
    with pytest.raises(ValueError):
        Router([Routes(commands={"start": handler}), Routes(commands={"start": handler})])
    with pytest.raises(ValueError):
        Router([Routes(malformed={"camp": handler}), Routes(malformed={"camp": handler})])


async def test_every_button_the_conversation_shows_is_a_registered_payload(database_url):
    """Each action in the menus and answers unpacks with a class that has a route."""
    async with conversation(database_url) as bot:
        conv = bot.conversation
        replies: list[Reply] = [conv.category_reply("vneid"), conv.fallback_reply("5"),
                                conv.suggest_reply(["vneid.what_is"], "5"),
                                *conv.entry_replies(Turn(IncomingMessage("web", "1"), None), "vneid.what_is", "5")]
        pressed = [a for r in replies for a in actions(r)]
        assert pressed
        for action in pressed:
            payload, handler = conv.router.action(action)
            assert payload is not None and handler is not None, action


async def test_the_core_knows_which_commands_need_storage(database_url, knowledge):
    """The storage-free core (previews) answers the stateful features' commands with "not
    available here", not "unknown command": its list is exactly what those features register."""
    core = Answerer(knowledge)
    async with conversation(database_url) as bot:
        assert set(bot.conversation.router.commands) - set(core.router.commands) == set(STORAGE_COMMANDS)
    for command in STORAGE_COMMANDS:
        [reply] = await core.handle(IncomingMessage("api", "1", text=f"/{command}"))
        assert reply.text in (texts.NO_STORAGE, texts.STAFF_ONLY), command
    [unknown] = await core.handle(IncomingMessage("api", "1", text="/khongco"))
    assert unknown.text == texts.UNKNOWN_COMMAND


# --- middleware -------------------------------------------------------------------------------
async def test_a_failed_event_is_forgotten_so_its_redelivery_is_handled(database_url):
    """Handling that raises gets the apology and releases the event key: the platform's
    redelivery of the same event is answered; once answered, a further copy is a duplicate."""
    async with conversation(database_url) as bot:
        attempts = []

        async def flaky(turn):
            attempts.append(turn.msg.event_key)
            if len(attempts) == 1:
                raise RuntimeError("the database went away mid-turn")
            return [Reply("đã xử lý", kind="notice")]

        bot.conversation.router.add(Routes(commands={"thu": flaky}))  # a command: one line in a table
        event = IncomingMessage("telegram", "77", text="/thu", event_key="telegram:5001")
        [apology] = (await bot.conversation.respond(event)).replies
        assert apology.text == texts.INTERNAL_ERROR
        [answer] = (await bot.conversation.respond(event)).replies  # redelivered: handled
        assert answer.text == "đã xử lý"
        assert (await bot.conversation.respond(event)).replies == []  # handled once: a duplicate now
        other = bot.process()  # another process sharing the database sees the claim too
        other.router.add(Routes(commands={"thu": flaky}))
        assert (await other.respond(event)).replies == []
        assert attempts == ["telegram:5001", "telegram:5001"]


async def test_team_group_events_are_claimed_by_the_conversation_too(database_url):
    async with conversation(database_url, team_chats="default:-100") as bot:
        group = IncomingMessage("telegram", "9", text="/id", chat_id="-100", chat_type="group",
                                event_key="telegram:6001")
        [reply] = (await bot.conversation.respond(group)).replies
        assert "-100" in reply.text
        assert (await bot.conversation.respond(group)).replies == []


@pytest.mark.parametrize("channel", ["telegram", "zalo", "zalobot", "web"])
async def test_one_flood_rule_on_every_channel(database_url, channel):
    """Three messages a minute here: the fourth gets one notice, the fifth nothing; the Zalo
    adapters' own replies (numbered choices, quizzes) use the same rule and window."""
    async with conversation(database_url) as bot:
        config = dataclasses.replace(conversation_config(bot.settings), flood_limit_per_minute=3)
        conv = Conversation(bot.knowledge, bot.store, None, config)
        chat = bot.chat("flood", conv)
        chat.channel = channel
        assert (await chat.say("xin chào"))[0].text == texts.SMALLTALK_GREETING
        assert conv.flood.check(f"{channel}:flood") == "ok"  # what bot/channels/zalo_common.py calls
        assert (await chat.say("xin chào"))[0].text == texts.SMALLTALK_GREETING
        [notice] = await chat.say("xin chào")
        assert notice.text == texts.FLOOD
        assert await chat.say("xin chào") == []
        assert conv.flood.check(f"{channel}:flood") == "drop"
        assert (await bot.chat("someone else", conv).say("xin chào"))[0].text == texts.SMALLTALK_GREETING


async def test_no_flood_limit_means_none_for_the_channels_own_replies_too(knowledge):
    conv = Answerer(knowledge, ConversationConfig(flood_limit_per_minute=0))
    assert all(conv.flood.check("zalo:1") == "ok" for _ in range(50))


def test_numbered_quiz_options_are_typed_payloads_answered_by_the_channel():
    """Where a quiz is numbered text (Zalo, the terminal chat), each option is a QuizAnswer the
    channel answers itself; the conversation's table does not know the namespace."""
    from bot.channels.choices import quiz_reply, render
    from bot.contracts.messages import Button, Quiz
    from bot.contracts.payloads import QuizAnswer
    from handlers import channel_texts as ct

    reply = Reply("Câu đố", [[Button("Menu", Menu().pack())]], quiz=Quiz("OTP?", ["Có", "Không"], 1))
    rendered = render(reply)
    assert rendered.actions == ["menu", "quiz:0", "quiz:1"]
    answers = [QuizAnswer.unpack(a) for a in rendered.actions]
    assert answers == [None, QuizAnswer(0), QuizAnswer(1)]
    assert quiz_reply(rendered.quiz, answers[2].option, 2).text == ct.QUIZ_RIGHT
    assert quiz_reply(rendered.quiz, answers[1].option, 2).text.startswith(ct.QUIZ_WRONG.split("{")[0])
