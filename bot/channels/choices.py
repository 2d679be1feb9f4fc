"""Numbered-text choices for channels without inline buttons (Zalo): "Gõ 1, 2 hoặc 3".

The buttons of one turn's replies are numbered in order, across the replies so each number is
unique, and listed under the text. The actions behind the numbers are stored per user in the
database (`reply_choices`), so a later "2" means the second button whichever process receives
it, even after a restart. A quiz (campaigns) becomes numbered options answered the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.contracts import texts
from bot.contracts.messages import Reply
from bot.contracts.payloads import QuizAnswer
from bot.storage.choices import ReplyChoiceRows
from handlers import channel_texts as ct

DIGITS = re.compile(r"^\s*(\d{1,3})\s*[.)]?\s*$")
ENUMERATE_UP_TO = 5  # "Gõ 1, 2, 3, 4 hoặc 5"; longer lists say "từ 1 đến 12"


def numbers_phrase(first: int, last: int) -> str | None:
    """'1', '1 hoặc 2', '1, 2 hoặc 3'; None when the list is long enough for a range."""
    numbers = [str(n) for n in range(first, last + 1)]
    if len(numbers) > ENUMERATE_UP_TO:
        return None
    if len(numbers) == 1:
        return numbers[0]
    return ", ".join(numbers[:-1]) + f" {ct.OR} " + numbers[-1]


def _prompt(first: int, last: int, *, quiz: bool = False) -> str:
    phrase = numbers_phrase(first, last)
    if phrase is None:
        return (ct.ANSWER_QUIZ_RANGE if quiz else ct.CHOOSE_RANGE).format(first=first, last=last)
    return (ct.ANSWER_QUIZ if quiz else ct.CHOOSE).format(numbers=phrase)


@dataclass
class Rendered:
    """A reply as plain text, with the actions of its numbers (numbered from `start`).

    `body` and `prompt` are the text without the numbered lines and the "Gõ 1, 2 hoặc 3"
    line, for platforms that show the choices as buttons (Zalo OA templates) instead.
    """

    text: str
    start: int = 1
    actions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    quiz: dict[str, Any] | None = None  # {"correct": option index, "options", "explanation"}
    body: str = ""
    prompt: str = ""


def render(reply: Reply, start: int = 1) -> Rendered:
    """Reply -> text with links spelled out and buttons (then quiz options) as numbered lines."""
    parts = [reply.text.rstrip()]
    if reply.links:
        parts.append("\n".join([texts.LINKS_HEADER] + [f"🔗 {link.label}: {link.url}" for link in reply.links]))
    body_parts = len(parts)
    actions: list[str] = []
    labels: list[str] = []
    buttons = [button for row in reply.buttons for button in row]
    prompt = ""
    if buttons:
        for button in buttons:
            actions.append(button.action)
            labels.append(ct.LABELS.get(button.label, button.label))
        lines = [f"{start + i}. {label}" for i, label in enumerate(labels)]
        prompt = _prompt(start, start + len(buttons) - 1)
        lines.append(prompt)
        parts.append("\n".join(lines))
    quiz = None
    if reply.quiz is not None:
        first = start + len(actions)
        options = list(reply.quiz.options)
        lines = [f"❓ {reply.quiz.question}"]
        lines += [f"{first + i}. {option}" for i, option in enumerate(options)]
        lines.append(_prompt(first, first + len(options) - 1, quiz=True))
        parts.append("\n".join(lines))
        actions += [QuizAnswer(i).pack() for i in range(len(options))]
        labels += options
        quiz = {"correct": reply.quiz.correct, "options": options, "explanation": reply.quiz.explanation}
    body = "\n\n".join(p for p in parts[:body_parts] if p)
    return Rendered("\n\n".join(p for p in parts if p), start, actions, labels, quiz, body, prompt)


def quiz_reply(quiz: dict[str, Any], option: int, number_of_first: int) -> Reply:
    """The verdict on a quiz answer, with the explanation."""
    correct = int(quiz.get("correct", 0))
    options = quiz.get("options") or []
    if option == correct:
        text = ct.QUIZ_RIGHT
    else:
        text = ct.QUIZ_WRONG.format(number=number_of_first + correct,
                                 option=options[correct] if 0 <= correct < len(options) else "")
    if quiz.get("explanation"):
        text += "\n" + str(quiz["explanation"])
    return Reply(text, kind="notice")


@dataclass
class Choice:
    """What a digit the citizen typed means: a button action, a quiz verdict or a hint."""

    action: str | None = None
    reply: Reply | None = None


class ChoiceStore:
    """The last numbered choices shown to each user of one channel (table `reply_choices`)."""

    def __init__(self, sessions, channel: str):
        self.rows = ReplyChoiceRows(sessions)
        self.channel = channel

    async def save(self, platform_id: str, rendered: list[Rendered]) -> None:
        """Replace the user's choices with those of the replies just sent (none: forget them)."""
        actions = [action for r in rendered for action in r.actions]
        quiz = next((dict(r.quiz, first=r.start + len(r.actions) - len(r.quiz["options"]))
                     for r in rendered if r.quiz), None)
        await self.rows.replace(self.channel, platform_id, {"actions": actions, "quiz": quiz} if actions else None)

    async def load(self, platform_id: str) -> dict[str, Any] | None:
        return await self.rows.payload(self.channel, platform_id)

    async def resolve(self, platform_id: str, text: str | None) -> Choice | None:
        """A typed number -> what it stands for; None when the text is not a choice."""
        match = DIGITS.match(text or "")
        if match is None:
            return None
        payload = await self.load(platform_id)
        actions = (payload or {}).get("actions") or []
        if not actions:
            return None
        number = int(match.group(1))
        if not 1 <= number <= len(actions):
            return Choice(reply=Reply(ct.OUT_OF_RANGE.format(last=len(actions)), kind="notice"))
        action = actions[number - 1]
        quiz = (payload or {}).get("quiz")
        answer = QuizAnswer.unpack(action)
        if answer is not None and quiz:
            return Choice(reply=quiz_reply(quiz, answer.option, int(quiz.get("first", 1))))
        return Choice(action=action)
