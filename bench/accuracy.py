#!/usr/bin/env python3
"""Accuracy of the matcher on the development question set, against two baselines.

    .venv/bin/python bench/accuracy.py [--questions PATH] [--calibrate]

Figures (in-scope top-1, out-of-scope decline, wrong answers, per style tag) for:
  ours     - the project's matcher with the thresholds from settings
  wratio   - rapidfuzz WRatio on raw lower-cased text (best variant per entry)
  bm25     - BM25 (bm25s) over each entry's title, questions and keywords
Baselines get the best single score threshold found on the same set (a generous
comparison). --calibrate grid-searches our own thresholds and prints the best.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.matching.matcher import Matcher, Thresholds  # noqa: E402
from bot.runtime import thresholds_from  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from knowledge.loader import load_knowledge_base  # noqa: E402

DEFAULT_QUESTIONS = ROOT.parent / "shared" / "kb" / "dev-questions.jsonl"


@dataclass
class Verdict:
    decision: str
    faq_id: str | None


Ranker = Callable[[str], list[tuple[str, float]]]


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def judge(q: dict, v: Verdict) -> dict:
    right = {q["topic"], *q.get("alt", [])} if q["topic"] else set(q.get("alt", []))
    in_scope = q["topic"] is not None
    return {
        "in_scope": in_scope,
        "top1": in_scope and v.decision in ("answer", "suggest") and v.faq_id in right,
        "declined": (not in_scope) and (v.decision == "fallback" or (v.faq_id in right and bool(right))),
        "wrong": v.decision == "answer" and v.faq_id not in right,
    }


def summarise(questions: list[dict], verdicts: list[Verdict]) -> dict:
    rows = [judge(q, v) for q, v in zip(questions, verdicts)]
    ins = [r for r in rows if r["in_scope"]]
    outs = [r for r in rows if not r["in_scope"]]
    by_tag: dict[str, list[dict]] = defaultdict(list)
    for q, r in zip(questions, rows):
        for tag in q.get("style", []):
            by_tag[tag].append(r)

    def tag_score(rs: list[dict]) -> float:
        # In-scope: right entry first; out-of-scope: declined.
        return sum(r["top1"] or r["declined"] for r in rs) / len(rs)

    return {
        "top1": sum(r["top1"] for r in ins) / max(len(ins), 1),
        "decline": sum(r["declined"] for r in outs) / max(len(outs), 1),
        "wrong": sum(r["wrong"] for r in rows) / max(len(rows), 1),
        "n_in": len(ins),
        "n_out": len(outs),
        "tags": {tag: (len(rs), tag_score(rs)) for tag, rs in sorted(by_tag.items())},
    }


def objective(s: dict) -> float:
    """Most right answers first, while declining >= 85% of out-of-scope and <= 3% wrong."""
    penalty = 4 * max(0.0, 0.85 - s["decline"]) + 4 * max(0.0, s["wrong"] - 0.03)
    return s["top1"] + 0.25 * s["decline"] - penalty


def threshold_verdicts(ranked: list[list[tuple[str, float]]], answer: float, gap: float,
                       suggest: float) -> list[Verdict]:
    out = []
    for r in ranked:
        if not r or r[0][1] < suggest:
            out.append(Verdict("fallback", None))
            continue
        runner = r[1][1] if len(r) > 1 else 0.0
        decision = "answer" if r[0][1] >= answer and r[0][1] - runner >= gap else "suggest"
        out.append(Verdict(decision, r[0][0]))
    return out


def best_single_threshold(questions, ranked, grid) -> tuple[float, list[Verdict]]:
    """Baselines: answer above t, fallback below (no suggest band, no gap rule)."""
    best = None
    for t in grid:
        verdicts = threshold_verdicts(ranked, t, 0.0, t)
        s = summarise(questions, verdicts)
        if best is None or objective(s) > best[0]:
            best = (objective(s), t, verdicts)
    return best[1], best[2]


def wratio_ranker(kb) -> Ranker:
    from rapidfuzz import fuzz, process

    texts, owners = [], []
    for e in kb.entries:
        for t in [e.title, *e.questions]:
            texts.append(t.lower())
            owners.append(e.id)

    def rank(text: str) -> list[tuple[str, float]]:
        hits = process.extract(text.lower(), texts, scorer=fuzz.WRatio, limit=30)
        seen: dict[str, float] = {}
        for _, score, idx in hits:
            seen.setdefault(owners[idx], score)
        return sorted(seen.items(), key=lambda p: p[1], reverse=True)

    return rank


def bm25_ranker(kb) -> Ranker:
    import bm25s

    ids = [e.id for e in kb.entries]
    corpus = [" ".join([e.title, *e.questions, *e.keywords]).lower() for e in kb.entries]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords=None, show_progress=False), show_progress=False)

    def rank(text: str) -> list[tuple[str, float]]:
        tokens = bm25s.tokenize([text.lower()], stopwords=None, show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = retriever.retrieve(tokens, k=min(5, len(ids)), show_progress=False)
        return [(ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    return rank


def print_table(questions: list[dict], results: dict[str, dict]) -> None:
    names = list(results)
    print(f"{'':24}" + "".join(f"{n:>12}" for n in names))
    first = results[names[0]]
    for key, label in (("top1", f"in-scope top-1 (n={first['n_in']})"),
                       ("decline", f"out-of-scope decline (n={first['n_out']})"),
                       ("wrong", "wrong answers (all)")):
        print(f"{label:24}" + "".join(f"{results[n][key]:>12.1%}" for n in names))
    print("per style tag (in-scope right first / out-of-scope declined):")
    for tag, (count, _) in first["tags"].items():
        print(f"  {tag + f' (n={count})':22}" + "".join(f"{results[n]['tags'][tag][1]:>12.1%}" for n in names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--calibrate", action="store_true", help="grid-search our thresholds")
    parser.add_argument("--errors", action="store_true", help="list our misses")
    args = parser.parse_args()
    if not args.questions.is_file():
        print(f"question set not found: {args.questions}", file=sys.stderr)
        return 2
    settings = load_settings(_env_file=None)
    kb = load_knowledge_base(settings.knowledge_dir, settings.knowledge_local_file)
    questions = load_questions(args.questions)
    matcher = Matcher(kb, thresholds=thresholds_from(settings))
    ours_ranked = [matcher.scores(q["text"])[1] for q in questions]

    if args.calibrate:
        best = None
        for answer in range(30, 80, 2):
            for gap in range(0, 20, 1):
                for suggest in range(10, answer + 1, 2):
                    s = summarise(questions, threshold_verdicts(ours_ranked, answer, gap, suggest))
                    if best is None or objective(s) > best[0]:
                        best = (objective(s), answer, gap, suggest, s)
        _, answer, gap, suggest, s = best
        print(f"best: MATCH_ANSWER_SCORE={answer} MATCH_MIN_GAP={gap} MATCH_SUGGEST_SCORE={suggest}"
              f" -> top1 {s['top1']:.1%} decline {s['decline']:.1%} wrong {s['wrong']:.1%}")
        return 0

    th: Thresholds = matcher.thresholds
    ours = threshold_verdicts(ours_ranked, th.answer_score, th.min_gap, th.suggest_score)
    results = {"ours": summarise(questions, ours)}
    for name, make, grid in (("wratio", wratio_ranker, range(40, 101, 2)),
                             ("bm25", bm25_ranker, [x / 2 for x in range(0, 60)])):
        ranker = make(kb)
        ranked = [ranker(q["text"]) for q in questions]
        _, verdicts = best_single_threshold(questions, ranked, grid)
        results[name] = summarise(questions, verdicts)
    print(f"knowledge base: {len(kb)} entries; questions: {len(questions)} ({args.questions.name})")
    print(f"thresholds: answer>={th.answer_score} gap>={th.min_gap} suggest>={th.suggest_score}")
    print_table(questions, results)
    if args.errors:
        for q, v, r in zip(questions, ours, ours_ranked):
            j = judge(q, v)
            if (j["in_scope"] and not j["top1"]) or (not j["in_scope"] and not j["declined"]) or j["wrong"]:
                top = ", ".join(f"{i}:{s:.0f}" for i, s in r[:3])
                print(f"MISS {q['id']} want={q['topic']} got={v.decision}/{v.faq_id} [{top}] {q['text']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
