"""The channel contract is declared (bot/channels/base.py), never discovered.

Channels, the web app, the health checks and the composition root talk to a channel only
through what `Channel` declares: no getattr/hasattr/inspect probing, no replacing a
channel's methods from outside. Every channel class subclasses `Channel`, and a new one gets
pacing, metrics, health reporting and numbered-text buttons from the base by implementing
`transmit` alone.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import pkgutil
import time
from pathlib import Path

import pytest

import bot.channels
from bot.channels.base import Backoff, Channel, Outgoing, Pace
from bot.channels.pacing import Pacer
from bot.channels.registry import Channels
from bot.contracts.delivery import RecipientGone, Transient
from bot.contracts.messages import Button, Reply
from bot.metrics import REGISTRY
from bot.runtime import CHANNELS

ROOT = Path(__file__).resolve().parent.parent
CHECKED = sorted((ROOT / "bot" / "channels").glob("*.py")) + [
    ROOT / "bot" / "web.py", ROOT / "bot" / "ops" / "health.py", ROOT / "bot" / "runtime.py",
    *(ROOT / "bot" / "campaigns" / f"{name}.py" for name in ("engine", "scheduler", "sender", "progress"))]
PROBING = {"getattr", "hasattr", "setattr", "delattr"}

# (file, call as written): uses on platform objects, not on our channels.
ALLOWED = {
    ("bot/channels/telegram.py", "getattr(message, 'message_thread_id', None)"):
        "PTB's MaybeInaccessibleMessage of an old callback query has no thread id",
    ("bot/channels/telegram.py", "getattr(message, kind, None)"):
        "which kind of content (sticker, photo...) a PTB Message carries",
    ("bot/channels/telegram.py", "getattr(chat, 'is_forum', False)"):
        "PTB's ChatFullInfo: only supergroups say whether they are forums",
}


def _probes(path: Path) -> list[str]:
    """Probing calls, `inspect` uses and outside assignments to a channel's methods in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(ROOT).as_posix()
    methods = {name for name, _ in inspect.getmembers(Channel, callable) if not name.startswith("__")}
    found = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in PROBING:
            if (rel, ast.unparse(node)) not in ALLOWED:
                found.append(f"{where}: {ast.unparse(node)}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
            if "inspect" in names:
                found.append(f"{where}: imports inspect")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Attribute) and target.attr in methods
                        and not (isinstance(target.value, ast.Name) and target.value.id == "self")):
                    found.append(f"{where}: replaces {ast.unparse(target)}")
    return found


def test_nobody_probes_or_patches_channels():
    found = [problem for path in CHECKED for problem in _probes(path)]
    assert found == [], "declare it on bot.channels.base.Channel instead:\n" + "\n".join(found)


def test_the_allow_list_has_no_stale_entries():
    """An allowed use that is gone must leave the list, or the list hides new ones."""
    for (rel, call), _reason in ALLOWED.items():
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Call) and ast.unparse(n) == call for n in ast.walk(tree)), (rel, call)


def _channel_classes() -> list[type]:
    classes = []
    for info in pkgutil.iter_modules(bot.channels.__path__):
        module = importlib.import_module(f"bot.channels.{info.name}")
        classes += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                    if cls.__module__ == module.__name__ and cls.__name__.endswith("Channel")]
    return classes


def test_every_channel_class_is_a_channel_and_the_runtime_builds_every_concrete_one():
    classes = _channel_classes()
    assert {cls.__name__ for cls in classes} >= {"TelegramChannel", "ZaloOAChannel", "ZaloBotChannel", "WebChannel"}
    for cls in classes:
        assert cls is Channel or issubclass(cls, Channel), f"{cls.__name__} must subclass bot.channels.base.Channel"
    concrete = {cls for cls in classes if cls is not Channel and not inspect.isabstract(cls)}
    assert concrete == set(CHANNELS), "bot/runtime.py CHANNELS lists every concrete channel"
    for cls in CHANNELS:
        assert not inspect.isabstract(cls), f"{cls.__name__} leaves {sorted(cls.__abstractmethods__)} abstract"
        assert isinstance(cls.name, str) and cls.name
        assert "create" in vars(cls) or cls.__init__ is object.__init__, f"{cls.__name__} needs its own create()"
    assert len({cls.name for cls in CHANNELS}) == len(CHANNELS)


def test_no_channel_imports_the_runtime():
    for path in sorted((ROOT / "bot" / "channels").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.startswith(("bot.runtime", "bot.web", "bot.service"))}, path.name


# --- a new channel gets everything but transmit from the base --------------------------


class TinyChannel(Channel):
    """A made-up platform with no buttons: it only knows how to put text out."""

    name = "tiny"
    live_retry = Backoff((0.01,), 0.01, attempts=1)

    def __init__(self, rate: float = 10.0) -> None:
        self.pacer = Pacer(rate, per_chat_interval=0.0, burst=1, name=self.name)
        self.sent: list[tuple[str, str]] = []

    async def transmit(self, out: Outgoing, pace: Pace) -> int | None:
        await pace()
        if out.reply.text == "down":
            raise Transient("HTTP 502")
        if out.reply.text == "blocked":
            raise RecipientGone("blocked the bot")
        self.sent.append((out.chat_id, out.rendered.text))
        return len(self.sent)


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_new_channel_gets_pacing_metrics_health_and_numbered_buttons_from_the_base():
    channels = Channels()
    tiny = TinyChannel.from_settings(None, None)  # type: ignore[arg-type]  # needs neither
    assert isinstance(tiny, TinyChannel) and tiny.routes() == [] and await tiny.create_topic("1", "x") is None
    channels.register(tiny)
    sent_before = _count("bot_messages_sent_total", channel="tiny", purpose="reply")
    errors_before = _count("bot_send_errors_total", channel="tiny", error="transient", code="502")

    menu = Reply("Bạn cần gì?", buttons=[[Button("Căn cước", "id")], [Button("Hộ tịch", "civil")]])
    message_id = await channels.send("tiny", "c1", menu)
    assert message_id == 1
    assert tiny.sent == [("c1", "Bạn cần gì?\n\n1. Căn cước\n2. Hộ tịch\nGõ 1 hoặc 2 để chọn.")]
    assert _count("bot_messages_sent_total", channel="tiny", purpose="reply") == sent_before + 1
    assert channels.health.state("tiny") is None

    with pytest.raises(Transient):
        await channels.send("tiny", "c1", Reply("down"))
    assert channels.health.state("tiny") == "degraded: sends failing: HTTP 502"
    assert _count("bot_send_errors_total", channel="tiny", error="transient", code="502") == errors_before + 1
    with pytest.raises(RecipientGone):  # one citizen's refusal says nothing about the channel
        await channels.send("tiny", "c2", Reply("blocked"))
    assert channels.health.state("tiny") == "degraded: sends failing: HTTP 502"
    await channels.send("tiny", "c1", Reply("ok"))
    assert channels.health.state("tiny") is None

    # Paced by the base: five broadcasts at 10 per second take at least 0.4 s (a lower bound
    # only, which a slow machine cannot break).
    started = time.monotonic()
    await asyncio.gather(*(tiny.deliver(f"b{i}", Reply("tin"), broadcast=True) for i in range(5)))
    assert time.monotonic() - started >= 0.35
    assert _count("bot_messages_sent_total", channel="tiny", purpose="broadcast") >= 5
