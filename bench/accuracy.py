#!/usr/bin/env python3
"""Accuracy of the matcher on the development question sets, against two baselines.

    .venv/bin/python bench/accuracy.py [--questions PATH] [--errors]

Four rankers over the same knowledge base:
  ours     - the project's matcher (bot.matching.Matcher.assess: its ranking, empty when the question
             names a subject of knowledge/meta/not_covered.yaml that the best entry does not cover)
  no-bg    - the same without background word frequencies (the ablation: every word unknown to the
             knowledge base weighs as the rarest known word, and spelling follows the old rule)
  wratio   - rapidfuzz WRatio of the raw lower-cased question against every lower-cased title and
             question variant; an entry scores its best variant
  bm25     - BM25 (bm25s) over each entry's lower-cased title, questions and keywords
Every ranking is turned into answer / suggest / fallback by the same rule, the matcher's own
`bot.matching.matcher.decide`, with three thresholds (answer score, gap to the runner-up,
suggest score). Each system gets its thresholds from the same grid search (grid from the quantiles
of its own scores, so the scale of BM25 does not matter) and the same objective. "ours(set)" uses
the thresholds configured in bot/settings.py instead: what the product does.

v1 (dev-questions.jsonl): as before, every system fitted and judged on v1, then an even/odd
held-out check. `future_topic` lines count as in scope once the knowledge base has their topic.

dev-v2 (dev-questions-v2.jsonl): split once by bench/devset.split_v2 (fixed seed) into a tuning
half and a held-out half. Thresholds are fitted on v1 + the tuning half's single-question lines
only; both halves are then judged, the held-out half in aggregate only (per style), with the
targets of issue 11 beside the figures and the gap between the halves. `multi` lines are judged by
their first topic (shown, not part of the single-question figure); `followup` -b lines need the
previous message, which the matcher does not take: skipped and counted; `bot.smalltalk` lines are
skipped and counted unless the knowledge base has that id; a line whose topic the knowledge base
does not have yet is judged as out of scope (declining it is right), and counted.
`--errors` lists our misses on v1 and the tuning half only, never the held-out half.

Decision ablation (ABLATIONS): the product's matcher at the settings thresholds with one decision
feature switched off at a time (no-focus: a long message weighed whole instead of its story at
half weight, bot/matching/focus.py; no-scope: without knowledge/meta/not_covered.yaml), on both
halves and v1, so each feature's contribution and its effect on the gap are visible.

Judging (as issue 2 defines it): in-scope top-1 = decision answer or suggest with the right id
first (`alt` ids count as right); out-of-scope declined = fallback, or an `alt` id offered for an
adjacent question; wrong = decision answer with an id that is not right. "useful" also counts the
right entry among the choices a not_covered fallback offers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.devset import (  # noqa: E402
    CANDIDATES,
    find_dev_questions,
    find_dev_questions_v2,
    load_questions,
    split_v2,
)
from bot.matching.matcher import Decision, Matcher, MatchResult, Thresholds, decide  # noqa: E402
from bot.matching.scope import Scope  # noqa: E402
from bot.runtime import thresholds_from  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from knowledge.loader import load_knowledge_base  # noqa: E402

Ranked = list[tuple[str, float]]
Ranker = Callable[[str], Ranked]
OUT_TAGS = ("adjacent", "unrelated")
TARGETS = {"top1": 0.92, "decline": 0.85, "wrong": 0.03}
STYLE_TARGET = 0.85  # every style of the held-out half
GAP_TARGET = 4.0  # points between the tuning and held-out halves
V1_TARGET = 0.93


def right_ids(q: dict) -> set[str]:
    return {q["topic"], *q.get("alt", [])} if q["topic"] else set(q.get("alt", []))


def judge(q: dict, r: MatchResult) -> dict:
    right = right_ids(q)
    in_scope = q["topic"] is not None
    offered = r.decision is not Decision.FALLBACK
    return {
        "in_scope": in_scope,
        "top1": in_scope and offered and r.faq_id in right,
        "declined": (not in_scope) and (not offered or r.faq_id in right),
        "wrong": r.decision is Decision.ANSWER and r.faq_id not in right,
    }


def rate(rows: list[dict], key: str) -> tuple[float, int]:
    return (sum(r[key] for r in rows) / len(rows) if rows else float("nan")), len(rows)


def summarise(questions: list[dict], results: list[MatchResult]) -> dict:
    rows = [judge(q, r) for q, r in zip(questions, results)]
    ins = [(q, r) for q, r in zip(questions, rows) if r["in_scope"]]
    outs = [(q, r) for q, r in zip(questions, rows) if not r["in_scope"]]
    in_tags = sorted({t for q, _ in ins for t in q.get("style", [])} - set(OUT_TAGS))
    return {
        "top1": rate([r for _, r in ins], "top1"),
        "in_wrong": rate([r for _, r in ins], "wrong"),
        "decline": rate([r for _, r in outs], "declined"),
        "out_wrong": rate([r for _, r in outs], "wrong"),
        "wrong": rate(rows, "wrong"),
        "in_tags": {t: rate([r for q, r in ins if t in q.get("style", [])], "top1") for t in in_tags},
        "out_tags": {t: rate([r for q, r in outs if t in q.get("style", [])], "declined") for t in OUT_TAGS},
    }


def objective(top1: float, decline: float, wrong: float, answered: float) -> float:
    """Balanced accuracy (in-scope top-1 and out-of-scope decline weigh the same, whatever the
    counts), with a penalty beyond the issue's limits (decline >= 85%, wrong <= 3%).

    `answered` (in-scope questions answered directly and rightly) earns a little and every wrong
    answer costs, so the gap threshold is chosen for something: otherwise suggesting everything
    would score as well as answering.
    """
    penalty = 4 * max(0.0, TARGETS["decline"] - decline) + 4 * max(0.0, wrong - TARGETS["wrong"])
    return (top1 + decline) / 2 + 0.05 * answered - 0.5 * wrong - penalty


# --- calibration ----------------------------------------------------------------------------


@dataclass
class Features:
    """Per question: best and runner-up score, whether the best id is right, scope."""

    s1: np.ndarray
    s2: np.ndarray
    has: np.ndarray
    right1: np.ndarray
    in_scope: np.ndarray

    @classmethod
    def of(cls, questions: list[dict], ranked: list[Ranked]) -> Features:
        return cls(
            np.array([r[0][1] if r else 0.0 for r in ranked]),
            np.array([r[1][1] if len(r) > 1 else 0.0 for r in ranked]),
            np.array([bool(r) for r in ranked]),
            np.array([bool(r) and r[0][0] in right_ids(q) for q, r in zip(questions, ranked)]),
            np.array([q["topic"] is not None for q in questions]),
        )


def grid(feat: Features) -> tuple[np.ndarray, np.ndarray]:
    """Score and gap candidates from the system's own score distribution (scale-free)."""
    tops = feat.s1[feat.has]
    scores = np.unique(np.quantile(tops, np.linspace(0, 1, 41))) if len(tops) else np.array([0.0])
    gaps = (feat.s1 - feat.s2)[feat.has]
    gaps = np.unique(np.r_[0.0, np.quantile(gaps, np.linspace(0.025, 0.6, 24))]) if len(gaps) else np.zeros(1)
    return scores, gaps


