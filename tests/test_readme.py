"""The README's two Quickstart commands are what CI runs."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow  # makes a venv and upgrades pip in it (about a minute)
def test_ci_runs_the_readme_test_command_verbatim_in_a_fresh_venv(tmp_path):
    """.ci/run on a scratch project whose README's test command leaves evidence: that exact command runs, in
    the project root, inside a new virtual environment, with a cold compiler cache."""
    shutil.copytree(ROOT / ".ci", tmp_path / ".ci")
    probe = ("import os, sys, pathlib; pathlib.Path('ran.txt').write_text("
             "sys.prefix + chr(10) + os.environ['WB_CACHE_DIR'] + chr(10) + os.getcwd())")
    test_cmd = f'python -c "{probe}" && echo "quotes & ampersands survive"'
    (tmp_path / "README.md").write_text(
        "# scratch\n\n## Quickstart\n\n```bash\npip install . && workbench demo\n```\n\n"
        f"```bash\n{test_cmd}\n```\n\n## More\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WB_CACHE_DIR")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "quotes & ampersands survive" in done.stdout
    prefix, cache, cwd = (tmp_path / "ran.txt").read_text().splitlines()
    assert Path(cwd) == tmp_path
    assert Path(prefix) != Path(sys.prefix) and Path(prefix).name == "venv"  # a venv made for this run
    assert not Path(prefix).exists() and not Path(cache).exists()  # both thrown away afterwards
