"""`workbench demo`: the main job on embedded defaults, end to end, each figure labelled with its provenance.

One model (the built-in two-layer MLP) runs three ways: on the default OpenCL device through the compiler
(measured, checked against numpy), compiled for the default simulated accelerator through the SIM device
(simulated: quantized to int8 on int8 designs, output bit-exact against the same int8 graph on REF, energy
modelled), and through the cost and power models (modelled), beside a real chip's datasheet figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from compiler.device import describe
from isa.design import DEFAULT_DESIGN, load_design

BATCH, D_IN, D_HIDDEN, D_OUT = 64, 512, 1024, 512


@dataclass
class DeviceRun:
    """The MLP on a compiler device (measured)."""

    device: str
    device_name: str
    first_call_s: float
    median_s: float
    gflops: float
    max_abs_error: float
    matches_numpy: bool


@dataclass
class SimRun:
    """The same MLP compiled for a simulated design (simulated; energy modelled)."""

    design: str
    precision: str
    cycles: int
    seconds: float
    utilization: float
    bit_exact: bool  # int8: SIM output == the same int8 graph on REF; float: within the input dtype's rounding
    cosine_to_float: float
    top1_agreement: float
    energy_j: float
    host_ops: int


def mlp_model():
    """The demo's model: the built-in MLP (compiler.models.mlp) at the demo's sizes."""
    from compiler import models

    return models.mlp(BATCH, D_IN, D_HIDDEN, D_OUT)


def mlp_flops() -> float:
    """FLOPs of the two matmuls (1 MAC = 2 FLOP); bias and ReLU are negligible and not counted."""
    return 2.0 * BATCH * (D_IN * D_HIDDEN + D_HIDDEN * D_OUT)


def run_on_device(device: str | None, repeats: int = 5) -> DeviceRun:
    """Run the MLP with the compiler on `device` (None = default); time first and steady-state calls."""
    from compiler import Tensor

    model = mlp_model()
    x = model.sample_input()
    ref = model(Tensor(x, device="REF")).numpy()
    tx = Tensor(x, device=device).realize()

    def forward() -> np.ndarray:
        return model(tx).numpy()

    t0 = time.perf_counter()
    out = forward()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    err = float(np.max(np.abs(out - ref)))
    return DeviceRun(tx.device, describe(tx.device), first, med, mlp_flops() / med / 1e9, err,
                     bool(np.allclose(out, ref, rtol=1e-3, atol=1e-3)))




def run_on_simulator(design_name: str) -> SimRun:
    """The same MLP through the compiler's SIM device (quantized to int8 first on int8 designs)."""
    from workbench.model_run import run_model

    load_design(design_name)  # a clear DesignError before anything runs
    result, run = run_model(mlp_model(), f"SIM:{design_name}")
    return SimRun(run.design, result.precision, run.cycles, run.seconds, run.utilization, result.matches_reference,
                  result.accuracy["cosine"], result.accuracy.get("top1_agreement", float("nan")),
                  result.energy["energy_j"] if result.energy else 0.0, len(run.host_ops))


def model_cost_performance(design_name: str):
    """The models' view of the MLP on the design (workbench estimate)."""
    from workbench.estimate import Layer, Workload, estimate

    workload = Workload("demo-mlp", (Layer("fc1", BATCH, D_HIDDEN, D_IN), Layer("fc2", BATCH, D_OUT, D_HIDDEN)))
    return estimate(load_design(design_name), workload)


