"""`workbench run MODEL --device SIM:<design>`: a compiled model on a device, with the simulated run's figures."""

from __future__ import annotations

import argparse
import json

from isa.errors import UserError
from isa.fields import Spec
from workbench.cli_args import spec_type
from workbench.outputs import check_output_file, write_file

BATCH = spec_type(Spec("int", 1, 65_536))  # a model's batch (or sequence length): larger fits no simulated DRAM
TRAIN_STEPS = spec_type(Spec("int", 1, 1_000_000))
WINDOWS = spec_type(Spec("int", 1, 100_000))


def cmd_run(args: argparse.Namespace) -> int:
    """Run the model and print (or --json) what it did."""
    if args.model.lower().endswith(".onnx"):
        return cmd_run_onnx(args)
    if args.input or args.out:
        raise UserError("--input and --out are for .onnx models; built-in models make their own inputs")
    from workbench.model_run import run_model

    if args.trace and not args.device.upper().startswith("SIM"):
        raise UserError(f"--trace needs a SIM device, got --device {args.device}")
    if args.trace:
        check_output_file(args.trace, "trace")  # before the (long) run
    result, run = run_model(args.model, args.device, args.quantize, args.batch, trace=bool(args.trace))
    if args.trace:
        from sim.trace import trace_document

        write_file(args.trace, json.dumps(trace_document(run.trace_events, run.design)))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
        return 0 if result.matches_reference else 1
    from rich.console import Console

    from workbench.tables import Column, fit_table

    console = Console()  # rich fits the terminal; --json is the form for machines
    console.print(f"[bold]{result.model}[/] on [bold]{result.device}[/] ({result.precision}): output "
                  + ("[green]matches[/]" if result.matches_reference else "[red]DIFFERS from[/]")
                  + f" {result.reference}; max |error| {result.max_abs_error_vs_reference:.3g}")
    acc = result.accuracy
    console.print("accuracy vs the float model: cosine {:.5f}, max |error| {:.3g}".format(acc["cosine"], acc["max_abs_error"])
                  + (f", top-1 agreement {acc['top1_agreement']:.1%}" if "top1_agreement" in acc else ""))
    if result.sim is not None:
        s = result.sim
        columns = [Column("kernel", "left", wrap=True), Column("unit", "left"), Column("cycles"),
                   Column("utilization"), Column("DRAM read B", priority=1), Column("DRAM write B", priority=1),
                   Column("host FLOP", priority=2)]
        rows = [[k["name"], k["unit"], f"{k['cycles']:,}", f"{k['utilization']:.1%}", f"{k['dram_read_bytes']:,}",
                 f"{k['dram_write_bytes']:,}", f"{k['host']['flops']:,}" if k["host"] else ""] for k in s["kernels"]]
        console.print(fit_table(f"kernels on {result.design} (simulated)", columns, rows, console))
        line = (f"total {s['cycles']:,} cycles ({s['seconds'] * 1e6:.1f} us), array utilization "
                f"{s['utilization']:.1%}, DRAM {s['dram_read_bytes'] + s['dram_write_bytes']:,} B")
        if s.get("program_mode") == "graph":  # kernel cycles are spans inside these programs and may overlap
            line += f", {len(s['programs'])} isa program(s) for {len(s['kernels'])} kernel(s)"
        if result.energy:
            e = result.energy
            line += f", energy {e['energy_j'] * 1e6:.2f} uJ (modelled), {e['average_power_w']:.3f} W average"
        console.print(line)
        for h in s["host_ops"]:
            console.print(f"[yellow]host[/] {h['kernel']}: {h['flops']:,} FLOP, {h['bytes']:,} B ({h['reason']})")
    for note in result.notes:
        console.print(f"[dim]{note}[/]")
    if args.trace:
        console.print(f"trace written to {args.trace} (open in ui.perfetto.dev)")
    return 0 if result.matches_reference else 1


