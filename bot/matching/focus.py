"""Where the question is in a long message.

Real messages are often a story first and the question last ("Bố tôi 75 tuổi, đã có căn cước...
Xin hỏi ..."): the story names things that are context, not the subject (a parent's age, a
workplace, a neighbour), and weighed as much as the question they pull the ranking towards
whatever entry the story resembles, or dilute a good match under the thresholds. So a long
message is split once into story and question part, and the matcher weighs the story's words
less (STORY_WEIGHT in matcher.py), unless the question part names almost nothing ("..., xin hỏi
tôi phải làm sao?": QUESTION_MIN_CONTENT there). Short messages are left whole: they are all question.

A message whose first clause is a question (even without "?") is all question. Otherwise the
question part starts at an explicit request ("xin hỏi", "cho em hỏi", "muốn hỏi", "nhờ ...
hỏi", "vậy ... phải làm sao"), else at the first sentence ending with a question mark, else it
is the last sentence. Everything after the start counts as question, so a message with two
questions keeps both.
"""

from __future__ import annotations

import re

FOCUS_MIN_WORDS = 20  # shorter messages are all question
STORY_MIN_WORDS = 8  # a "story" shorter than this is part of the question ("Tôi 60 tuổi, xin hỏi...")
QUESTION_MIN_WORDS = 3  # a question part this short is too little to match on alone

# A request opening a clause, after at most two words ("tôi", "nên em"): "xin hỏi", "cho em
# hỏi", "muốn hỏi", "kính hỏi", "nhờ anh chị chỉ", "vậy thì", "thế thì", and what the citizen
# wants to do ("tôi muốn đăng ký...", "em cần biết", "định làm"), which names the subject.
# Bare "can", "the" are left out: as often "căn (cước)", "thẻ".
_ASK = re.compile(
    r"^(?:\w+\s+){0,2}?(?:(?:xin|cho|muốn|muon|kính|kinh|nhờ|nho)(?:\s+\w+){0,2}?\s+(?:hỏi|hoi|chỉ|chi)\b"
    r"|(?:muốn|muon|cần|định|dinh)\s+\w+"
    r"|(?:vậy|vay|thế)\s+(?:thì|thi)\b)",
    re.IGNORECASE,
)
# A clause that ends with one of these asks something even without "?" ("ở xã có tổ công nghệ số
# không, tôi muốn nhờ..."): a message that opens with such a clause opens with its question.
_ASKS = re.compile(
    r"\b(?:không|khong|ko|hông|hong|hổng|chưa|chua|sao|gì|nào|đâu|dau|mô|chi|hả)\s*[,.;:!\n]*\s*$",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[,.;:!?\n]+\s*")
_SENTENCE = re.compile(r"[.!?;\n]+\s*")


def split_focus(text: str) -> tuple[str, str]:
    """(story, question part) of a message; the story is "" when the whole message is question."""
    if len(text.split()) < FOCUS_MIN_WORDS:
        return "", text
    if _ASK.match(text):
        return "", text  # the message opens with its request
    first = _CLAUSE.search(text)
    if first and _ASKS.search(text[:first.end()]):
        return "", text  # the message opens with a question, said without "?"
    for boundary in _CLAUSE.finditer(text):
        at = boundary.end()
        if _ASK.match(text[at:]) and _enough(text, at):
            return text[:at], text[at:]
    start = 0  # of the current sentence
    for boundary in _SENTENCE.finditer(text):
        if "?" in boundary.group():  # the first question sentence: a story before it is context
            if start and _enough(text, start):
                return text[:start], text[start:]
            break
        start = boundary.end()
    return "", text


def _enough(text: str, at: int) -> bool:
    return (len(text[:at].split()) >= STORY_MIN_WORDS
            and len(text[at:].split()) >= QUESTION_MIN_WORDS)
