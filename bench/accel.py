"""Benchmark the compiler's accelerator backend: compile and simulate a GPT-2-small block on the SIM device.

    python -m bench.accel                 # T=128 on datacenter-bf16-128x128 and small-int8-8x8
    python -m bench.accel --t 64 --json out.json

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
    t0 = time.perf_counter()
    ref = graph(Tensor(x, device="REF")).numpy()
    ref_wall = time.perf_counter() - t0
    return {"design": design, "t": t, "precision": "float32" if graph is model else "int8 linears",
            "sim_wall_s": wall, "target_s": TARGETS.get(design), "ref_wall_s": ref_wall,
            "cycles": run.cycles, "simulated_cycles_per_s": run.cycles / wall, "utilization": run.utilization,
            "programs": len(run.graph_programs), "kernel_mode_cycles": per_kernel.cycles,
            "kernel_mode_wall_s": wall_k, "kernel_mode_identical": bool(np.array_equal(got, got_k)),
            "host_flops": run.host_flops, "flops": run.flops, "kernels": len(run.kernels),
            "max_abs_diff_vs_ref": float(np.max(np.abs(got - ref))), "bit_exact_vs_ref": bool(np.array_equal(got, ref))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t", type=int, default=128, help="sequence length")
    ap.add_argument("--design", action="append", help="design(s) (default: the two of the targets)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    rows = [bench(d, args.t) for d in (args.design or list(TARGETS))]
    for r in rows:
        ok = "" if r["target_s"] is None else (" (target < {:.0f} s: {})".format(r["target_s"], "met" if r["sim_wall_s"] < r["target_s"] else "MISSED"))
        print(f"{r['design']:26s} {r['precision']:13s} T={r['t']}: SIM {r['sim_wall_s']:6.2f} s{ok}, REF {r['ref_wall_s']:6.2f} s, "
              f"{r['cycles']:,} cycles = {r['simulated_cycles_per_s']:,.0f} cycles/s, utilization {r['utilization']:.1%}, "
              f"host {r['host_flops'] / max(r['flops'], 1):.1%} of FLOP, max |SIM-REF| {r['max_abs_diff_vs_ref']:.3g}")
        print(f"{'':26s} one program per run of accelerator kernels ({r['programs']} programs): {r['cycles']:,} cycles; "
              f"one program per kernel: {r['kernel_mode_cycles']:,} cycles in {r['kernel_mode_wall_s']:.2f} s "
              f"({1 - r['cycles'] / max(r['kernel_mode_cycles'], 1):.2%} fewer; outputs "
              f"{'identical' if r['kernel_mode_identical'] else 'DIFFER'})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
