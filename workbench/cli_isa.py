"""`workbench asm`, `workbench disasm` and `workbench sim run|gemm`: the accelerator's ISA tools and simulator."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from isa.assembler import assemble, disassemble
from isa.design import DEFAULT_DESIGN, Design, load_design
from isa.encoding import EncodingError, Instr, from_bytes, to_bytes
from isa.errors import UserError
from isa.files import read_bytes, read_text
from isa.program_constants import DESIGN_CONSTANT_NAMES, design_constants
from sim.simulator import simulate
from workbench.outputs import check_output_file, staged_file, write_file
from workbench.tables import print_lines

# Above this many MACs `sim gemm` runs timing only unless --values is given (memory contents cost RAM and time).
VALUES_MAC_LIMIT = 1 << 26
# Array tiles (M/ROWS x N/COLS x K/ROWS) `sim gemm` takes on: 2**27 is a 4096^3 GEMM on an 8x8 array, a few
# minutes of simulation; beyond it the program alone outgrows memory, so the user is told before any work.
MAX_GEMM_TILES = 1 << 27
ASSEMBLY_SUFFIXES = (".s", ".asm")


def _load_program(path: str, design: Design | None) -> list[Instr]:
    """A program from assembly text (.s/.asm, with `design`'s constants predefined) or a binary image."""
    if Path(path).suffix in ASSEMBLY_SUFFIXES:
        constants = design_constants(design) if design is not None else None
        return assemble(read_text(path, "assembly program"), path, constants)
    data = read_bytes(path, "binary program")
    try:
        return from_bytes(data)
    except EncodingError as exc:
        raise EncodingError(f"{path}: {exc} (is it a binary program? assembly text must end in .s)") from None


def _load_dram(path: str | None, design: Design) -> np.ndarray | None:
    if path is None:
        return None
    if Path(path).suffix == ".npy":
        read_bytes(path, "DRAM image")  # the one-line errors for missing files, folders, permissions
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise UserError(f"{path}: not a readable .npy DRAM image: {exc}") from None
        image = np.frombuffer(np.ascontiguousarray(array).tobytes(), dtype=np.uint8)
    else:
        image = np.frombuffer(read_bytes(path, "DRAM image"), dtype=np.uint8)
    if image.size > design.memory.dram_bytes:
        raise UserError(f"{path}: DRAM image of {image.size:,} bytes exceeds {design.name}'s memory.dram_bytes "
                        f"{design.memory.dram_bytes:,}")
    return image


def cmd_asm(args: argparse.Namespace) -> int:
    """Assemble a text program into a binary image."""
    out = check_output_file(args.output or Path(args.source).with_suffix(".bin"), "binary program")
    if out.resolve() == Path(args.source).resolve():
        raise UserError(f"{out}: the output would overwrite the source; give -o FILE.bin")
    design = load_design(args.design)
    program = assemble(read_text(args.source, "assembly program"), args.source, design_constants(design))
    write_file(out, to_bytes(program))
    print_lines([f"{out}: {len(program)} instructions, {out.stat().st_size} bytes "
                 f"(constants {', '.join(DESIGN_CONSTANT_NAMES)} of {design.name})"])
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    """Print (or write) the assembly text of a binary image."""
    out = check_output_file(args.output, "assembly file") if args.output else None
    text = disassemble(_load_program(args.binary, None))
    if out:
        write_file(out, text)
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
    if args.dram_out and args.timing_only:
        raise UserError("--dram-out needs memory contents; drop --timing-only")
    trace = check_output_file(args.trace, "trace") if args.trace else None
    dram_out = check_output_file(args.dram_out, "DRAM output") if args.dram_out else None
    design = load_design(args.design)
    program = _load_program(args.program, design)
    res = simulate(design, program, _load_dram(args.dram, design), ideal_memory=args.ideal_memory,
                   overlap=False if args.no_overlap else None, values=not args.timing_only,
                   trace=trace is not None)
    if trace:
        with staged_file(trace) as tmp:
            res.write_trace(tmp)
    if dram_out:
        write_file(dram_out, res.state.dram.tobytes())
    doc = res.to_json()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        _print_result(doc, f"{args.program} on {design.name}")
    return 0


def check_gemm_work(m: int, n: int, k: int, rows: int, cols: int) -> None:
    """Refuse, before any work, a GEMM too large to simulate in minutes (MAX_GEMM_TILES array tiles)."""
    tiles = math.ceil(m / rows) * math.ceil(n / cols) * math.ceil(k / rows)
    if tiles > MAX_GEMM_TILES:
        raise UserError(f"GEMM {m}x{n}x{k} is {tiles:,} tiles of the {rows}x{cols} array; `sim gemm` takes at most "
                        f"{MAX_GEMM_TILES:,} (minutes of simulation): use smaller sizes or a larger array "
                        "(--rows/--cols, or a larger --design)")


def cmd_sim_gemm(args: argparse.Namespace) -> int:
    """Generate, simulate and verify a tiled GEMM."""
    from compiler.accel.gemm_lowering import check_gemm_size, gemm_design
    from compiler.accel.gemm_run import simulate_gemm

    for name in ("m", "n", "k", "rows", "cols"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name} must be >= 1 (got {value})")
    trace = check_output_file(args.trace, "trace") if args.trace else None
    design = gemm_design(args.design, args.rows, args.cols, args.dataflow, args.m, args.n, args.k,
                         args.ideal_memory)
    check_gemm_size(design, args.m, args.n, args.k)
    check_gemm_work(args.m, args.n, args.k, design.matrix.rows, design.matrix.cols)
    values = args.values or (not args.timing_only and args.m * args.n * args.k <= VALUES_MAC_LIMIT)
    res = simulate_gemm(args.m, args.n, args.k, design=design, ideal_memory=args.ideal_memory,
                        overlap=False if args.no_overlap else None, values=values, trace=trace is not None)
    if trace:
        with staged_file(trace) as tmp:
            res.sim.write_trace(tmp)
    doc = res.to_json()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        _print_result(doc, f"GEMM {args.m}x{args.n}x{args.k} on {res.rows}x{res.cols} {res.dataflow}")
    if res.verified is False:  # a disagreement between two models is a bug, not the user's mistake
        print("workbench sim gemm: the simulated C differs from numpy's A @ B", file=sys.stderr)
        return 1
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
    p.add_argument("source", metavar="FILE.s", help="assembly text (syntax in docs/isa.md)")
    p.add_argument("-o", "--output", metavar="FILE.bin", help="output file (default: FILE.bin beside the source)")
    p.add_argument("--design", default=DEFAULT_DESIGN,
                   help=f"design whose constants ({', '.join(DESIGN_CONSTANT_NAMES)}) the program may use "
                        f"without .equ (default {DEFAULT_DESIGN})")
    p.set_defaults(func=cmd_asm)

    p = sub.add_parser("disasm", help="print the assembly text of a binary program")
    p.add_argument("binary", metavar="FILE.bin", help="binary program (from `workbench asm`)")
    p.add_argument("-o", "--output", metavar="FILE.s", help="write to a file instead of stdout")
    p.set_defaults(func=cmd_disasm)

    sim = sub.add_parser("sim", help="cycle-level simulation of the accelerator")
    sim.set_defaults(func=lambda _args: (sim.print_help(), 2)[1])
    ssub = sim.add_subparsers(dest="sim_command", metavar="{run,gemm}", parser_class=type(sim))

    p = ssub.add_parser("run", help="simulate a program (.s assembled on the fly, or .bin) on a design")
    p.add_argument("design", metavar="DESIGN", help=f"shipped design name or .toml path (e.g. {DEFAULT_DESIGN})")
    p.add_argument("program", metavar="PROGRAM",
                   help=f"FILE.s (the design's constants {', '.join(DESIGN_CONSTANT_NAMES)} predefined) or FILE.bin")
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
