"""`workbench asm`, `workbench disasm` and `workbench sim run|gemm`: the accelerator's ISA tools and simulator."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from isa.assembler import AssemblyError, assemble, disassemble
from isa.design import DEFAULT_DESIGN, DesignError, load_design
from isa.encoding import EncodingError, Instr, from_bytes, to_bytes
from isa.functional import ExecutionError
from sim.simulator import DeadlockError, RaceError, simulate
from workbench.errors import UsageError

USER_ERRORS = (AssemblyError, EncodingError, ExecutionError, DeadlockError, RaceError, DesignError)
# Above this many MACs `sim gemm` runs timing only unless --values is given (memory contents cost RAM and time).
VALUES_MAC_LIMIT = 1 << 26


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _load_program(path: str) -> list[Instr]:
    """A program from assembly text (.s/.asm) or a binary image (anything else)."""
    data = _read(path)
    if Path(path).suffix in (".s", ".asm"):
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise UsageError(f"{path}: assembly must be UTF-8 text") from None
        return assemble(text, path)
    try:
        return from_bytes(data)
    except EncodingError as exc:
        raise EncodingError(f"{path}: {exc}") from None


def _load_dram(path: str | None) -> np.ndarray | None:
    if path is None:
        return None
    if Path(path).suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read DRAM image {path}: {exc}") from None
        return np.frombuffer(np.ascontiguousarray(array).tobytes(), dtype=np.uint8)
    return np.frombuffer(_read(path), dtype=np.uint8)


def cmd_asm(args: argparse.Namespace) -> int:
    """Assemble a text program into a binary image."""
    program = assemble(_read(args.source).decode(errors="replace"), args.source)
    out = Path(args.output or Path(args.source).with_suffix(".bin"))
    out.write_bytes(to_bytes(program))
    print(f"{out}: {len(program)} instructions, {out.stat().st_size} bytes")
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    """Print (or write) the assembly text of a binary image."""
    text = disassemble(_load_program(args.binary))
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    return 0


def _print_result(doc: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title=title, show_header=False)
    for key in ("design", "cycles", "seconds", "utilization", "macs", "dram_read_bytes", "dram_write_bytes",
                "mode", "verified"):
        if key in doc and doc[key] is not None:
            value = doc[key]
            text = f"{value:.3%}" if key == "utilization" else f"{value:.3e}" if key == "seconds" else \
                f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
            summary.add_row(key, text)
    console.print(summary)
    units = Table(title="units (cycles)")
    for col in ("unit", "busy", "stalled", "idle", "instructions"):
        units.add_column(col, justify="left" if col == "unit" else "right")
    for name, u in doc["units"].items():
        units.add_row(name, *(f"{u[c]:,}" for c in ("busy", "stalled", "idle", "instructions")))
    console.print(units)
    counters = Table(title="event counters")
    counters.add_column("counter")
    counters.add_column("value", justify="right")
    for name, v in doc["counters"].items():
        counters.add_row(name, f"{v:,}")
    console.print(counters)


def cmd_sim_run(args: argparse.Namespace) -> int:
    """Simulate a program on a design."""
    design = load_design(args.design)
    program = _load_program(args.program)
    res = simulate(design, program, _load_dram(args.dram), ideal_memory=args.ideal_memory,
                   overlap=False if args.no_overlap else None, values=not args.timing_only,
                   trace=bool(args.trace))
    if args.trace:
        res.write_trace(args.trace)
    if args.dram_out:
        if res.state is None:
            raise UsageError("--dram-out needs memory contents; drop --timing-only")
        Path(args.dram_out).write_bytes(res.state.dram.tobytes())
    doc = res.to_json()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        _print_result(doc, f"{args.program} on {design.name}")
    return 0


def cmd_sim_gemm(args: argparse.Namespace) -> int:
    """Generate, simulate and verify a tiled GEMM."""
    from compiler.accel.gemm_run import simulate_gemm

    for name in ("m", "n", "k", "rows", "cols"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be >= 1 (got {value})")
    values = args.values or (not args.timing_only and args.m * args.n * args.k <= VALUES_MAC_LIMIT)
    res = simulate_gemm(args.m, args.n, args.k, design=args.design, rows=args.rows, cols=args.cols,
                        dataflow=args.dataflow, ideal_memory=args.ideal_memory,
                        overlap=False if args.no_overlap else None, values=values, trace=bool(args.trace))
    if args.trace:
        res.sim.write_trace(args.trace)
    doc = res.to_json()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        _print_result(doc, f"GEMM {args.m}x{args.n}x{args.k} on {res.rows}x{res.cols} {res.dataflow}")
    if res.verified is False:
        raise ExecutionError("the simulated C differs from numpy's A @ B")
    return 0


def _timing_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ideal-memory", action="store_true",
                   help="DRAM with zero latency and unbounded bandwidth, free fetch, no bank conflicts")
    p.add_argument("--no-overlap", action="store_true", help="run matrix-unit tiles back to back (no overlap)")
    p.add_argument("--timing-only", action="store_true", help="skip memory contents (faster; no race checks)")
    p.add_argument("--trace", metavar="OUT.json", help="write a Perfetto/Chrome trace")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `asm`, `disasm` and `sim` to the CLI."""
    p = sub.add_parser("asm", help="assemble accelerator assembly text into a binary program")
    p.add_argument("source", metavar="FILE.s")
    p.add_argument("-o", "--output", metavar="FILE.bin", help="output file (default: FILE.bin)")
    p.set_defaults(func=cmd_asm)

    p = sub.add_parser("disasm", help="print the assembly text of a binary program")
    p.add_argument("binary", metavar="FILE.bin")
    p.add_argument("-o", "--output", metavar="FILE.s", help="write to a file instead of stdout")
    p.set_defaults(func=cmd_disasm)

    sim = sub.add_parser("sim", help="cycle-level simulation of the accelerator")
    sim.set_defaults(func=lambda _args: (sim.print_help(), 2)[1])
    ssub = sim.add_subparsers(dest="sim_command", metavar="{run,gemm}", parser_class=type(sim))

    p = ssub.add_parser("run", help="simulate a program (.s assembled on the fly, or .bin) on a design")
    p.add_argument("design", metavar="DESIGN", help=f"shipped design name or .toml path (e.g. {DEFAULT_DESIGN})")
    p.add_argument("program", metavar="PROGRAM", help="FILE.s or FILE.bin")
    p.add_argument("--dram", metavar="IMAGE", help="initial DRAM image: .npy array or raw bytes, at address 0")
    p.add_argument("--dram-out", metavar="FILE.bin", help="write the final DRAM bytes")
    _timing_flags(p)
    p.set_defaults(func=cmd_sim_run)

    p = ssub.add_parser("gemm", help="tile C = A x B onto a design, simulate it and check C against numpy")
    p.add_argument("--m", type=int, required=True, help="rows of A and C")
    p.add_argument("--n", type=int, required=True, help="columns of B and C")
    p.add_argument("--k", type=int, required=True, help="reduction length")
    p.add_argument("--design", default=DEFAULT_DESIGN, help=f"design name or .toml path (default {DEFAULT_DESIGN})")
    p.add_argument("--rows", type=int, help="override the array rows (SRAM row counts are kept)")
    p.add_argument("--cols", type=int, help="override the array columns")
    p.add_argument("--dataflow", choices=("os", "ws"), help="override the dataflow")
    p.add_argument("--values", action="store_true",
                   help=f"compute and verify C even above {VALUES_MAC_LIMIT:,} MACs (default: only below)")
    _timing_flags(p)
    p.set_defaults(func=cmd_sim_gemm)
