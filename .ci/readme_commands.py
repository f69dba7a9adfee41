"""Print the README's Quickstart commands: `install` (the main job) or `test` (the whole suite).

`.ci/run` runs the `test` one verbatim, and tests/test_readme.py checks both, so the README,
CI and the tests cannot drift apart.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart_commands(text: str) -> list[str]:
    """The one-line commands in fenced blocks under `## Quickstart`, in order."""
    section = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.S | re.M)
    if section is None:
        raise SystemExit("README.md has no '## Quickstart' section")
    blocks = re.findall(r"^```(?:bash|sh|console)?\n(.*?)^```", section.group(1), re.S | re.M)
    return [b.strip() for b in blocks]


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    commands = quickstart_commands(README.read_text())
    if len(commands) != 2 or any("\n" in c for c in commands):
        raise SystemExit(f"README Quickstart must have exactly two one-line commands, found {commands!r}")
    print(commands[0] if which == "install" else commands[1])