def calibrate(questions: list[dict], ranked: list[Ranked]) -> Thresholds:
    """Grid search of (answer, gap, suggest), suggest <= answer, maximising `objective`.

    The search screens the grid with vectorised arithmetic (the decision only depends on the best
    and runner-up scores); the figures reported afterwards come from `decide` itself, and
    `check_screen` asserts that both agree at the chosen point.
    """
    f = Features.of(questions, ranked)
    scores, gaps = grid(f)
    n_in, n_out, n = f.in_scope.sum(), (~f.in_scope).sum(), len(f.s1)
    gap = (f.s1 - f.s2)[None, :]
    best: tuple[float, Thresholds] | None = None
    for suggest in scores:
        offered = f.has & (f.s1 >= suggest)
        top1 = (offered & f.right1 & f.in_scope).sum() / max(n_in, 1)
        declined = (~f.in_scope & (~offered | f.right1)).sum() / max(n_out, 1)
        for answer in scores[scores >= suggest]:
            answered = offered[None, :] & (f.s1 >= answer)[None, :] & (gap >= gaps[:, None])
            wrong = (answered & ~f.right1[None, :]).sum(axis=1) / n
            good = (answered & f.right1[None, :] & f.in_scope[None, :]).sum(axis=1) / max(n_in, 1)
            # Largest gap first: where several gaps score the same, the questions do not decide, and
            # a wider lead before answering directly is the safer choice (fewer confident guesses).
            for g, w, a in reversed(list(zip(gaps, wrong, good))):
                value = objective(top1, declined, w, a)
                if best is None or value > best[0] + 1e-12:
                    best = (value, Thresholds(float(answer), float(g), float(suggest)))
    assert best is not None
    return best[1]


