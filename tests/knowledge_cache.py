"""The knowledge base loaded and indexed once per test process, handed to each service a test
starts (`Runtime.open(settings, knowledge_for(settings))`): loading and indexing is about 1 s of
CPU, the biggest part of starting a service, and the suite starts hundreds."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from pathlib import Path

from bot.matching.live import LiveKnowledge
from bot.runtime import load_live_knowledge, placeholders_from, thresholds_from
from bot.settings import DEFAULT_KNOWLEDGE_DIR, Settings
from knowledge.schema import Entry

_built: dict[tuple, LiveKnowledge] = {}


def _knowledge_key(settings: Settings) -> tuple:
    """What a loaded knowledge base depends on: the bytes of every file it may be read from
    (the knowledge folder, the shipped one with the lexicon, the local file) and the settings
    the loader takes, so a test that writes a knowledge file gets that file, never a stale copy."""
    digest = hashlib.sha1()
    for root in sorted({Path(settings.knowledge_dir), DEFAULT_KNOWLEDGE_DIR}):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    local = settings.knowledge_local_file
    if local is not None:
        digest.update(str(local).encode() + b"\0" + (Path(local).read_bytes() if Path(local).is_file() else b"-"))
    return digest.hexdigest(), repr(thresholds_from(settings)), tuple(sorted(placeholders_from(settings).items()))


def knowledge_for(settings: Settings, extra_entries: Sequence[Entry] = ()) -> LiveKnowledge:
    """What `load_live_knowledge(settings)` returns, loaded once per distinct set of files and
    settings, with `extra_entries` replacing or adding entries (indexed once per distinct set).
    Each caller gets its own `LiveKnowledge` holding the shared matcher: a reload or an overlay
    (`replace`) swaps that caller's matcher only, and nothing changes a matcher or a knowledge
    base in place. Errors are never cached: a broken file fails as it would in the service."""
    key = _knowledge_key(settings) + tuple(entry.model_dump_json() for entry in extra_entries)
    if key not in _built:
        if extra_entries:
            knowledge = knowledge_for(settings)
            knowledge.replace(knowledge.kb.with_entries(extra_entries))
        else:
            knowledge = load_live_knowledge(settings)
        _built[key] = knowledge
    return copy.copy(_built[key])
