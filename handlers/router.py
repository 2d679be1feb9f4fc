"""The conversation's routing table, read as one (as PTB's `ConversationHandler`).

Every feature (handlers/campaigns.py, subscriptions.py, staff.py, handoff.py, privacy.py,
and the menus and answers in conversation.py) returns a `Routes`: its commands, the typed
button payloads it answers (bot/contracts/payloads.py), the dialogue states whose typed text it
reads (bot/contracts/states.py), and a fallback for a malformed payload or state of its
namespace. `Router` merges them and finds the handler for a command, an action or a state.
Adding a command is one line in its feature's table.

Features get a `FeatureContext` (knowledge, storage, messenger, configuration), never the
`Conversation`, so they import nothing from it.

- A command: one line in the feature's `routes()`: `commands={"dangky": self.start, ...}`.
- A button: a `Payload` subclass in bot/contracts/payloads.py (prefix under the feature's
  namespace, typed fields), built with `Cls(...).pack()`, answered by one line
  `actions={Cls: self.on_cls}` (the handler receives the unpacked payload).
- A state: a `State` subclass in bot/contracts/states.py, stored with `ctx.set_state(user,
  Cls(...))`, read by one line `states={Cls: self.on_text}` (the handler gets the state and
  the typed text, and returns None to let it be read as a question).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from bot.contracts.messages import IncomingMessage, Messenger, Reply
from bot.contracts.payloads import Packed, Payload, namespace
from bot.contracts.states import State
from bot.matching import MatchResult
from bot.matching.live import LiveKnowledge
from bot.storage.store import Store, UserInfo
from handlers.verdict import Verdict
from knowledge.schema import Entry


@dataclass
class Outcome:
    """The replies to send, and the matcher's verdict when the message was a question."""

    replies: list[Reply]
    match: MatchResult | None = None
    question_id: int | None = None
    verdict: Verdict | None = None  # set for free-text messages (handlers/verdict.py)


@dataclass
class Turn:
    """One incoming message with the sender's stored record (None in the storage-free core,
    for a team group, and while the database is unreachable)."""

    msg: IncomingMessage
    user: UserInfo | None
    arrived: bool = False  # the sender was recorded with the event's claim (middleware.Deduplicate)


@dataclass
class ConversationConfig:
    wards: dict[str, str] = field(default_factory=dict)  # slug -> display name
    team_chats: dict[str, str] = field(default_factory=dict)  # ward slug or "default" -> chat id
    team_channel: str = "telegram"
    flood_limit_per_minute: int = 20  # 0: no limit (terminal chat, `converse`)
    retention_days: int = 365
    delivery_lease_seconds: float = 120.0  # see bot/handoff/service.py

    def team_chat_for(self, ward: str | None) -> str | None:
        return self.team_chats.get(ward or "", self.team_chats.get("default"))

    def is_team_chat(self, chat_id: str) -> bool:
        return chat_id in self.team_chats.values()


@dataclass
class FeatureContext:
    """What a feature may use: the knowledge base, storage (every feature here keeps state;
    the storage-free core, handlers/answering.py, has none), the messenger (None without
    channels), settings."""

    knowledge: LiveKnowledge
    store: Store
    messenger: Messenger | None
    config: ConversationConfig

    async def set_state(self, user: UserInfo, state: State | None, **fields: Any) -> None:
        """Store the user's dialogue state (None: back to talking to the bot)."""
        await self.store.users.update(user.id, state=state.pack() if state is not None else "", **fields)


class Answering(Protocol):
    """What the conversation skills (handlers/dialogue.py) use of the FAQ answering, which
    `Answerer` (handlers/answering.py) implements: they get this, not that module."""

    knowledge: LiveKnowledge

    def match(self, text: str) -> MatchResult: ...

    def entry_replies(self, turn: Turn, entry_id: str, question_ref: str = "0") -> list[Reply]: ...

    def answer_reply(self, entry: Entry, question_ref: str) -> Reply: ...

    def shown_ids(self, ids: list[str]) -> list[str]: ...

    async def answer_single(self, turn: Turn, text: str, result: MatchResult) -> Outcome: ...

    async def log_question(self, turn: Turn, text: str, result: MatchResult,
                           streak: int | None = None, decision: str | None = None) -> int | None: ...


