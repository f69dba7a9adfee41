"""`workbench demo`: the main job on embedded defaults, end to end, each figure labelled with its provenance.

One model (a two-layer MLP) runs three ways: on the default OpenCL device through the compiler (measured,
checked against numpy), int8-quantized on the default simulated accelerator (simulated; every GEMM's int32
result checked bit-exact against numpy), and through the cost and power models (modelled), beside a real
chip's datasheet figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from isa.design import DEFAULT_DESIGN, DesignError, load_design

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
    """The int8 MLP on a simulated design (simulated)."""

    design: str
    cycles: int
    seconds: float
    utilization: float
    gemms_bit_exact: bool
    cosine_to_float: float


def mlp_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The demo's input and weights (seeded, scaled so activations stay O(1))."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, D_IN)).astype(np.float32)
    w1 = (rng.standard_normal((D_IN, D_HIDDEN)) / np.sqrt(D_IN)).astype(np.float32)
    w2 = (rng.standard_normal((D_HIDDEN, D_OUT)) / np.sqrt(D_HIDDEN)).astype(np.float32)
    return x, w1, w2


def mlp_flops() -> float:
    """FLOPs of the two matmuls (1 MAC = 2 FLOP); the ReLU is negligible and not counted."""
    return 2.0 * BATCH * (D_IN * D_HIDDEN + D_HIDDEN * D_OUT)


def run_on_device(device: str | None, repeats: int = 5) -> DeviceRun:
    """Run the MLP with the compiler on `device` (None = default); time first and steady-state calls."""
    from compiler import Tensor

    x, w1, w2 = mlp_weights()
    ref = np.maximum(x @ w1, 0) @ w2
    tx, t1, t2 = (Tensor(a, device=device) for a in (x, w1, w2))
    tx.realize(t1, t2)

    def forward() -> np.ndarray:
        return (tx @ t1).relu().matmul(t2).numpy()

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
    return DeviceRun(tx.device, _device_name(tx.device), first, med, mlp_flops() / med / 1e9, err,
                     bool(np.allclose(out, ref, rtol=1e-3, atol=1e-3)))


def _device_name(device: str) -> str:
    if device.startswith("CL"):
        from compiler.opencl_devices import describe_opencl_devices

        index = int(device.split(":")[1]) if ":" in device else 0
        infos = describe_opencl_devices()
        if index < len(infos):
            return f"{infos[index].name} ({infos[index].platform})"
    return device


def _quantize(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8 quantization: (values, scale)."""
    scale = float(np.max(np.abs(a))) / 127.0 or 1.0
    return np.clip(np.round(a / scale), -127, 127).astype(np.int8), scale


def run_on_simulator(design_name: str) -> SimRun:
    """The MLP int8-quantized on the simulated design: each GEMM simulated with values, checked exact."""
    from sim.gemm import run_gemm

    design = load_design(design_name)
    if design.is_float:
        raise DesignError(f"{design_name}: the demo's simulated model is int8; pick an int8 design")
    x, w1, w2 = mlp_weights()
    qx, sx = _quantize(x)
    qw1, s1 = _quantize(w1)
    qw2, s2 = _quantize(w2)
    cycles, exact, busy_macs = 0, True, 0

    def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        nonlocal cycles, exact, busy_macs
        c, result, _ = run_gemm(design, a, b)
        exact &= bool(np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64)))
        cycles += result.cycles
        busy_macs += a.shape[0] * a.shape[1] * b.shape[1]
        return c

    h = gemm(qx, qw1).astype(np.float32) * (sx * s1)
    qh, sh = _quantize(np.maximum(h, 0))
    out = gemm(qh, qw2).astype(np.float32) * (sh * s2)
    ref = np.maximum(x @ w1, 0) @ w2
    cosine = float(np.sum(out * ref) / (np.linalg.norm(out) * np.linalg.norm(ref)))
    seconds = cycles / design.chip.clock_hz
    utilization = busy_macs / (cycles * design.matrix.rows * design.matrix.cols)
    return SimRun(design.name, cycles, seconds, utilization, exact, cosine)


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

    design = load_design(args.design)  # the design and the chip are checked before the (longer) runs
    if design.is_float:
        raise DesignError(f"{args.design}: the demo's simulated model is int8; pick an int8 design")
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
        return 0 if dev.matches_numpy and sim.gemms_bit_exact else 1

    console.print(f"1. Compiler on [bold]{dev.device}[/] ({dev.device_name}) [dim](measured)[/]: "
                  f"first call {dev.first_call_s * 1e3:.0f} ms (compile included), then {dev.median_s * 1e3:.2f} ms "
                  f"= {dev.gflops:.1f} GFLOP/s; max |error| vs numpy {dev.max_abs_error:.1e} "
                  + ("[green]matches numpy[/]" if dev.matches_numpy else "[red]DIFFERS from numpy[/]"))
    console.print(f"2. Simulated [bold]{sim.design}[/] [dim](simulated)[/]: int8 MLP in {sim.cycles:,} cycles "
                  f"({sim.seconds * 1e6:.1f} us), array utilization {sim.utilization:.1%}; int32 GEMM results "
                  + ("[green]bit-exact vs numpy[/]" if sim.gemms_bit_exact else "[red]DIFFER from numpy[/]")
                  + f"; int8 model vs float model cosine {sim.cosine_to_float:.4f}")
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
    return 0 if dev.matches_numpy and sim.gemms_bit_exact else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add `demo` to the CLI."""
    p = sub.add_parser("demo", help="run a model on OpenCL and on a simulated design, and compare cost-performance")
    p.add_argument("--device", default=None, help="compiler device (default: WB_DEVICE, else first GPU, else CL)")
    p.add_argument("--design", default=DEFAULT_DESIGN, help=f"int8 design name or .toml path (default {DEFAULT_DESIGN})")
    p.add_argument("--chip", default="rx-7900-xtx", help="real chip to show beside it (see `workbench chips`)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=demo)
