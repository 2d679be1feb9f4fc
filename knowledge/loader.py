"""Load the YAML knowledge base and report every problem with file and entry id."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from knowledge.freshness import source_urls
from knowledge.schema import CATEGORIES, MAX_ANSWER_CHARS, Entry
from knowledge.yamlfile import read_yaml

TOPICS_FILE = Path(__file__).resolve().parent / "meta" / "topics.yaml"
# Every file's ids must have an entry: the first batch and the second (topics-2.yaml).
TOPICS_FILES = (TOPICS_FILE, TOPICS_FILE.with_name("topics-2.yaml"))
# Answers may say {name} for a value that comes from configuration (see fill_placeholders).
PLACEHOLDERS = {"retention_days": "LOG_RETENTION_DAYS"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Problem:
    file: str
    entry_id: str | None
    message: str
    local: bool = False  # found in the local overrides file (KNOWLEDGE_LOCAL_FILE), not KNOWLEDGE_DIR

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry_id}" if self.entry_id else self.file
        return f"{where}: {self.message}"


class KnowledgeError(Exception):
    """The knowledge base cannot be used; `problems` says why, with file and entry id."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"Knowledge base has {len(problems)} problem(s): {head}{more}")


@dataclass
class KnowledgeBase:
    """Entries by id, plus ward-specific variants of local entries."""

    entries: list[Entry]
    ward_variants: dict[tuple[str, str], Entry] = field(default_factory=dict)
    suspended: frozenset[str] = frozenset()  # ids staff suspended (dashboard); not given to citizens

    def __post_init__(self) -> None:
        self.by_id = {entry.id: entry for entry in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, entry_id: str, ward: str | None = None) -> Entry | None:
        if ward and (entry_id, ward) in self.ward_variants:
            return self.ward_variants[(entry_id, ward)]
        return self.by_id.get(entry_id)

    def in_category(self, category: str) -> list[Entry]:
        return [entry for entry in self.entries if entry.category == category]

    def categories(self) -> list[str]:
        present = {entry.category for entry in self.entries}
        return [cat for cat in CATEGORIES if cat in present]

    def with_entries(self, extra: Iterable[Entry]) -> KnowledgeBase:
        """A new knowledge base where `extra` entries replace or add to these ones."""
        merged = dict(self.by_id)
        for entry in extra:
            merged[entry.id] = entry
        return KnowledgeBase(list(merged.values()), dict(self.ward_variants), self.suspended)


def required_topic_ids(path: Path = TOPICS_FILE) -> list[str]:
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise yaml.YAMLError("top level must be a mapping of topic id -> details")
    return list(data)


def _read_yaml(path: Path, problems: list[Problem]) -> list[dict] | None:
    try:
        data = read_yaml(path)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path.name, None, f"cannot read file: {exc}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(path.name, None, f"invalid YAML: {exc}".replace("\n", " ")))
        return None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        problems.append(Problem(path.name, None, "top level must be a mapping with a list 'entries'"))
        return None
    return data["entries"]


def _parse_entries(path: Path, raw: list, problems: list[Problem], shipped: bool = True) -> list[Entry]:
    parsed = []
    for index, item in enumerate(raw):
        label = item.get("id") if isinstance(item, dict) else None
        label = label or f"entry #{index + 1}"
        if not isinstance(item, dict):
            problems.append(Problem(path.name, label, "entry must be a mapping"))
            continue
        try:
            entry = Entry.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "entry"
                problems.append(Problem(path.name, str(label), f"{loc}: {err['msg']}"))
            continue
        problems.extend(Problem(path.name, entry.id, msg) for msg in _content_problems(entry, shipped))
        parsed.append(entry)
    return parsed


def _content_problems(entry: Entry, shipped: bool = True) -> list[str]:
    """`shipped`: an entry of KNOWLEDGE_DIR, which must cite a URL; local entries (exported from
    the dashboard, checked when published) may name a document instead."""
    found = []
    if len(entry.answer_text) > MAX_ANSWER_CHARS:
        found.append(
            f"answer is {len(entry.answer_text)} characters; keep it under {MAX_ANSWER_CHARS} "
            "so it fits one chat message"
        )
    for link in entry.links:
        if not link.startswith("https://") or " " in link:
            found.append(f"link {link!r} must be an https:// URL")
    if entry.id in entry.related:
        found.append("related lists the entry itself")
    if shipped and not source_urls(entry.source):
        found.append("source must contain at least one http(s) URL of where the facts come from")
    for name in sorted(set(_PLACEHOLDER.findall(entry.answer)) - PLACEHOLDERS.keys()):
        found.append(f"unknown placeholder {{{name}}} in answer; known: "
                     + ", ".join(f"{{{k}}} ({v})" for k, v in PLACEHOLDERS.items()))
    return found


