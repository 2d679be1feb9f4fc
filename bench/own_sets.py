#!/usr/bin/env python3
"""Our own question sets (bench/own/), written from how citizens talk, never from a dev set.

    .venv/bin/python bench/own_sets.py

- in_scope.tsv          one question per line in chat, dialect or no diacritics, and the entries
                        that answer it (comma-separated): right first (answer or suggestion);
- dialect.tsv           the same, longer, in Southern and Central speech;
- near_not_covered.txt  long letters (a story, then "xin hỏi") about subjects next to the
                        knowledge base that it has no guide for: declined (fallback or not covered);
- off_topic.txt         everyday questions nothing to do with public services: declined;
- two_questions.tsv     two questions in one message, the first entry and the second: the first
                        answered and the second answered or offered (through the conversation);
- own/followups.jsonl   follow-up pairs, scored by bench/dialogue.py.

How they were used, so their figures are read right: each set was written in one go and scored
before any change it led to; misses then guided general fixes (lexicon, scope list, follow-up
rules), so the figures printed now are after tuning on them. Fresh sets of the same kind scored
before any change are the honest measure (see the figures in README's Benchmarks).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.chat import CHANNEL, describe, local_session  # noqa: E402
from bot.contracts.messages import IncomingMessage  # noqa: E402
from bot.matching import Decision  # noqa: E402
from bot.matching.live import LiveKnowledge  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from knowledge.loader import load_knowledge_base  # noqa: E402

OWN = Path(__file__).resolve().parent / "own"


def _lines(name: str) -> list[str]:
    return [line for line in (OWN / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _rate(hits: int, total: int) -> str:
    return f"{100 * hits / total:5.1f}% ({hits}/{total})" if total else "n/a"


def main() -> int:
    settings = load_settings(_env_file=None, telegram_bot_token="")
    matcher = LiveKnowledge(load_knowledge_base(settings.knowledge_dir, settings.knowledge_local_file)).matcher
    for name, title in (("in_scope.tsv", "in scope, right first (answer or suggestion)"),
                        ("dialect.tsv", "in scope, longer and in dialect, right first")):
        right = wrong = 0
        questions = [line.split("\t") for line in _lines(name)]
        for text, wanted in questions:
            result, entries = matcher.match(text), wanted.split(",")
            right += result.decision is not Decision.FALLBACK and result.faq_id in entries
            wrong += result.decision is Decision.ANSWER and result.faq_id not in entries
        print(f"{title:46} {_rate(right, len(questions))}; answered wrong {wrong}")
    for name, title in (("near_not_covered.txt", "near but not covered, declined"),
                        ("off_topic.txt", "off topic, declined")):
        decisions = [matcher.match(t).decision for t in _lines(name)]
        declined = decisions.count(Decision.FALLBACK)
        print(f"{title:46} {_rate(declined, len(decisions))}; answered {decisions.count(Decision.ANSWER)}")

    async def two() -> tuple[int, int]:
        rows = [line.split("\t") for line in _lines("two_questions.tsv")]
        found = 0
        async with local_session(settings, temporary=True) as session:
            for n, (text, first, second) in enumerate(rows):
                text = text.replace("\\n", "\n")  # a line break inside the message
                out = describe(None, await session.conversation.respond(IncomingMessage(CHANNEL, f"two-{n}", text=text)))
                found += out["faq_id"] == first and second in out["also"] + out["choices"]
        return found, len(rows)

    print(f"{'two questions, both found':46} {_rate(*asyncio.run(two()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
