"""`workbench measure WORKLOAD --device D`: measured TFLOPS, board power and TFLOPS/W on a real device."""
from __future__ import annotations

import argparse
import json

from isa.fields import Spec
from workbench.cli_args import spec_type

REPEATS = spec_type(Spec("int", 1, 100_000))


def _print(m) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"measure: {m.workload} ({m.dtype}) on {m.device}")
    for col in ("figure", "value", "unit", "provenance / note"):
        t.add_column(col, justify="right" if col == "value" else "left", overflow="fold")
    t.add_row("device", escape(m.device_name), "", escape(m.device_ident))
    t.add_row("time (median)", f"{m.seconds * 1e3:,.4g}", "ms",
              f"measured: device time of {m.kernels} kernel(s), {m.repeats} runs, "
              f"range {m.seconds_min * 1e3:,.4g}-{m.seconds_max * 1e3:,.4g} ms")
    t.add_row("achieved", f"{m.tflops:,.4g}", "TFLOPS", f"measured ({m.flops:,.4g} FLOP per run)")
    t.add_row("board power", "—" if m.power_w is None else f"{m.power_w:,.1f}", "W", escape(m.power_note))
    t.add_row("efficiency", "—" if m.tflops_per_w is None else f"{m.tflops_per_w:,.4g}", "TFLOPS/W",
              "measured" if m.tflops_per_w is not None else "not available (no power reading)")
    Console().print(t)


def cmd_measure(args: argparse.Namespace) -> int:
    """Run the workload on the device and report (and optionally save) the measurement."""
    from workbench.measure import measure
    from workbench.outputs import check_output_file, write_file

    if args.out:
        check_output_file(args.out, "measurement JSON")
    m = measure(args.workload, args.device, args.dtype, args.repeats)
    if args.out:
        write_file(args.out, json.dumps(m.to_json(), indent=1) + "\n")
    if args.json:
        print(json.dumps(m.to_json(), indent=1))
    else:
        _print(m)
        if args.out:
            print(f"measurement: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `measure` to the CLI."""
    from workbench.measure import MODELS

    p = sub.add_parser("measure", help="measure TFLOPS and TFLOPS/W of a workload on a real device (CL, CUDA, HIP)")
    p.add_argument("workload", help="gemm:MxNxK or a built-in model: " + ", ".join(f"{k}[:T]" for k in MODELS))
    p.add_argument("--device", help="CL, CL:n, CUDA, CUDA:n, HIP (default: WB_DEVICE, else the first GPU, else CL)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="element type of a GEMM's operands (float16 and bfloat16 run on tensor cores on CUDA)")
    p.add_argument("--repeats", type=REPEATS, default=10, help="timed runs after one warm-up (default 10)")
    p.add_argument("--out", metavar="FILE.json", help="also write the measurement here (for compare --measured)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_measure)
