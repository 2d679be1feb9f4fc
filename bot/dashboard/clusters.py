"""Group unanswered questions into clusters of similar wording for the "Chưa trả lời" page.

Identical normalised forms are merged first; distinct forms then join the first cluster
whose representative is similar enough (rapidfuzz token_sort_ratio: insensitive to word
order, but unlike token_set_ratio it does not merge a short question into every longer
one that contains it, e.g. "mật khẩu" into "quên mật khẩu vneid"). Forms are compared with
diacritics folded, since citizens type the same question with and without them ("quen mat
khau vneid" scores 71 against "quên mật khẩu vneid" unfolded, 100 folded).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from bot.matching.matcher import Matcher
from bot.matching.normalize import fold
from bot.storage.dashboard_queries import CLOSED_TRIAGE, QuestionRow, TriageRow, text_key, triage_key

SIMILARITY = 75
MAX_CLUSTERS = 150


@dataclass
class Cluster:
    forms: list[str]  # distinct normalised forms, most frequent first
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    wards: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    texts: Counter = field(default_factory=Counter)  # redacted wordings
    guess_id: str | None = None
    guess_title: str | None = None
    guess_score: float | None = None
    guess_confident: bool = False  # scored enough to be suggested to a citizen: worth pre-filling
    draft_id: int | None = None

    @property
    def representative(self) -> str:
        """The most frequent wording; between equally frequent ones, one with diacritics."""
        if not self.texts:
            return self.forms[0]
        return min(self.texts.items(), key=lambda item: (-item[1], item[0].isascii()))[0]

    @property
    def key(self) -> str:
        """Stable id of the cluster in the page (its main form)."""
        return hashlib.sha256(self.forms[0].encode()).hexdigest()[:16]


def reason(row: QuestionRow) -> str:
    if row.outcome in ("unhelpful", "not_these"):
        return row.outcome
    return "fallback"


def build(rows: list[QuestionRow], triage: dict[str, TriageRow], matcher: Matcher | None = None,
          limit: int = MAX_CLUSTERS) -> list[Cluster]:
    """Open clusters (forms closed by staff are left out), biggest first, with the bot's best guess."""
    by_form: dict[str, list[QuestionRow]] = {}
    drafting: dict[str, int] = {}
    for row in rows:
        form = row.normalized.strip()
        if not form:
            continue
        # A decision for all wards, or one for the asker's ward (made by that ward's staff).
        states = [t for t in (triage.get(text_key(form)), row.ward and triage.get(triage_key(form, row.ward))) if t]
        if any(t.state in CLOSED_TRIAGE for t in states):
            continue
        for t in states:
            if t.state == "drafted" and t.draft_id:
                drafting.setdefault(form, t.draft_id)
        by_form.setdefault(form, []).append(row)
    ordered = sorted(by_form, key=lambda f: (-len(by_form[f]), f))
    clusters: list[Cluster] = []
    reps: list[str] = []
    for form in ordered:
        folded = fold(form)
        found = process.extractOne(folded, reps, scorer=fuzz.token_sort_ratio, score_cutoff=SIMILARITY) if reps else None
        group_rows = by_form[form]
        if found is None:
            cluster = Cluster([form], 0, group_rows[0].created_at, group_rows[0].created_at)
            clusters.append(cluster)
            reps.append(folded)
        else:
            cluster = clusters[found[2]]
            cluster.forms.append(form)
        for row in group_rows:
            cluster.count += 1
            cluster.first_seen = min(cluster.first_seen, row.created_at)
            cluster.last_seen = max(cluster.last_seen, row.created_at)
            cluster.wards[row.ward] += 1
            cluster.channels[row.channel] += 1
            cluster.reasons[reason(row)] += 1
            cluster.texts[" ".join(row.text.split())] += 1
        if form in drafting:
            cluster.draft_id = drafting[form]
    clusters.sort(key=lambda c: (-c.count, -c.last_seen.timestamp()))
    clusters = clusters[:limit]
    if matcher is not None:
        for cluster in clusters:
            _normalized, ranked = matcher.scores(cluster.representative)
            if ranked:
                entry = matcher.kb.get(ranked[0][0])
                cluster.guess_id, cluster.guess_score = ranked[0][0], float(ranked[0][1])
                cluster.guess_title = entry.title if entry else None
                cluster.guess_confident = cluster.guess_score >= matcher.thresholds.suggest_score
    return clusters
