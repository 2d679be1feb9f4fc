"""Local entry points on the same conversation logic as the channels:

- `python -m bot chat`: chat in a terminal (numbered buttons, piped input welcome);
- `python -m bot converse`: JSON Lines in, one JSON line out per message, for scripts and
  benchmarks (bench/dialogue.py).

Both run the real `Conversation` with storage, so context, logging and the hand-off behave as
on a channel: on a temporary SQLite database (deleted at exit) unless DATABASE_URL is set,
and without the flood limit (one local user typing or a script piping is no flood).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.channels.choices import quiz_reply, render
from bot.contracts.messages import IncomingMessage, Reply
from bot.contracts.payloads import QuizAnswer
from bot.settings import Settings
from handlers import channel_texts as ct
from handlers.conversation import Conversation, Outcome
from handlers.verdict import Kind

CHANNEL = "cli"
TERMINAL_USER = "terminal"
TEMPORARY_NOTE = (
    "(Đang dùng cơ sở dữ liệu tạm, xóa khi thoát: câu hỏi và yêu cầu gặp cán bộ được ghi vào đó để thử. "
    "Đặt DATABASE_URL để dùng cơ sở dữ liệu thật; khi đó cán bộ trả lời trên trang quản trị.)"
)


@dataclass
class LocalSession:
    conversation: Conversation
    temporary: bool


@asynccontextmanager
async def local_session(settings: Settings, temporary: bool | None = None) -> AsyncIterator[LocalSession]:
    """A conversation with storage and no channels: DATABASE_URL when set, else (or when
    `temporary`) a temporary SQLite."""
    from bot.runtime import conversation_config, load_live_knowledge
    from bot.storage.store import open_store

    if temporary is None:
        temporary = "database_url" not in settings.model_fields_set
    with tempfile.TemporaryDirectory(prefix="bot-local-") as folder:
        if temporary:
            settings = settings.model_copy(
                update={"database_url": f"sqlite+aiosqlite:///{Path(folder) / 'local.sqlite3'}"})
        engine, store = await open_store(settings)
        try:
            config = conversation_config(settings)
            config.flood_limit_per_minute = 0
            yield LocalSession(Conversation(load_live_knowledge(settings), store, None, config), temporary)
        finally:
            store.group.close()
            await engine.dispose()


# --- terminal chat -------------------------------------------------------------------------
def render_turn(replies: list[Reply]) -> tuple[str, list[str], dict[str, Any] | None]:
    """The replies as text with the buttons numbered across the whole turn (1, 2, 3 ... as
    shown), the action behind each number, and the quiz if one was sent."""
    parts: list[str] = []
    actions: list[str] = []
    quiz = None
    for reply in replies:
        rendered = render(reply, start=len(actions) + 1)
        parts.append(rendered.text)
        actions += rendered.actions
        if rendered.quiz is not None:
            quiz = dict(rendered.quiz, first=rendered.start + len(rendered.actions) - len(rendered.quiz["options"]))
    return "\n\n".join(parts), actions, quiz


async def run_chat(settings: Settings, stdin: TextIO | None = None, out: Callable[[str], None] = print) -> int:
    stdin = stdin or sys.stdin
    piped = not stdin.isatty()
    loop = asyncio.get_running_loop()
    async with local_session(settings) as session:
        out("Gõ câu hỏi, số để bấm nút, /menu để xem chủ đề; Ctrl+D để thoát.")
        if session.temporary:
            out(TEMPORARY_NOTE)
        actions: list[str] = []
        quiz: dict[str, Any] | None = None
        while True:
            if not piped:
                print("> ", end="", flush=True)
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                return 0
            line = line.strip()
            if piped:
                out(f"> {line}")
            if not line:
                continue
            msg = IncomingMessage(CHANNEL, TERMINAL_USER, text=line)
            if line.isdigit() and actions:
                number = int(line)
                if not 1 <= number <= len(actions):
                    out(ct.OUT_OF_RANGE.format(last=len(actions)))
                    continue
                action = actions[number - 1]
                answer = QuizAnswer.unpack(action)
                if answer is not None and quiz is not None:
                    out(quiz_reply(quiz, answer.option, int(quiz.get("first", 1))).text)
                    continue
                msg = IncomingMessage(CHANNEL, TERMINAL_USER, action=action)
            replies = await session.conversation.handle(msg)
            text, actions, quiz = render_turn(replies)
            out(text)


# --- converse: JSON Lines ------------------------------------------------------------------
REPLY_KINDS = {kind.value: kind for kind in Kind}


class BadLine(ValueError):
    pass


def parse_line(line: str) -> tuple[Any, str, str]:
    """(id, user, text) of one input line; BadLine says what is wrong."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc.msg}") from None
    if not isinstance(item, dict):
        raise BadLine("each line must be a JSON object")
    text, user = item.get("text"), item.get("user", "anonymous")
    if not isinstance(text, str) or not text.strip():
        raise BadLine("text must be a non-empty string")
    if not isinstance(user, str | int) or isinstance(user, bool) or not str(user).strip():
        raise BadLine("user must be a string or a number")
    return item.get("id"), str(user)[:64], text


def describe(ident: Any, outcome: Outcome) -> dict[str, Any]:
    """One output line: what the conversation did and the text as the web chat shows it."""
    verdict = outcome.verdict
    if verdict is not None:
        kind, faq_id, also, choices = verdict.kind.value, verdict.faq_id, list(verdict.also), list(verdict.choices)
    else:  # a command or a notice: described by its first reply
        first = outcome.replies[0].kind if outcome.replies else "answer"
        kind, faq_id, also, choices = REPLY_KINDS.get(first, Kind.ANSWER).value, None, [], []
    text = "\n\n".join(reply.text for reply in outcome.replies)
    return {"id": ident, "kind": kind, "faq_id": faq_id, "also": also, "choices": choices, "text": text}


async def read_lines(stream: TextIO) -> AsyncIterator[str]:
    """Lines of a blocking stream, read off the event loop."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, stream.readline):
        yield line


async def converse_lines(conversation: Conversation, lines: AsyncIterator[str],
                         write: Callable[[dict[str, Any]], None]) -> int:
    """Run each line in order; returns how many lines were malformed."""
    bad = 0
    async for line in lines:
        if not line.strip():
            continue
        try:
            ident, user, text = parse_line(line)
        except BadLine as exc:
            bad += 1
            ident = None
            try:
                loaded = json.loads(line)
                ident = loaded.get("id") if isinstance(loaded, dict) else None
            except json.JSONDecodeError:
                pass
            write({"id": ident, "error": str(exc)})
            continue
        outcome = await conversation.respond(IncomingMessage(CHANNEL, user, text=text))
        write(describe(ident, outcome))
    return bad


async def run_converse(settings: Settings, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout

    def write(item: dict[str, Any]) -> None:
        stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
        stdout.flush()

    async with local_session(settings) as session:
        bad = await converse_lines(session.conversation, read_lines(stdin), write)
    return 1 if bad else 0