def verdicts(ranked: list[Ranked], thresholds: Thresholds) -> list[MatchResult]:
    return [decide(r, thresholds) for r in ranked]


def check_screen(questions: list[dict], ranked: list[Ranked], th: Thresholds) -> None:
    """The vectorised screen and `decide` must count the same."""
    f = Features.of(questions, ranked)
    offered = f.has & (f.s1 >= th.suggest_score)
    answered = offered & (f.s1 >= th.answer_score) & (f.s1 - f.s2 >= th.min_gap)
    results = verdicts(ranked, th)
    assert [r.decision is not Decision.FALLBACK for r in results] == offered.tolist()
    assert [r.decision is Decision.ANSWER for r in results] == answered.tolist()


def held_out(questions: list[dict], ranked: list[Ranked]) -> tuple[list[MatchResult], list[Thresholds]]:
    """Each half judged with thresholds fitted on the other half."""
    out: list[MatchResult | None] = [None] * len(questions)
    fitted = []
    for part in (0, 1):
        fit = [i for i in range(len(questions)) if i % 2 != part]
        th = calibrate([questions[i] for i in fit], [ranked[i] for i in fit])
        fitted.append(th)
        for i in range(part, len(questions), 2):
            out[i] = decide(ranked[i], th)
    return out, fitted  # type: ignore[return-value]


# --- baselines ------------------------------------------------------------------------------


def in_scope_ranker(matcher: Matcher) -> Ranker:
    """Our ranking, empty when the question names a subject the knowledge base does not cover
    (knowledge/meta/not_covered.yaml): the product never answers those, whatever the thresholds,
    so calibration must not spend its thresholds on them."""

    def rank(text: str) -> Ranked:
        _normalized, ranked, outside = matcher.assess(text)
        return [] if outside else ranked

    return rank


def wratio_ranker(kb) -> Ranker:
    from rapidfuzz import fuzz, process

    texts, owners = [], []
    for e in kb.entries:
        for t in [e.title, *e.questions]:
            texts.append(t.lower())
            owners.append(e.id)

    def rank(text: str) -> Ranked:
        scores = process.extract(text.lower(), texts, scorer=fuzz.WRatio, limit=None)
        best: dict[str, float] = {}
        for _, score, idx in scores:
            if score > best.get(owners[idx], -1.0):
                best[owners[idx]] = score
        return sorted(((i, s) for i, s in best.items() if s > 0), key=lambda p: p[1], reverse=True)

    return rank


