"""Two questions in one message: "quên mật khẩu vneid với cả muốn đổi số điện thoại luôn".

Why split at all: the matcher scores a message against one entry at a time, so a message
carrying two topics matches neither well. The message is cut at Vietnamese joiners and
punctuation, and a cut is accepted only when both sides match different entries with
confidence; "đăng ký và kích hoạt" stays one question because "đăng ký" alone matches nothing
with confidence. When the first part is clear and the second (after a question mark or a new
line) matches nothing, the second part is reported as not understood instead of being lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum

from bot.matching import Decision, MatchResult
from bot.matching.matcher import Matcher, Thresholds
from bot.matching.normalize import canonical, fold

# Cut points, strongest first. Joiners are matched as whole words, without diacritics.
STRONG = re.compile(r"[?？;\n]+|[.!](?=\s)")
JOINERS = ("với cả", "với lại", "vs cả", "vs lại", "thêm nữa", "ngoài ra", "còn nữa", "còn", "và", "với", "vs",
           "mà", "xong rồi", "xong", "rồi", "tiện thể", "nhân tiện", "cho hỏi thêm", "hỏi thêm", "à còn nữa",
           "à còn", "à mà", "à với", "và cho hỏi", "và cho hỏi thêm", "cho hỏi luôn", "hỏi luôn", "thêm câu nữa",
           "một câu nữa", "câu nữa", "ngoài ra cho hỏi", "cho mình hỏi thêm", "cho em hỏi thêm", "cho tôi hỏi thêm")
FOLDED_JOINERS = {fold(j): j for j in sorted(JOINERS, key=lambda j: -len(j.split()))}  # longest first
MIN_PART_WORDS = 2
# "1. ... 2. ...", "1) ... 2) ...", "- ... - ...": a list of questions, one item each
ENUMERATOR = re.compile(r"(?:^|(?<=\s))(?:\d{1,2}[.)]|[a-dA-D]\)|[-•*+])\s+")
# "cho hỏi 2 việc:", "em có mấy câu": the citizen announces several questions
ANNOUNCED = re.compile(r"\b(?:hoi|co|ve)\s+(?:2|hai|3|ba|may|vai)\s+(?:cai|viec|cau|van de|thu|y|chuyen)\b")
SHORT_REQUEST_WORDS = 8
# What makes a second part a question rather than more detail ("tôi thử mấy lần rồi mà không được").
QUESTION_WORDS = ("sao", "gi", "nao", "dau", "bao nhieu", "bao lau", "the nao", "ntn", "lam sao", "o dau", "ai",
                  "cach")  # "cách tải vneid." asks how
# "... luôn" asks for one more thing ("xong rồi đăng ký tài khoản mức 1 luôn")
CLOSING_PARTICLES = frozenset({"khong", "ko", "k", "hong", "hok", "chua", "ha", "a", "nhi", "vay", "ak", "ah", "luon"})
# Requests ask as much as questions do ("cho tui xin số tổng đài luôn nha").
REQUESTS = ("cho xin", "cho tui xin", "cho toi xin", "cho minh xin", "cho em xin", "cho con xin", "xin so",
            "chi giup", "chi cho", "huong dan", "giup toi", "giup minh", "giup em", "giup tui", "giup voi")
LISTING_JOINERS = frozenset({"voi ca", "voi lai", "vs ca", "vs lai", "them nua", "ngoai ra", "con nua", "con", "va",
                             "a con nua", "a con", "va cho hoi", "va cho hoi them", "cho hoi them", "hoi them",
                             "cho minh hoi them", "cho em hoi them", "cho toi hoi them", "ngoai ra cho hoi",
                             "them cau nua", "mot cau nua", "cau nua"})
COMPARISONS = ("khac nhau", "khac gi", "giong nhau", "giong gi")
NOT_SECOND = frozenset({"bot.help", "bot.smalltalk"})  # generic: "làm được những việc gì" names no topic
CIRCUMSTANCES = frozenset({"khi", "neu", "luc", "sau khi", "truoc khi", "trong luc", "trong khi", "tu khi"})
LEADING_FILLERS = frozenset({"xin", "hoi", "cho", "em", "toi", "tui", "minh", "chau", "bac", "a", "da", "thi"})
UNRELATED_SCORE = 40.0  # a second part scoring below this against every entry is about something else
# After a question mark, a second part that did not reach the suggestion threshold is still
# offered (as a button, never answered) when its best entry scores this much: the citizen did
# ask a second question, and the nearest entry with a button beats silence.
SECOND_OFFER_SCORE = 52.0
CONFIDENT_PART_SHARE = 0.6  # of the way from the suggestion to the answer threshold
MAX_CUTS = 8  # a message with more places to cut is a long story, not two questions
RUNNER_UP_GAP = 15.0  # a second part's runner-up this close to its top (the first part's entry) is taken
SHORT_ANSWER_CHARS = 420  # both answers this short: answer both instead of offering the second


@dataclass(frozen=True)
class TwoQuestions:
    first: MatchResult
    second: MatchResult | None  # None: the second part matched nothing
    first_text: str
    second_text: str

    @property
    def understood(self) -> bool:
        return self.second is not None


def _confident(result: MatchResult, thresholds: Thresholds) -> bool:
    """Answered, or suggested only because a runner-up came close while the score itself is well
    above the suggestion threshold (a short part of a message often sits near two entries)."""
    if result.faq_id is None:
        return False
    high = thresholds.suggest_score + CONFIDENT_PART_SHARE * (thresholds.answer_score - thresholds.suggest_score)
    return result.decision is Decision.ANSWER or (result.decision is Decision.SUGGEST and result.score >= high)


def _offerable(result: MatchResult) -> bool:
    return result.decision in (Decision.ANSWER, Decision.SUGGEST) and result.faq_id is not None


def _word_count(text: str) -> int:
    return len(canonical(text).split())


def asks(text: str) -> bool:
    """A question of its own: a question word or mark, or a closing "không / chưa / hả"
    ("Căn cước hết hạn đổi online được không"), not a circumstance ("khi nộp hồ sơ trực tuyến")."""
    words = fold(canonical(text)).split()
    folded = f" {' '.join(words)} "
    return (_looks_like_question(text) or bool(words) and words[-1] in CLOSING_PARTICLES
            or any(f" {p} " in folded for p in REQUESTS))


def _looks_like_question(text: str) -> bool:
    folded = f" {fold(canonical(text))} "
    return text.rstrip().endswith("?") or any(f" {w} " in folded for w in QUESTION_WORDS)


class CutKind(StrEnum):
    QUESTION_MARK = "?"  # the left part ends with a question mark
    SENTENCE = "."  # a full stop, semicolon or new line
    JOINER = "joiner"  # "với cả", "còn", "và": a question word at the end may serve both parts
    COMMA = ","
    LIST = "list"  # items of an enumeration: each is a question by being listed


@dataclass(frozen=True)
class Cut:
    left: str
    right: str
    kind: CutKind
    joiner: str = ""

    @property
    def strong(self) -> bool:
        return self.kind in (CutKind.QUESTION_MARK, CutKind.SENTENCE, CutKind.LIST)


def cuts(text: str) -> list[Cut]:
    """Candidate splits of the message, strong separators first."""
    found: list[Cut] = []
    marks = list(ENUMERATOR.finditer(text))
    if len(marks) >= 2:
        end = marks[2].start() if len(marks) > 2 else len(text)
        first, second = text[marks[0].end(): marks[1].start()].strip(" ,;"), text[marks[1].end(): end].strip(" ,;")
        if first and second:
            found.append(Cut(first, second, CutKind.LIST))
    for m in STRONG.finditer(text):
        left, right = text[: m.start()].strip(), text[m.end():].strip()
        if left and right:
            kind = CutKind.QUESTION_MARK if "?" in m.group() or "？" in m.group() else CutKind.SENTENCE
            found.append(Cut(left, right, kind))
    words = text.split()
    # typed with diacritics, "con" is a child, not "còn": compare as typed; typed without, folded
    accented = not text.isascii()
    keys = [canonical(w) if accented else fold(canonical(w)) for w in words]
    for i in range(1, len(words) - 1):
        for folded_joiner, joiner in FOLDED_JOINERS.items():
            listed = joiner if accented else folded_joiner
            size = len(listed.split())
            if " ".join(keys[i : i + size]) == listed:
                left, right = " ".join(words[:i]).strip(" ,"), " ".join(words[i + size:]).strip(" ,")
                if left and right:
                    found.append(Cut(left, right, CutKind.JOINER, folded_joiner))
                break
    # a comma joins two questions as often as a joiner does ("đổi bằng lái online làm sao vậy, còn ...")
    for m in re.finditer(r",", text):
        left, right = text[: m.start()].strip(), text[m.end():].strip()
        if left and right:
            found.append(Cut(left, right, CutKind.COMMA))
    return found


def _separate(cut: Cut, detail: Callable[[str], bool], announced: bool = False) -> bool:
    """Both parts ask something of their own: the left is no circumstance ("khi nộp hồ sơ ..."),
    each asks (at a joiner one question word may close both: "quên mật khẩu với cả đổi số thì
    làm sao"), and the right is more than a detail of the left ("có mất phí không")."""
    if _circumstance(cut.left) or detail(cut.right) or _compares(cut.right):
        return False
    if cut.kind is CutKind.LIST or announced:
        return True
    shared = cut.kind is CutKind.JOINER and cut.joiner in LISTING_JOINERS
    # "tui muốn đăng ký khai sinh và làm căn cước cho cháu": the request covers both
    if not (asks(cut.right) or shared and asks(cut.left)):
        return False
    # after a full stop a short request said as a statement counts ("Tôi muốn đăng ký kết hôn."),
    # a longer one is the story that leads to the question
    short_request = cut.kind is CutKind.SENTENCE and _word_count(cut.left) <= SHORT_REQUEST_WORDS
    return cut.kind is CutKind.QUESTION_MARK or shared or short_request or asks(cut.left)


def _compares(text: str) -> bool:
    """"mức 1 và mức 2 khác nhau thế nào" is one question about both."""
    folded = f" {fold(canonical(text))} "
    return any(f" {w} " in folded for w in COMPARISONS)


def _circumstance(text: str) -> bool:
    words = [w for w in fold(canonical(text)).split() if w not in LEADING_FILLERS]
    return bool(words) and (words[0] in CIRCUMSTANCES or " ".join(words[:2]) in CIRCUMSTANCES)


def _nearest(matcher: Matcher, text: str, besides: str | None) -> MatchResult | None:
    """The second part's nearest entry as a suggestion, when it comes close enough."""
    normalized, ranked = matcher.scores(text)
    ranked = [(fid, score) for fid, score in ranked if fid != besides]
    if not ranked or ranked[0][1] < SECOND_OFFER_SCORE:
        return None
    return MatchResult(Decision.SUGGEST, ranked[0][0], ranked[0][1], [], normalized)


def _runner_up(matcher: Matcher, text: str, besides: str) -> MatchResult | None:
    """The part's best entry other than `besides`, when it scores within RUNNER_UP_GAP of the top
    (a second part the first part's entry also mentions: "học xong có được cấp chứng nhận không")."""
    normalized, ranked = matcher.scores(text)
    if len(ranked) < 2 or ranked[0][0] != besides or ranked[1][1] < ranked[0][1] - RUNNER_UP_GAP:
        return None
    fid, score = ranked[1]
    decision = Decision.ANSWER if score >= matcher.thresholds.answer_score else Decision.SUGGEST
    return MatchResult(decision, fid, score, [], normalized)


def _announced(text: str) -> tuple[str, bool]:
    """The message without a "cho hỏi 2 việc:" preface, and whether it had one."""
    folded = fold(canonical(text))
    m = ANNOUNCED.search(folded)
    if m is None:
        return text, False
    words_before = len(folded[: m.end()].split())
    rest = " ".join(text.split()[words_before:]).lstrip(" :,-")
    return (rest, True) if rest else (text, False)


def find_two(matcher: Matcher, text: str, whole: MatchResult | None = None,
             detail: Callable[[str], bool] = lambda _text: False,
             related: Callable[[str], Collection[str]] = lambda _id: ()) -> TwoQuestions | None:
    """The two questions in the message, or None when it reads as one question.

    The form of each cut is checked first (cheap string tests); only cuts that could be two
    questions are matched, each part once."""
    th = matcher.thresholds
    best: tuple[float, TwoQuestions] | None = None
    unmatched: TwoQuestions | None = None
    matched: dict[str, MatchResult] = {}

    def match(part: str) -> MatchResult:
        if part not in matched:
            matched[part] = matcher.match(part)
        return matched[part]

    text, announced = _announced(text)
    seen: set[tuple[str, str]] = set()
    for cut in cuts(text):
        left, right, strong = cut.left, cut.right, cut.strong
        if (left, right) in seen or min(_word_count(left), _word_count(right)) < MIN_PART_WORDS:
            continue
        seen.add((left, right))
        two_form = _separate(cut, detail, announced)
        lost_form = strong and _word_count(right) >= 4 and _looks_like_question(right)
        if not (two_form or lost_form) or len(seen) > MAX_CUTS:
            continue
        first = match(left)
        if not _confident(first, th):
            continue
        second = match(right)
        if second.faq_id is not None and second.faq_id == first.faq_id:
            # two questions are not one entry twice: the second's runner-up, when it comes close
            second = _runner_up(matcher, right, first.faq_id) or second
        # a near miss (not a subject the knowledge base leaves out, which scores high and is refused)
        near_miss = second.decision is Decision.FALLBACK and second.score < th.suggest_score
        if strong and near_miss and _looks_like_question(right):
            second = _nearest(matcher, right, first.faq_id) or second
        # at a joiner word both parts must be clear; after a question mark the second may be a guess
        # ... or, at a joiner, a suggestion within the first part's topic ("khai sinh cho cháu và
        # làm căn cước cho cháu luôn": the child's ID card is related to the birth registration)
        second_ok = _offerable(second) if strong else (
            _confident(second, th) or _offerable(second) and second.faq_id in related(first.faq_id))  # type: ignore[arg-type]
        if two_form and second_ok and second.faq_id not in NOT_SECOND and second.faq_id != first.faq_id:
            # a cut at a question mark or new line beats any cut at a joiner word
            score = (1000.0 if strong else 0.0) + min(first.score, second.score) + (5.0 if _confident(second, th) else 0.0)
            if best is None or score > best[0]:
                best = (score, TwoQuestions(first, second, left, right))
        elif (lost_form and unmatched is None and second.decision is Decision.FALLBACK
              and second.score < UNRELATED_SCORE):
            unmatched = TwoQuestions(first, None, left, right)
    if best is not None:
        return best[1]
    return unmatched
