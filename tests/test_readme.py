"""The README's two Quickstart commands are what CI runs."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands():
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_has_exactly_two_one_line_commands():
    commands = _readme_commands().quickstart_commands((ROOT / "README.md").read_text())
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    install, test = commands
    assert install.startswith("pip install .") and "workbench demo" in install
    assert "pip install -e '.[dev]'" in test and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    script = (ROOT / ".ci" / "run").read_text()
    assert "readme_commands.py\" test" in script and 'bash -euo pipefail -c "$cmd"' in script
    printed = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_commands.py"), "test"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == _readme_commands().quickstart_commands((ROOT / "README.md").read_text())[1]