def bm25_ranker(kb) -> Ranker:
    import bm25s

    ids = [e.id for e in kb.entries]
    corpus = [" ".join([e.title, *e.questions, *e.keywords]).lower() for e in kb.entries]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords=None, show_progress=False), show_progress=False)

    def rank(text: str) -> Ranked:
        tokens = bm25s.tokenize([text.lower()], stopwords=None, show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = retriever.retrieve(tokens, k=min(5, len(ids)), show_progress=False)
        return [(ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    return rank


def top_ties(ranked: list[Ranked]) -> int:
    """Questions whose best score is shared by two or more entries (the order among them is arbitrary)."""
    return sum(1 for r in ranked if len(r) > 1 and r[0][1] == r[1][1])


# --- report ---------------------------------------------------------------------------------


def fmt(value: tuple[float, int]) -> str:
    return f"{value[0]:>12.1%}" if value[1] else f"{'-':>12}"


def print_table(title: str, results: dict[str, dict]) -> None:
    names = list(results)
    first = results[names[0]]
    print(f"\n{title}")
    print(f"{'':34}" + "".join(f"{n:>12}" for n in names))

    def row(label: str, get: Callable[[dict], tuple[float, int]]) -> None:
        print(f"{label:34}" + "".join(fmt(get(results[n])) for n in names))

    print(f"in scope (n={first['top1'][1]})")
    row(f"  top-1 right (target >= {TARGETS['top1']:.0%})", lambda s: s["top1"])
    row("  answered wrong", lambda s: s["in_wrong"])
    for tag, (_, count) in first["in_tags"].items():
        row(f"  {tag} (n={count})", lambda s, tag=tag: s["in_tags"][tag])
    print(f"out of scope (n={first['decline'][1]})")
    row(f"  declined (target >= {TARGETS['decline']:.0%})", lambda s: s["decline"])
    row("  answered wrong", lambda s: s["out_wrong"])
    for tag, (_, count) in first["out_tags"].items():
        row(f"  {tag} declined (n={count})", lambda s, tag=tag: s["out_tags"][tag])
    row(f"all: answered wrong (target <= {TARGETS['wrong']:.0%})", lambda s: s["wrong"])


def show(th: Thresholds) -> str:
    return f"answer>={th.answer_score:.4g} gap>={th.min_gap:.4g} suggest>={th.suggest_score:.4g}"


def v2_scorable(questions: list[dict], kb_ids: set[str]) -> tuple[list[dict], dict[str, int]]:
    """The dev-v2 lines the matcher can be judged on, and how many were left aside (and why).

    `multi`: judged by its first `topic`. `followup` -b lines need the previous message as context,
    which the matcher does not take: skipped and counted; -a lines are ordinary questions.
    `bot.smalltalk`: in scope if the knowledge base has that id, else skipped and counted. A line
    whose topic the knowledge base does not have yet (a topic still being written) is judged as out
    of scope, like `future_topic` lines until their topic exists: declining it is right.
    """
    out: list[dict] = []
    skipped = {"followup -b (needs context)": 0, "bot.smalltalk (no such entry)": 0}
    pending = 0
    for q in questions:
        if q["id"].endswith("-b") and "followup" in q.get("style", []):
            skipped["followup -b (needs context)"] += 1
            continue
        topic = q["topic"]
        if topic is None and q.get("future_topic") in kb_ids:
            topic = q["future_topic"]
        if topic == "bot.smalltalk" and topic not in kb_ids:
            skipped["bot.smalltalk (no such entry)"] += 1
            continue
        alt = [a for a in q.get("alt", []) if a in kb_ids]
        waiting = None
        if topic is not None and topic not in kb_ids:
            pending += 1
            waiting, topic, alt = topic, None, []
        out.append({**q, "topic": topic, "alt": alt, "pending": waiting})
    skipped["topic not in the KB yet (judged out of scope)"] = pending
    return out, skipped


def per_style(questions: list[dict], results: list[MatchResult]) -> dict[str, tuple[float, int]]:
    rows = [(q, judge(q, r)) for q, r in zip(questions, results)]
    tags = sorted({t for q, j in rows if j["in_scope"] for t in q.get("style", [])})
    return {t: rate([j for q, j in rows if j["in_scope"] and t in q.get("style", [])], "top1") for t in tags}


def print_v2(title: str, sets: dict[str, list[dict]], verdict_sets: dict[str, dict[str, list[MatchResult]]]) -> None:
    """One table per system group: rows are measures, columns the tuning and held-out halves."""
    print(f"\n{title}")
    names = list(verdict_sets)
    cols = [(n, part) for n in names for part in sets]
    print(f"{'':40}" + "".join(f"{n[:10] + '/' + part[:4]:>16}" for n, part in cols))
    summaries = {(n, part): summarise(sets[part], verdict_sets[n][part]) for n, part in cols}
    styles = {(n, part): per_style(sets[part], verdict_sets[n][part]) for n, part in cols}

    def row(label: str, get) -> None:
        print(f"{label:40}" + "".join(f"{fmt(get(n, part)):>16}" for n, part in cols))

    single = {(n, part): summarise(*single_question(sets[part], verdict_sets[n][part])) for n, part in cols}
    row(f"top-1, single-question styles (>= {TARGETS['top1']:.0%})", lambda n, p: single[n, p]["top1"])
    row("  answered wrong, single-question lines", lambda n, p: single[n, p]["wrong"])
    row("in scope top-1 right, multi included", lambda n, p: summaries[n, p]["top1"])
    all_tags = sorted({t for v in styles.values() for t in v})
    for tag in all_tags:
        counts = "/".join(str(styles[names[0], part].get(tag, (0, 0))[1]) for part in sets)
        row(f"  {tag} (n={counts}, target >= {STYLE_TARGET:.0%})",
            lambda n, p, tag=tag: styles[n, p].get(tag, (float("nan"), 0)))
    row("  in scope answered wrong", lambda n, p: summaries[n, p]["in_wrong"])
    counts = "/".join(str(summaries[names[0], part]["decline"][1]) for part in sets)
    row(f"out of scope declined (n={counts}, >= {TARGETS['decline']:.0%})", lambda n, p: summaries[n, p]["decline"])
    row(f"all answered wrong (target <= {TARGETS['wrong']:.0%})", lambda n, p: summaries[n, p]["wrong"])
    row("useful (right first, or among choices)", lambda n, p: useful(sets[p], verdict_sets[n][p]))
    if len(sets) == 2:
        first, second = list(sets)
        gaps = []
        for n in names:
            a, b = single[n, first]["top1"][0], single[n, second]["top1"][0]
            gaps.append(f"{n}: {100 * (a - b):+.1f}")
        print(f"gap in single-question top-1, {first} minus {second} (target <= {GAP_TARGET:.0f} points): "
              + ", ".join(gaps))


def print_ranking(sets: dict[str, list[dict]], ranked: dict[str, dict[str, list[Ranked]]]) -> None:
    """Ranking before any decision: in-scope single-question lines whose right entry is first, or in
    the first three (what choices could offer), per system and half."""
    print("\nranking before the decision (in-scope single-question lines): right entry first / in top 3")
    for name, parts in ranked.items():
        cells = []
        for part, questions in sets.items():
            pairs = [(q, r) for q, r in zip(questions, parts[part])
                     if q["topic"] is not None and "multi" not in q.get("style", [])]
            first = sum(bool(r) and r[0][0] in right_ids(q) for q, r in pairs)
            top3 = sum(bool(right_ids(q).intersection(i for i, _ in r[:3])) for q, r in pairs)
            cells.append(f"{part} {first / len(pairs):.1%} / {top3 / len(pairs):.1%} (n={len(pairs)})")
        print(f"  {name:8} " + "   ".join(cells))


# Decision features, each switched off alone (Matcher keyword arguments), at the settings
# thresholds: what each contributes to the product as shipped.
ABLATIONS: dict[str, dict] = {
    "no-focus": {"focus": False},  # a long message weighed whole, story and question alike (focus.py)
    "no-scope": {"scope": Scope([])},  # no list of neighbouring subjects (knowledge/meta/not_covered.yaml)
}


def print_ablation(kb, settings, sets: dict[str, list[dict]], configured: dict[str, list[MatchResult]]) -> None:
    halves = {part: sets[part] for part in ("tuning", "held-out")}
    verdict_sets = {"ours(set)": configured}
    for name, options in ABLATIONS.items():
        variant = Matcher(kb, thresholds=thresholds_from(settings), **options)
        verdict_sets[name] = {part: [variant.match(q["text"]) for q in qs] for part, qs in sets.items()}
    print_v2("decision ablation: each feature off alone, settings thresholds", halves, verdict_sets)
    v1 = "   ".join(f"{name} {fmt(summarise(sets['v1'], parts['v1'])['top1'])}" for name, parts in verdict_sets.items())
    print(f"v1 top-1: {v1}")


def print_targets(sets: dict[str, list[dict]], configured: dict[str, list[MatchResult]], v1: dict) -> None:
    """Issue 11's targets against the product's thresholds (settings), held-out half."""
    held = summarise(*single_question(sets["held-out"], configured["held-out"]))
    tuning = summarise(*single_question(sets["tuning"], configured["tuning"]))
    styles = {t: v for t, v in per_style(sets["held-out"], configured["held-out"]).items() if t != "multi"}
    worst = min(styles.items(), key=lambda item: item[1][0])
    gap = 100 * (tuning["top1"][0] - held["top1"][0])
    checks = [
        (f"held-out top-1, single-question styles >= {TARGETS['top1']:.0%}", f"{held['top1'][0]:.1%}",
         held["top1"][0] >= TARGETS["top1"]),
        (f"held-out answered wrong <= {TARGETS['wrong']:.0%}", f"{held['wrong'][0]:.1%}", held["wrong"][0] <= TARGETS["wrong"]),
        (f"held-out out of scope declined >= {TARGETS['decline']:.0%}", f"{held['decline'][0]:.1%}",
         held["decline"][0] >= TARGETS["decline"]),
        (f"held-out every style >= {STYLE_TARGET:.0%} (lowest)", f"{worst[0]} {worst[1][0]:.1%}", worst[1][0] >= STYLE_TARGET),
        (f"gap tuning - held-out <= {GAP_TARGET:.0f} points", f"{gap:+.1f}", gap <= GAP_TARGET),
        (f"v1 top-1 >= {V1_TARGET:.0%}", f"{v1['top1'][0]:.1%}", v1["top1"][0] >= V1_TARGET),
    ]
    print("\nissue 11 targets, settings thresholds (what the product does)")
    for label, value, ok in checks:
        print(f"  {label:52} {value:>22}  {'PASS' if ok else 'FAIL'}")


def single_question(questions: list[dict], results: list[MatchResult]) -> tuple[list[dict], list[MatchResult]]:
    """The lines of single-question styles (all but `multi`), which the targets are about."""
    keep = [i for i, q in enumerate(questions) if "multi" not in q.get("style", [])]
    return [questions[i] for i in keep], [results[i] for i in keep]


def useful(questions: list[dict], results: list[MatchResult]) -> tuple[float, int]:
    """In-scope questions where the right entry is answered, offered first, or among the choices
    a fallback offers (not_covered alternatives): the citizen can reach it in one tap."""
    rows = []
    for q, r in zip(questions, results):
        if q["topic"] is None:
            continue
        right = right_ids(q)
        offered = ([r.faq_id] if r.faq_id else []) + list(r.alternatives)
        rows.append({"useful": bool(right.intersection(offered))})
    return rate(rows, "useful")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=None, help="dev-questions.jsonl (found by default)")
    parser.add_argument("--errors", action="store_true",
                        help="list our misses (settings thresholds) on v1 and the dev-v2 tuning half only")
    parser.add_argument("--no-dialogue", action="store_true",
                        help="skip the conversation-skill figures (small talk, two questions, follow-ups)")
    args = parser.parse_args()
    path = args.questions or find_dev_questions()
    if path is None or not path.is_file():
        looked = args.questions or ", ".join(map(str, CANDIDATES))
        print(f"question set not found (looked at {looked})", file=sys.stderr)
        return 2
    settings = load_settings(_env_file=None)
    kb = load_knowledge_base(settings.knowledge_dir, settings.knowledge_local_file)
    # v1 `future_topic` lines count as in scope once the knowledge base has their topic.
    questions, _v1_skipped = v2_scorable(load_questions(path), set(kb.by_id))
    matcher = Matcher(kb, thresholds=thresholds_from(settings))
    plain = Matcher(kb, thresholds=thresholds_from(settings), background=False)  # the ablation

    path_v2 = find_dev_questions_v2()
    sets: dict[str, list[dict]] = {"v1": questions}
    skipped: dict[str, dict[str, int]] = {}
    if path_v2 is not None:
        tuning, held = split_v2(load_questions(path_v2))
        sets["tuning"], skipped["tuning"] = v2_scorable(tuning, set(kb.by_id))
        sets["held-out"], skipped["held-out"] = v2_scorable(held, set(kb.by_id))

    rankers: dict[str, Ranker] = {"ours": in_scope_ranker(matcher), "no-bg": in_scope_ranker(plain),
                                  "wratio": wratio_ranker(kb), "bm25": bm25_ranker(kb)}
    ranked = {name: {part: [rank(q["text"]) for q in qs] for part, qs in sets.items()}
              for name, rank in rankers.items()}
    configured = {part: [matcher.match(q["text"]) for q in qs] for part, qs in sets.items()}

    # --- v1, as before: every system calibrated on v1 itself, and an even/odd held-out check.
    v1_ranked = {n: r["v1"] for n, r in ranked.items()}
    fitted = {name: calibrate(questions, r) for name, r in v1_ranked.items()}
    for name, th in fitted.items():
        check_screen(questions, v1_ranked[name], th)
    results = {"ours(set)": summarise(questions, configured["v1"])}
    results.update({f"{n}(cal)": summarise(questions, verdicts(v1_ranked[n], th)) for n, th in fitted.items()})
    held = {name: held_out(questions, r) for name, r in v1_ranked.items()}

    print(f"knowledge base: {len(kb)} entries; v1 questions: {len(questions)} ({path})")
    print(f"ours(set): settings thresholds {show(matcher.thresholds)}  "
          f"[no-bg = ours without background word frequencies: the ablation]")
    print("semantic model: none adopted; this run is the lexical matcher only (bench/semantic.py measures "
          "e5-small alone, with restored diacritics and as a decision signal: it did not pay on the held-out half)")
    for name, th in fitted.items():
        print(f"{name}(cal): fitted on all v1 questions {show(th)}")
    n_in = sum(q["topic"] is not None for q in questions)
    ties = top_ties([r for q, r in zip(questions, v1_ranked["wratio"]) if q["topic"] is not None])
    print(f"wratio: {ties}/{n_in} in-scope questions tie at the top (several entries share the best score); "
          f"{top_ties(v1_ranked['wratio'])}/{len(questions)} overall. ours: {top_ties(v1_ranked['ours'])}, "
          f"bm25: {top_ties(v1_ranked['bm25'])} overall")
    print_table(f"v1, fitted and judged on the same questions (target: no regression below {V1_TARGET:.0%})", results)
    print_table("v1 held out: thresholds fitted on the other half (even/odd lines)",
                {f"{n}(held)": summarise(questions, h[0]) for n, h in held.items()})
    for name, (_, ths) in held.items():
        print(f"  {name} halves: " + " | ".join(show(t) for t in ths))

    if path_v2 is None:
        print("\ndev-questions-v2 not found: v2 figures not computed")
    else:
        # --- v2: thresholds fitted on v1 + the tuning half only; the held-out half is judged blind.
        # Fitted on single-question lines: a `multi` message answered by its second question is
        # judged wrong, which would push every threshold up for a case the conversation handles.
        single = [i for i, q in enumerate(sets["tuning"]) if "multi" not in q.get("style", [])]
        fit_q = sets["v1"] + [sets["tuning"][i] for i in single]
        fit_th = {n: calibrate(fit_q, r["v1"] + [r["tuning"][i] for i in single]) for n, r in ranked.items()}
        halves = {part: sets[part] for part in ("tuning", "held-out")}
        print(f"\ndev-v2 ({path_v2}): split by bench/devset.SPLIT_SEED; held-out half scored in aggregate only")
        for part, counts in skipped.items():
            print(f"  {part}: {len(sets[part])} lines judged; left aside or re-scoped: "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for name, th in fit_th.items():
            print(f"  {name}(cal): fitted on v1 + tuning half {show(th)}")
        verdict_sets = {"ours(set)": configured}
        verdict_sets.update({f"{n}(cal)": {p: verdicts(ranked[n][p], fit_th[n]) for p in halves} for n in ranked})
        print_v2("dev-v2, ours: settings thresholds and fitted, with and without background frequencies",
                 halves, {k: verdict_sets[k] for k in ("ours(set)", "ours(cal)", "no-bg(cal)")})
        print_v2("dev-v2 baselines (same decision rule, thresholds fitted on v1 + tuning half)",
                 halves, {k: verdict_sets[k] for k in ("wratio(cal)", "bm25(cal)")})
        print_ranking(halves, {n: {p: ranked[n][p] for p in halves} for n in ranked})
        print_ablation(kb, settings, sets, configured)
        print_targets(sets, configured, results["ours(set)"])

    if args.errors:
        for part in ("v1", "tuning"):  # never the held-out half
            for q, v, r in zip(sets.get(part, []), configured.get(part, []), ranked["ours"].get(part, [])):
                j = judge(q, v)
                if (j["in_scope"] and not j["top1"]) or (not j["in_scope"] and not j["declined"]) or j["wrong"]:
                    top = ", ".join(f"{i}:{s:.0f}" for i, s in r[:3])
                    cov = " not_covered" if v.not_covered else ""
                    want = q["topic"] or (f"None(pending {q['pending']})" if q.get("pending") else None)
                    print(f"MISS {q['id']} want={want} got={v.decision}/{v.faq_id}{cov} [{top}] {q['text']}")
    if not args.no_dialogue:
        # The multi, followup and small-talk lines through the conversation itself (bench/dialogue.py).
        from bench.dialogue import report_dialogue

        print()
        report_dialogue()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
