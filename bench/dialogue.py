#!/usr/bin/env python3
"""Conversation skills on dev-questions-v2: small talk, two questions in one message, follow-ups.

    .venv/bin/python bench/dialogue.py [--misses]

Every line runs through the same path as `python -m bot converse` (the real Conversation with
storage on a temporary SQLite database, context per user), tuning and held-out halves
(bench/devset.py `split_v2`) separately. Scored:

  small talk  - lines whose topic is `bot.smalltalk`: handled as small talk (kind "smalltalk"),
                and how many were logged as unanswered (question_log decision "fallback");
  multi       - both topics found: the first answered (`topic` or an `alt`), the second (`also`)
                answered or offered (in the reply's `also` or `choices`);
  other lines - every other line (not small talk, not a -b line): how many were taken for small
                talk (a question the bot then did not try to answer);
  followup    - the -b line, sent by the same user right after its -a line, answered with the
                right entry.

Baseline in the same run: the matcher alone on the same lines (what the bot did before these
skills: small talk "handled" only by a confident answer of `bot.smalltalk`, the whole multi
message matched once, the -b line matched without its -a line).

Time per message in the same run: the conversation with the skills against the same conversation
answering every text with the matcher alone and storing no context (what it did before).

Also scored: bench/own/followups.jsonl, follow-up pairs written for this bench from how citizens talk
(never from a question set), against the matcher alone on the follow-up.

`--misses` lists the missed lines of the tuning half and of our own pairs; the held-out half is
reported in aggregate and never line by line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.devset import find_dev_questions_v2, group_of, load_questions, split_v2  # noqa: E402
from bot.chat import CHANNEL, describe, local_session  # noqa: E402
from bot.contracts.messages import IncomingMessage  # noqa: E402
from bot.matching import Decision  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.storage.models import QuestionLog  # noqa: E402
from handlers.conversation import Conversation  # noqa: E402
from handlers.dialogue import NoMemory  # noqa: E402

SMALLTALK = "bot.smalltalk"
TARGETS = {"smalltalk": 0.95, "multi": 0.80, "followup": 0.80}  # held-out half; small talk logged unanswered: 0


def right(q: dict) -> set[str]:
    return {q["topic"], *(q.get("alt") or [])} - {None}


@dataclass
class Half:
    smalltalk: list[bool] = field(default_factory=list)
    smalltalk_unanswered: int = 0
    multi: list[bool] = field(default_factory=list)
    followup: list[bool] = field(default_factory=list)
    base_smalltalk: list[bool] = field(default_factory=list)
    base_multi: list[bool] = field(default_factory=list)
    base_followup: list[bool] = field(default_factory=list)
    false_smalltalk: list[bool] = field(default_factory=list)  # real questions taken for small talk
    single: list[bool] = field(default_factory=list)  # other lines answered right (top-1 or declined)
    base_single: list[bool] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    followup_shapes: Counter = field(default_factory=Counter)  # aggregate kinds of follow-up outcomes
    seconds: list[float] = field(default_factory=list)  # per message, the whole conversation path
    base_seconds: list[float] = field(default_factory=list)  # per message, the path without the skills


def _selected(questions: list[dict]) -> tuple[list[dict], list[dict], list[tuple[dict, dict]]]:
    small = [q for q in questions if q.get("topic") == SMALLTALK]
    multi = [q for q in questions if "multi" in (q.get("style") or []) and q.get("also")]
    by_id = {q["id"]: q for q in questions}
    pairs = [(by_id[q["after"]], q) for q in questions if q.get("after") in by_id]
    return small, multi, pairs


def without_skills(conversation: Conversation) -> Conversation:
    """The same conversation as it answered before these skills: every text straight to the
    matcher, no context stored (the timing baseline)."""
    plain = Conversation(conversation.knowledge, conversation.store, None, conversation.config)
    plain.dialogue.memory = NoMemory()

    async def single(turn, text: str):
        return await plain.answer_single(turn, text, plain.match(text))

    plain.on_question = single  # type: ignore[method-assign]
    return plain


async def score_half(conversation, matcher, store, questions: list[dict], label: str,
                     plain: Conversation | None = None) -> Half:
    half = Half()
    small, multi, pairs = _selected(questions)

    async def say(user: str, text: str) -> dict:
        started = time.perf_counter()
        outcome = await conversation.respond(IncomingMessage(CHANNEL, user, text=text))
        half.seconds.append(time.perf_counter() - started)
        if plain is not None:
            started = time.perf_counter()
            await plain.respond(IncomingMessage(CHANNEL, f"plain-{user}", text=text))
            half.base_seconds.append(time.perf_counter() - started)
        return describe(None, outcome)

    small_users = []
    for n, q in enumerate(small):
        user = f"{label}-small-{n}"
        small_users.append(store.users.key_for(CHANNEL, user))
        out = await say(user, q["text"])
        ok = out["kind"] == "smalltalk"
        half.smalltalk.append(ok)
        base = matcher.match(q["text"])
        half.base_smalltalk.append(base.decision is Decision.ANSWER and base.faq_id == SMALLTALK)
        if not ok:
            half.misses.append(f"smalltalk {q['id']}: {out['kind']} {out['faq_id']} | {q['text']}")
    if small_users:
        async with store.sessions() as s:
            rows = await s.scalars(select(QuestionLog.id).where(QuestionLog.user_key.in_(small_users),
                                                                QuestionLog.decision == "fallback"))
            half.smalltalk_unanswered = len(list(rows))
    for n, q in enumerate(multi):
        out = await say(f"{label}-multi-{n}", q["text"])
        second = set(q["also"])
        ok = out["faq_id"] in right(q) and bool(second & set(out["also"] + out["choices"]))
        half.multi.append(ok)
        base = matcher.match(q["text"])
        half.base_multi.append(False if base.faq_id is None else (
            base.faq_id in right(q) and bool(second & set(base.alternatives))))
        if not ok:
            half.misses.append(f"multi {q['id']}: {out['faq_id']} also={out['also']} choices={out['choices']} "
                               f"want {q['topic']}+{q['also']} | {q['text']}")
    others = [q for q in questions if q.get("topic") != SMALLTALK and not q.get("after")]
    for n, q in enumerate(others):
        out = await say(f"{label}-other-{n}", q["text"])
        taken = out["kind"] == "smalltalk"
        half.false_smalltalk.append(taken)
        first = out["faq_id"] if out["kind"] == "answer" else (out["choices"] or [None])[0]
        base = matcher.match(q["text"])
        if right(q):
            half.single.append(out["kind"] in ("answer", "suggest") and first in right(q))
            half.base_single.append(base.decision is not Decision.FALLBACK and base.faq_id in right(q))
        else:
            half.single.append(out["kind"] in ("fallback", "not_covered"))
            half.base_single.append(base.decision is Decision.FALLBACK)
        if taken:
            half.misses.append(f"taken for small talk {q['id']}: {q['topic']} | {q['text']}")
    for n, (a, b) in enumerate(pairs):
        user = f"{label}-follow-{n}-{group_of(b['id'])}"
        first = await say(user, a["text"])
        out = await say(user, b["text"])
        ok = out["kind"] == "answer" and out["faq_id"] in right(b)
        half.followup.append(ok)
        a_right = first["kind"] == "answer" and first["faq_id"] in right(a)
        stayed = out["faq_id"] is not None and out["faq_id"] == first["faq_id"]
        half.followup_shapes[("a right" if a_right else "a not right", "b right" if ok else
                              f"b {out['kind']}" + (", same entry as a" if stayed else ""))] += 1
        base = matcher.match(b["text"])
        half.base_followup.append(base.decision is Decision.ANSWER and base.faq_id in right(b))
        if not ok:
            half.misses.append(f"followup {b['id']}: a->{first['faq_id']} b->{out['kind']} {out['faq_id']} "
                               f"want {b['topic']} | {a['text']} || {b['text']}")
    return half


OWN_PAIRS = Path(__file__).resolve().parent / "own" / "followups.jsonl"


async def score_own_pairs(conversation, matcher, lines: list[str]) -> tuple[list[bool], list[bool], list[str]]:
    """Follow-up pairs written for this bench from how citizens talk (never from a question set):
    {"first", "followup", "want": [entries that answer it right]}. Returns (right, baseline right,
    misses); the baseline is the matcher alone on the follow-up."""
    right_, base, misses = [], [], []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        pair = json.loads(line)
        user = f"own-follow-{n}"
        first = describe(None, await conversation.respond(IncomingMessage(CHANNEL, user, text=pair["first"])))
        out = describe(None, await conversation.respond(IncomingMessage(CHANNEL, user, text=pair["followup"])))
        ok = out["kind"] == "answer" and out["faq_id"] in pair["want"]
        right_.append(ok)
        alone = matcher.match(pair["followup"])
        base.append(alone.decision is Decision.ANSWER and alone.faq_id in pair["want"])
        if not ok:
            misses.append(f"own pair {n}: a->{first['kind']} {first['faq_id']} b->{out['kind']} {out['faq_id']} "
                          f"want {pair['want']} | {pair['first']} || {pair['followup']}")
    return right_, base, misses


def _rate(values: list[bool]) -> str:
    return f"{sum(values) / len(values):6.1%} ({sum(values)}/{len(values)})" if values else "   n/a"


def report_dialogue(show_misses: bool = False, out=print) -> dict[str, dict[str, float | int]] | None:
    """Score both halves and print a table; returns {half: {figure: value}} (None without the set)."""
    path = find_dev_questions_v2()
    if path is None:
        out("dev-questions-v2.jsonl not found (see bench/devset.py); dialogue bench skipped")
        return None
    tuning, held = split_v2(load_questions(path))
    settings = load_settings(_env_file=None, telegram_bot_token="")

    own_lines = OWN_PAIRS.read_text(encoding="utf-8").splitlines()

    async def run() -> tuple[dict[str, Half], tuple[list[bool], list[bool], list[str]]]:
        async with local_session(settings, temporary=True) as session:
            conv = session.conversation
            plain = without_skills(conv)
            halves = {name: await score_half(conv, conv.knowledge.matcher, conv.store, part, name, plain)
                      for name, part in (("tuning", tuning), ("held-out", held))}
            return halves, await score_own_pairs(conv, conv.knowledge.matcher, own_lines)

    halves, (own, own_base, own_misses) = asyncio.run(run())
    out("Conversation skills (dev-questions-v2, through the converse path; baseline = matcher alone)")
    out(f"{'':10} {'figure':34} {'skills':>16} {'baseline':>16}   target (held-out)")
    figures: dict[str, dict[str, float | int]] = {}
    for name, h in halves.items():
        rows = [
            ("small talk handled as small talk", h.smalltalk, h.base_smalltalk, f">= {TARGETS['smalltalk']:.0%}"),
            ("multi: both topics found", h.multi, h.base_multi, f">= {TARGETS['multi']:.0%}"),
            ("followup: -b answered right", h.followup, h.base_followup, f">= {TARGETS['followup']:.0%}"),
        ]
        for title, values, base, target in rows:
            out(f"{name:10} {title:34} {_rate(values):>16} {_rate(base):>16}   {target}")
        out(f"{name:10} {'small talk logged as unanswered':34} {h.smalltalk_unanswered:>16} {'':>16}   0")
        out(f"{name:10} {'other lines right (top-1/declined)':34} {_rate(h.single):>16} {_rate(h.base_single):>16}"
            "   (no worse than baseline)")
        out(f"{name:10} {'other lines taken for small talk':34} {_rate(h.false_smalltalk):>16} {'':>16}   (lower is better)")
        figures[name] = {
            "smalltalk": sum(h.smalltalk) / len(h.smalltalk) if h.smalltalk else 0.0,
            "smalltalk_unanswered": h.smalltalk_unanswered,
            "multi": sum(h.multi) / len(h.multi) if h.multi else 0.0,
            "followup": sum(h.followup) / len(h.followup) if h.followup else 0.0,
            "false_smalltalk": sum(h.false_smalltalk) / len(h.false_smalltalk) if h.false_smalltalk else 0.0,
        }
    out(f"{'own pairs':10} {'followup: answered right':34} {_rate(own):>16} {_rate(own_base):>16}"
        f"   ({OWN_PAIRS.name}: written from how citizens talk)")
    figures["own pairs"] = {"followup": sum(own) / len(own) if own else 0.0}
    both = [h for h in halves.values()]
    spent = sorted(x for h in both for x in h.seconds)
    base = sorted(x for h in both for x in h.base_seconds)
    if spent:
        def ms(values: list[float], share: float) -> str:
            return f"{1000 * values[min(len(values) - 1, int(share * len(values)))]:.1f}"
        out(f"time per message (median / p95 ms, SQLite in a temporary file): with the skills "
            f"{ms(spent, 0.5)} / {ms(spent, 0.95)}; without them (same conversation, matcher only) "
            f"{ms(base, 0.5)} / {ms(base, 0.95)}")
    for name, h in halves.items():
        out(f"{name:10} follow-up outcomes: " + "; ".join(f"{a} / {b}: {n}" for (a, b), n
                                                           in sorted(h.followup_shapes.items())))
    if show_misses:
        out("\nMisses, tuning half and our own pairs only:")
        for line in [*halves["tuning"].misses, *own_misses]:
            out("  " + line)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", action="store_true", help="list the tuning half's misses")
    args = parser.parse_args()
    return 0 if report_dialogue(args.misses) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
