"""Benchmark the compiler's accelerator backend: compile and simulate a GPT-2-small block on the SIM device.

    python -m bench.accel                 # T=128 on datacenter-bf16-128x128 and small-int8-8x8
    python -m bench.accel --t 64 --json out.json
    python -m bench.accel --modes-table   # mlp, cnn, gpt2-block on three designs: cycles per program mode

Per design: the float block (bf16 design) or the int8-quantized block (int8 design: its Linears on the array,
layernorm/softmax/GELU/attention on the host, accounted) is scheduled, lowered to isa programs and simulated
with values. Printed: wall seconds of the SIM run (scheduling + lowering + simulation; the REF run that
checks it is timed separately as the peer), simulated cycles, simulated cycles per wall second, array
utilization, host FLOP. Targets (issue 9): datacenter-bf16-128x128 under 10 s, small-int8-8x8 under 60 s.
The SIM run is timed in both program modes (compiler.accel.runtime): "graph", one isa program per run of
accelerator kernels (the default, the one the targets apply to), and "kernel", one program per kernel; the
cycles of both are printed (graph <= kernel: the single program overlaps one kernel's loads with the previous
one's drain) and the outputs must be identical.
Timings are noisy on a shared machine; BLAS runs on one thread (set OPENBLAS_NUM_THREADS to override).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

# One BLAS thread: the functional model's matmuls are small (one array tile), and on a shared 2-core machine
# OpenBLAS's default thread pool makes them 20x slower (measured: 18 128x768x128 float32 products 0.74 s vs 0.036 s).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from compiler import Tensor, models  # noqa: E402
from compiler.accel.runtime import sim_run  # noqa: E402
from compiler.quantize import quantize  # noqa: E402

TARGETS = {"datacenter-bf16-128x128": 10.0, "small-int8-8x8": 60.0}


def bench(design: str, t: int) -> dict:
    """One GPT-2-small block on one design: SIM wall time (both program modes) against the REF run of the same graph."""
    model = models.gpt2_block(t=t)
    x = model.sample_input()
    dev = f"SIM:{design}"
    from compiler.accel.runtime import design_of

    graph = model if design_of(dev).is_float else quantize(model, x)
    t0 = time.perf_counter()
    with sim_run(dev, programs="graph") as run:
        got = graph(Tensor(x, device=dev)).numpy()
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    with sim_run(dev, programs="kernel") as per_kernel:
        got_k = graph(Tensor(x, device=dev)).numpy()
    wall_k = time.perf_counter() - t0
    t0 = time.perf_counter()  # the graph mode again, warm like the kernel-mode run above
    with sim_run(dev, programs="graph"):
        graph(Tensor(x, device=dev)).numpy()
    wall_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = graph(Tensor(x, device="REF")).numpy()
    ref_wall = time.perf_counter() - t0
    return {"design": design, "t": t, "precision": "float32" if graph is model else "int8 linears",
            "sim_wall_s": wall, "target_s": TARGETS.get(design), "ref_wall_s": ref_wall,
            "cycles": run.cycles, "simulated_cycles_per_s": run.cycles / wall, "utilization": run.utilization,
            "programs": len(run.graph_programs), "kernel_mode_cycles": per_kernel.cycles,
            "kernel_mode_wall_s": wall_k, "graph_mode_warm_wall_s": wall_warm,
            "program_ends": [p.ends_at for p in run.graph_programs], "kernel_mode_identical": bool(np.array_equal(got, got_k)),
            "host_flops": run.host_flops, "flops": run.flops, "kernels": len(run.kernels),
            "max_abs_diff_vs_ref": float(np.max(np.abs(got - ref))), "bit_exact_vs_ref": bool(np.array_equal(got, ref))}


TABLE_DESIGNS = ("small-int8-8x8", "edge-int8-16x16", "datacenter-bf16-128x128")


def program_modes(name: str, design: str, t: int) -> dict:
    """One built-in model (default sizes; gpt2-block at T=t) on one design: total cycles in both program modes."""
    model = models.gpt2_block(t=t) if name == "gpt2-block" else getattr(models, name)()
    x = model.sample_input()
    dev = f"SIM:{design}"
    from compiler.accel.runtime import design_of

    graph = model if design_of(dev).is_float else quantize(model, x)
    xin = x if graph is model else graph.quantize_input(x)
    out, walls = {}, {}
    for mode in ("kernel", "graph"):
        t0 = time.perf_counter()
        with sim_run(dev, programs=mode) as run:
            got = graph(Tensor(xin, device=dev)).numpy()
        walls[mode] = time.perf_counter() - t0
        out[mode] = (got, run)
    (gk, rk), (gg, rg) = out["kernel"], out["graph"]
    return {"model": name, "design": design, "kernel_mode_cycles": rk.cycles, "graph_mode_cycles": rg.cycles,
            "programs": len(rg.graph_programs), "kernels": len(rg.kernels), "host_ops": len(rg.host_ops),
            "identical": bool(np.array_equal(gk, gg)), "kernel_mode_wall_s": walls["kernel"],
            "graph_mode_wall_s": walls["graph"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t", type=int, default=128, help="sequence length")
    ap.add_argument("--design", action="append", help="design(s) (default: the two of the targets)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--modes-table", action="store_true",
                    help="instead: mlp, cnn and gpt2-block on three designs, total cycles per program mode")
    args = ap.parse_args()
    if args.modes_table:
        rows = [program_modes(m, d, args.t) for m in ("mlp", "cnn", "gpt2-block") for d in (args.design or TABLE_DESIGNS)]
        for r in rows:
            print(f"{r['model']:10s} {r['design']:26s} per kernel {r['kernel_mode_cycles']:>12,}  whole graph "
                  f"{r['graph_mode_cycles']:>12,} ({1 - r['graph_mode_cycles'] / max(r['kernel_mode_cycles'], 1):6.2%} "
                  f"fewer) in {r['programs']} program(s) for {r['kernels']} kernels, {r['host_ops']} host ops; "
                  f"values {'identical' if r['identical'] else 'DIFFER'}; wall {r['kernel_mode_wall_s']:.1f} s / "
                  f"{r['graph_mode_wall_s']:.1f} s")
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 0
    rows = [bench(d, args.t) for d in (args.design or list(TARGETS))]
    for r in rows:
        ok = "" if r["target_s"] is None else (" (target < {:.0f} s: {})".format(r["target_s"], "met" if r["sim_wall_s"] < r["target_s"] else "MISSED"))
        print(f"{r['design']:26s} {r['precision']:13s} T={r['t']}: SIM {r['sim_wall_s']:6.2f} s{ok}, REF {r['ref_wall_s']:6.2f} s, "
              f"{r['cycles']:,} cycles = {r['simulated_cycles_per_s']:,.0f} cycles/s, utilization {r['utilization']:.1%}, "
              f"host {r['host_flops'] / max(r['flops'], 1):.1%} of FLOP, max |SIM-REF| {r['max_abs_diff_vs_ref']:.3g}")
        print(f"{'':26s} one program per run of accelerator kernels ({r['programs']} programs): {r['cycles']:,} cycles; "
              f"one program per kernel: {r['kernel_mode_cycles']:,} cycles ({1 - r['cycles'] / max(r['kernel_mode_cycles'], 1):.2%} fewer "
              f"in graph mode); warm wall {r['graph_mode_warm_wall_s']:.2f} s graph vs {r['kernel_mode_wall_s']:.2f} s kernel; outputs "
              f"{'identical' if r['kernel_mode_identical'] else 'DIFFER'})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