def _load_local(path: Path, base: dict[str, Entry], problems: list[Problem]):
    """Local overrides: same id replaces fields; with `wards`, only for those wards."""
    replaced: dict[str, Entry] = {}
    variants: dict[tuple[str, str], Entry] = {}
    raw = _read_yaml(path, problems)
    if raw is None:
        return replaced, variants
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("id"):
            problems.append(Problem(path.name, f"entry #{index + 1}", "needs an 'id'"))
            continue
        original = base.get(item["id"])
        merged = {**original.model_dump(), **item} if original else item
        entries = _parse_entries(path, [merged], problems, shipped=False)
        if not entries:
            continue
        entry = entries[0]
        if item.get("wards"):
            for ward in entry.wards:
                variants[(entry.id, ward)] = entry
        else:
            replaced[entry.id] = entry
    return replaced, variants


def collect(knowledge_dir: Path, local_file: Path | None = None,
            topics_file: Path | Sequence[Path] | None = TOPICS_FILES) -> tuple[KnowledgeBase, list[Problem]]:
    """Read everything, returning the usable entries and every problem found.

    `topics_file` is one required-topics file or several (default: both batches);
    `topics_file=None` skips the topic-coverage check (fixtures with a handful of entries); a
    topics file that cannot be read is a problem, never a silent skip.
    """
    problems: list[Problem] = []
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    if not knowledge_dir.is_dir():
        problems.append(Problem(str(knowledge_dir), None, "knowledge directory does not exist"))
        return KnowledgeBase([]), problems
    files = sorted(knowledge_dir.glob("*.yaml"))
    if not files:
        problems.append(Problem(str(knowledge_dir), None, "no *.yaml knowledge files found"))
    for path in files:
        raw = _read_yaml(path, problems)
        if raw is None:
            continue
        for entry in _parse_entries(path, raw, problems):
            if entry.id in seen:
                problems.append(
                    Problem(path.name, entry.id, f"duplicate id (first defined in {seen[entry.id]})")
                )
                continue
            seen[entry.id] = path.name
            entries.append(entry)

    by_id = {entry.id: entry for entry in entries}
    variants: dict[tuple[str, str], Entry] = {}
    if local_file is not None:
        local_problems: list[Problem] = []
        if not local_file.is_file():
            local_problems.append(Problem(str(local_file), None, "local knowledge file does not exist"))
        else:
            replaced, variants = _load_local(local_file, by_id, local_problems)
            by_id.update(replaced)
            entries = list(by_id.values())
        problems.extend(dataclasses.replace(p, local=True) for p in local_problems)

    for entry in entries:
        for rel in entry.related:
            if rel not in by_id:
                problems.append(
                    Problem(seen.get(entry.id, "local"), entry.id, f"related id {rel!r} does not exist")
                )
    topics_files = [] if topics_file is None else [topics_file] if isinstance(topics_file, Path) else topics_file
    for path in topics_files:
        problems.extend(_coverage_problems(path, by_id))
    return KnowledgeBase(entries, variants), problems


def _coverage_problems(topics_file: Path, by_id: dict[str, Entry]) -> list[Problem]:
    try:
        required = required_topic_ids(topics_file)
    except (OSError, yaml.YAMLError) as exc:
        return [Problem(str(topics_file), None,
                        f"cannot read the required topic list, so coverage is unchecked: {exc}")]
    return [Problem(topics_file.name, topic, "required topic has no entry") for topic in required if topic not in by_id]


def fill_placeholders(kb: KnowledgeBase, values: dict[str, str]) -> KnowledgeBase:
    """The knowledge base with {name} in answers replaced by configured values (e.g. the log
    retention the privacy answer states), so the text never contradicts the settings."""

    def fill(entry: Entry) -> Entry:
        text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), entry.answer)
        return entry if text == entry.answer else entry.model_copy(update={"answer": text})

    return KnowledgeBase([fill(e) for e in kb.entries], {k: fill(e) for k, e in kb.ward_variants.items()},
                         kb.suspended)


def validate_knowledge(knowledge_dir: Path, local_file: Path | None = None) -> list[Problem]:
    return collect(knowledge_dir, local_file)[1]


def load_knowledge_base(knowledge_dir: Path, local_file: Path | None = None) -> KnowledgeBase:
    """Load for serving; any problem stops start-up with a message naming file and entry."""
    kb, problems = collect(knowledge_dir, local_file)
    if problems:
        raise KnowledgeError(problems)
    return kb