def cmd_run_onnx(args: argparse.Namespace) -> int:
    """`workbench run model.onnx`: outputs summary, timing and on SIM the simulated figures."""
    from workbench.onnx_run import run_onnx

    if args.trace:
        raise UserError("--trace is for the built-in models; not supported with .onnx files yet")
    r = run_onnx(args.model, args.device, args.input, args.out)
    if args.json:
        print(json.dumps(r.to_json(), indent=2, default=str))
        return 0
    from rich.console import Console

    from workbench.tables import Column, fit_table

    console = Console()
    console.print(f"[bold]{r.model}[/] on [bold]{r.device}[/]: loaded in {r.load_seconds * 1e3:.1f} ms, first call"
                  f" {r.first_call_seconds * 1e3:.1f} ms" + ("" if r.sim else f", warm call {r.call_seconds * 1e3:.2f} ms"))
    columns = [Column("output", "left", wrap=True), Column("shape", wrap=True), Column("dtype", "left"),
               Column("min", priority=1), Column("max", priority=1), Column("mean", priority=1)]
    rows = [[name, str(tuple(s["shape"])), s["dtype"], *(f"{s[k]:.4g}" if k in s else "-" for k in ("min", "max", "mean"))]
            for name, s in r.summary().items()]
    console.print(fit_table("outputs", columns, rows, console))
    if r.sim is not None:
        s = r.sim
        line = (f"simulated on {s['design']}: {s['cycles']:,} cycles ({s['seconds'] * 1e6:.1f} us), array utilization"
                f" {s['utilization']:.1%}, DRAM {s['dram_read_bytes'] + s['dram_write_bytes']:,} B")
        if r.energy:
            line += f", energy {r.energy['energy_j'] * 1e6:.2f} uJ (modelled)"
        console.print(line)
        if s["host_ops"]:
            console.print(f"[yellow]{len(s['host_ops'])} kernel(s) ran on the host[/] ({s['host_flops']:,} FLOP)")
    if args.out:
        console.print(f"outputs saved to {args.out}/ as .npy")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    """Accuracy of the model's int8 (and int4 weight-only) forms against its float reference."""
    from compiler import Device
    from compiler.quantize import quantize_report
    from workbench.model_run import load_model
    from workbench.quantize_lm import LM_MODELS, cmd_quantize_lm

    if args.model in LM_MODELS:
        return cmd_quantize_lm(args)
    if args.weights is not None:
        raise UserError(f"--weights is for {', '.join(LM_MODELS)}; {args.model} builds its own seeded weights")
    model = load_model(args.model, args.batch)
    device = Device.canonicalize(args.device)
    # calibrated on one seeded batch, measured on another
    reports = quantize_report(model, model.sample_input(seed=1), calib=model.sample_input(seed=2), device=device)
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2))
        return 0
    from rich.console import Console

    from workbench.tables import Column, fit_table

    columns = [Column("scheme", "left", wrap=True), Column("runs on", "left", wrap=True), Column("cosine"),
               Column("max |error|", priority=1), Column("relative error", priority=2), Column("top-1 agreement")]
    rows = [[r.scheme, r.runs_on, f"{r.cosine:.5f}", f"{r.max_abs_error:.3g}", f"{r.relative_error:.3g}",
             "-" if r.top1_agreement is None else f"{r.top1_agreement:.1%}"] for r in reports]
    console = Console()  # fits the terminal
    console.print(fit_table(f"quantization of {model.name} vs its float model ({model.input_shape} inputs; "
                            "calibrated on another batch)", columns, rows, console))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `run` and `quantize` to the CLI."""
    p = sub.add_parser("run", help="run a model (mlp, cnn, gpt2-block or a .py file) on a device, e.g. SIM:<design>")
    p.add_argument("model", help="mlp, cnn, gpt2-block, a model.onnx file, or a Python file defining model() ->"
                   " compiler.models.Sequential")
    p.add_argument("--device", default="SIM", help="SIM (default design), SIM:<design name or .toml>, REF or CL")
    p.add_argument("--quantize", default="auto", choices=("auto", "minmax", "percentile", "none"),
                   help="int8 post-training quantization (auto: on int8 designs, minmax calibration)")
    p.add_argument("--batch", type=BATCH, default=None, help="batch size (sequence length for gpt2-block)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--trace", metavar="OUT.json", help="write the Perfetto trace of the simulated run")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="an input of a .onnx model (repeatable); inputs not given are seeded random")
    p.add_argument("--out", metavar="DIR", help="save a .onnx model's outputs as DIR/<name>.npy")
    p.set_defaults(func=cmd_run)
    q = sub.add_parser("quantize", help="accuracy report of a model's int8 and int4 forms against its float model"
                       " (top-1 agreement for classifiers, held-out perplexity for char-gpt)")
    q.add_argument("model", help="mlp, cnn, gpt2-block, char-gpt (the character-level language model of "
                   "examples/train_gpt.py), or a Python file defining model()")
    q.add_argument("--device", default="REF", help="device the int8 graph runs on (REF, or SIM:<int8 design>)")
    q.add_argument("--batch", type=BATCH, default=None, help="batch size (sequence length for gpt2-block)")
    q.add_argument("--weights", metavar="FILE.safetensors", default=None,
                   help="char-gpt: trained weights (examples/train_gpt.py --save); default: the cached training run")
    q.add_argument("--train-steps", type=TRAIN_STEPS, default=500,
                   help="char-gpt without --weights: steps of the cached training run (trained once if absent)")
    q.add_argument("--windows", type=WINDOWS, default=32,
                   help="char-gpt: held-out windows of 64 characters to evaluate (rounded up to batches of 16)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_quantize)
