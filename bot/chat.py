"""`python -m bot chat`: the same conversation logic in a terminal, for trying the KB offline."""

from __future__ import annotations

import asyncio
import sys

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.messages import IncomingMessage, Reply


def render(reply: Reply) -> str:
    lines = [reply.text]
    for link in reply.links:
        lines.append(f"  🔗 {link.url}")
    number = 0
    for row in reply.buttons:
        for button in row:
            number += 1
            lines.append(f"  [{number}] {button.label}")
    return "\n".join(lines)


async def run_chat(settings: Settings) -> int:
    runtime = Runtime.build(settings)
    print("Gõ câu hỏi, số để bấm nút, /menu để xem chủ đề; Ctrl+D để thoát.")
    buttons: list = []
    loop = asyncio.get_running_loop()
    while True:
        print("> ", end="", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return 0
        line = line.strip()
        if line.isdigit() and 0 < int(line) <= len(buttons):
            msg = IncomingMessage("cli", "terminal", action=buttons[int(line) - 1].action)
        else:
            msg = IncomingMessage("cli", "terminal", text=line)
        replies = await runtime.conversation.handle(msg)
        buttons = [b for reply in replies for row in reply.buttons for b in row]
        for reply in replies:
            print(render(reply))