Result = list[Reply] | Outcome
CommandHandler = Callable[[Turn], Awaitable[Result]]
ActionHandler = Callable[[Turn, Any], Awaitable[Result]]  # (turn, the unpacked payload)
StateHandler = Callable[[Turn, Any, str], Awaitable[Result | None]]  # (turn, state or None, text); None: a question
Fallback = Callable[[Turn], Awaitable[Result]]


@dataclass
class Routes:
    """One feature's table."""

    commands: dict[str, CommandHandler] = field(default_factory=dict)
    actions: dict[type[Payload], ActionHandler] = field(default_factory=dict)
    states: dict[type[State], StateHandler] = field(default_factory=dict)
    # namespace -> answer to a malformed payload of it (default: "unknown action" with the menu)
    malformed: dict[str, Fallback] = field(default_factory=dict)
    # namespace -> reading of text in a malformed stored state of it (default: a question)
    malformed_states: dict[str, StateHandler] = field(default_factory=dict)


K = TypeVar("K", bound=Packed)
H = TypeVar("H")


class _Table(Generic[K, H]):
    """Packed classes by namespace, the longest prefix tried first ("camp:seg" before "camp")."""

    def __init__(self) -> None:
        self._by_space: dict[str, list[tuple[type[K], H]]] = {}

    def add(self, cls: type[K], handler: H) -> None:
        entries = self._by_space.setdefault(namespace(cls.PREFIX), [])
        if any(c.PREFIX == cls.PREFIX and c is cls for c, _ in entries):
            raise ValueError(f"{cls.__name__} registered twice")
        entries.append((cls, handler))
        entries.sort(key=lambda item: -len(item[0].PREFIX))

    def find(self, packed: str) -> tuple[K, H] | None:
        for cls, handler in self._by_space.get(namespace(packed), ()):
            value = cls.unpack(packed)
            if value is not None:
                return value, handler
        return None


class Router:
    """All features' routes; refuses a command, payload class or namespace claimed twice."""

    def __init__(self, routes: Iterable[Routes] = ()):
        self.commands: dict[str, CommandHandler] = {}
        self._actions: _Table[Payload, ActionHandler] = _Table()
        self._states: _Table[State, StateHandler] = _Table()
        self._malformed: dict[str, Fallback] = {}
        self._malformed_states: dict[str, StateHandler] = {}
        for table in routes:
            self.add(table)

    def add(self, routes: Routes) -> None:
        for name, handler in routes.commands.items():
            if name in self.commands:
                raise ValueError(f"command /{name} registered twice")
            self.commands[name] = handler
        for cls, action in routes.actions.items():
            self._actions.add(cls, action)
        for cls, reader in routes.states.items():
            self._states.add(cls, reader)
        for target, source in ((self._malformed, routes.malformed), (self._malformed_states, routes.malformed_states)):
            for space, handler in source.items():
                if space in target:
                    raise ValueError(f"namespace {space!r} has two fallbacks")
                target[space] = handler  # type: ignore[assignment]

    def action(self, action: str) -> tuple[Payload | None, ActionHandler | Fallback | None]:
        """(payload, its handler), (None, the namespace's fallback) or (None, None): unknown."""
        found = self._actions.find(action)
        if found is not None:
            return found
        return None, self._malformed.get(namespace(action))

    def state(self, stored: str) -> tuple[State | None, StateHandler | None]:
        """(state, its reader), (None, the namespace's reader) or (None, None): read as a question."""
        if not stored:
            return None, None
        found = self._states.find(stored)
        if found is not None:
            return found
        return None, self._malformed_states.get(namespace(stored))
