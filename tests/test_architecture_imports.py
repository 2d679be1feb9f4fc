"""The import rule of ARCHITECTURE.md: each layer imports only from the layers below it, and no
package has an import cycle. The contracts live in pyproject.toml ([tool.importlinter]) and are
checked by import-linter, which reads every import, those inside functions included."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def test_imports_follow_the_layers_and_have_no_cycles():
    # In a child process: import-linter reconfigures logging, which would hide later tests' logs.
    check = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                               "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]


def test_every_module_of_the_project_has_a_layer():
    """A new top-level module or package must be placed in a layer, or the rule says nothing of it."""
    layered = {name.strip() for layer in _contracts()["layers"]["layers"]
               for name in layer.replace("|", ":").split(":")}
    modules = {f"bot.{path.stem}" for path in (ROOT / "bot").glob("*.py") if path.stem != "__init__"}
    packages = {f"bot.{path.parent.name}" for path in (ROOT / "bot").glob("*/__init__.py")}
    assert modules | packages | {"handlers", "knowledge"} <= layered, sorted((modules | packages) - layered)


def test_the_conversation_knows_no_channel_and_storage_knows_no_conversation():
    layers = [layer.replace("|", ":").split(":") for layer in _contracts()["layers"]["layers"]]
    level = {name.strip(): index for index, layer in enumerate(layers) for name in layer}
    assert level["bot.channels"] < level["handlers"] < level["bot.handoff"] < level["bot.storage"]
    assert level["bot.storage"] < level["bot.contracts"] and level["bot.matching"] < level["bot.contracts"]