def demo(args: argparse.Namespace) -> int:
    """Run every stage and print the comparison."""
    from rich.console import Console

    from workbench.chips import find_chip
    from workbench.tables import Column, fit_table

    load_design(args.design)  # the design and the chip are checked before the (longer) runs
    chip = find_chip(args.chip)
    console = Console()  # rich fits the terminal's width; --json is the form for machines
    if not args.json:
        console.print(f"[bold]Petaflop Workbench demo[/]: MLP {BATCH}x{D_IN} -> {D_HIDDEN} (ReLU) -> {D_OUT}, "
                      f"{mlp_flops() / 1e6:.1f} MFLOP per forward pass")
    dev = run_on_device(args.device)
    sim = run_on_simulator(args.design)
    est = model_cost_performance(args.design)
    fig = est.figures
    if args.json:
        print(json.dumps({"device": asdict(dev), "simulated": asdict(sim),
                          "estimate": {k: asdict(v) for k, v in fig.items()},
                          "chip": chip.to_json()}, indent=2, default=str))
        return 0 if dev.matches_numpy and sim.bit_exact else 1

    console.print(f"1. Compiler on [bold]{dev.device}[/] ({dev.device_name}) [dim](measured)[/]: "
                  f"first call {dev.first_call_s * 1e3:.0f} ms (compile included), then {dev.median_s * 1e3:.2f} ms "
                  f"= {dev.gflops:.1f} GFLOP/s; max |error| vs numpy {dev.max_abs_error:.1e} "
                  + ("[green]matches numpy[/]" if dev.matches_numpy else "[red]DIFFERS from numpy[/]"))
    console.print(f"2. The same model compiled for [bold]{sim.design}[/] (SIM device, {sim.precision}) "
                  f"[dim](simulated)[/]: {sim.cycles:,} cycles ({sim.seconds * 1e6:.1f} us), array utilization "
                  f"{sim.utilization:.1%}, {sim.energy_j * 1e6:.1f} uJ [dim](modelled)[/]; output "
                  + ("[green]bit-exact vs the same graph on REF[/]" if sim.bit_exact else "[red]DIFFERS from REF[/]")
                  + f"; vs the float model cosine {sim.cosine_to_float:.4f}, top-1 agreement {sim.top1_agreement:.0%}"
                  + (f"; {sim.host_ops} kernel(s) on the host" if sim.host_ops else ""))
    price = fig["price_usd"].value
    watts = fig["average_power_w"].value
    achieved = fig["achieved_tflops"].value
    peak = fig["peak_tflops"].value
    peak_w = fig["peak_rate_power_w"].value
    ops = fig["peak_tflops"].unit  # "TOPS int8": the simulated model is integer
    cp = chip.peak_16bit_tflops
    rows = [
        (f"{dev.device}: {dev.device_name}", "TFLOPS fp32", f"{dev.gflops / 1e3:.4f}", "-", "-", "-", "-",
         "measured (no price or power known for this host device)"),
        (f"{sim.design} on this MLP", ops, f"{achieved:.4f}", f"{price:,.0f} make", f"{watts:.2f}",
         f"{achieved / price * 1e3:.3f}", f"{achieved / watts:.3f}", "simulated + modelled; price = cost to make"),
        (f"{sim.design} at peak", ops, f"{peak:.4f}", f"{price:,.0f} make", f"{peak_w:.2f}",
         f"{peak / price * 1e3:.3f}", f"{peak / peak_w:.3f}", "modelled; price = cost to make"),
        (f"{chip.name} at peak", "TFLOPS 16-bit", f"{cp:.1f}" if cp else "-",
         f"{chip.price_usd:,.0f} street" if chip.price_usd else "-", f"{chip.tdp_w:.0f}" if chip.tdp_w else "-",
         f"{chip.tflops_per_kusd:.1f}" if chip.tflops_per_kusd else "-",
         f"{chip.tflops_per_w:.2f}" if chip.tflops_per_w else "-", "datasheet; price = street/list price"),
    ]
    columns = [Column("", "left", wrap=True), Column("ops", "left", wrap=True), Column("rate"),
               Column("price $"), Column("power W", priority=2), Column("rate per $1k"), Column("rate per W"),
               Column("provenance", "left", wrap=True, priority=1)]
    console.print(fit_table("3. Cost-performance side by side (rate in the row's ops unit)", columns, rows, console))
    console.print("[dim]Next: `workbench compare` for every shipped design beside real chips, "
                  "`workbench sim gemm --help`, `workbench rtl --help`.[/]")
    return 0 if dev.matches_numpy and sim.bit_exact else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add `demo` to the CLI."""
    p = sub.add_parser("demo", help="run a model on OpenCL and on a simulated design, and compare cost-performance")
    p.add_argument("--device", default=None, help="compiler device (default: WB_DEVICE, else first GPU, else CL)")
    p.add_argument("--design", default=DEFAULT_DESIGN, help=f"design name or .toml path (default {DEFAULT_DESIGN})")
    p.add_argument("--chip", default="rx-7900-xtx", help="real chip to show beside it (see `workbench chips`)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=demo)
