"""Benchmark the design-space sweep: points per second through Dask against the same points in a plain loop.

    python -m bench.sweep                          # 2,000-point sweep on a 2-worker LocalCluster + overhead runs
    python -m bench.sweep --overhead-points 100 --no-full
    python -m bench.sweep --spec my.toml --json out.json

Runs, each into a fresh database (nothing reused):
- full: `bench/sweep-2000.toml` (a seeded random 2,000 of 2,880 design points x one 512x512x512 GEMM) through
  `run_sweep` on a LocalCluster of 2 single-threaded worker processes; wall time from the cluster's start to the
  last result stored, and without the cluster start.
  "point CPU s" sums each point's process CPU time on its worker: unlike wall time, a busy machine does not
  inflate it, so CPU s / workers is the sweep time on idle cores, less Dask's own share.
- overhead: a seeded random `--overhead-points` points of the same spec, evaluated (1) in a plain loop in this
  process (`run_point` one after another, no Dask, no database), (1b) the same without the shared-simulation fast
  path (each point simulated afresh), (2) through `run_sweep` on a 1-worker LocalCluster, (3) on a 2-worker one. Dask overhead = loop rate / 1-worker rate (1.0 = none); the 2-worker speedup
  is over the loop. On the shared 2-core machine other work steals cores: read the load average printed.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from workbench.results_db import ResultsDB  # noqa: E402
from workbench.sweep import DaskExecutor, make_tasks, run_point, run_sweep  # noqa: E402
from workbench.sweep_spec import load_spec  # noqa: E402
from workbench.sweep_workloads import _TIMINGS  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def dask_run(spec, workers: int, folder: Path, label: str) -> dict:
    """run_sweep on a fresh LocalCluster of `workers` processes into a fresh database."""
    t0 = time.perf_counter()
    executor = DaskExecutor(None, workers)
    started = time.perf_counter() - t0
    try:
        summary = run_sweep(spec, folder / f"{label}.db", executor=executor)
    finally:
        executor.close()
    total = time.perf_counter() - t0
    assert summary.computed == summary.results and summary.lost == 0, summary
    with ResultsDB(folder / f"{label}.db") as db:
        cpu = sum(r["eval_cpu_seconds"] or 0.0 for r in db.rows())
    return {"cpu_s": cpu, "run": label, "workers": workers, "points": summary.computed, "cluster_start_s": started,
            "sweep_s": summary.seconds, "total_s": total, "points_per_s": summary.computed / summary.seconds,
            "errors": summary.errors, "load": _load(), "frontier": summary.frontier}


def loop_run(spec, share: bool = True) -> dict:
    """The same points, evaluated one after another in this process (no Dask, no database).

    share=False forgets the simulations after each point: what every point costs without the shared-simulation
    fast path (docs/sweeps.md, Speed).
    """
    tasks = make_tasks(spec, spec.initial_points())
    _TIMINGS.clear()
    t0 = time.perf_counter()
    cpu = 0.0
    for t in tasks:
        cpu += run_point(t.design, t.workload)["eval_cpu_seconds"]
        if not share:
            _TIMINGS.clear()
    s = time.perf_counter() - t0
    return {"cpu_s": cpu, "run": "plain loop" if share else "loop, nothing shared", "workers": 1, "points": len(tasks), "cluster_start_s": 0.0, "sweep_s": s,
            "total_s": s, "points_per_s": len(tasks) / s, "errors": None, "load": _load()}


def main() -> int:
    """Run the benchmark and print a table (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(REPO / "bench" / "sweep-2000.toml"))
    ap.add_argument("--overhead-points", type=int, default=200, help="points of the loop-vs-Dask runs (0: skip)")
    ap.add_argument("--no-full", action="store_true", help="skip the full sweep")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.no_full:
            spec = load_spec(args.spec)
            out.append(dask_run(spec, 2, folder, "full, 2 workers"))
        if args.overhead_points:
            small = load_spec(args.spec, strategy="random", points=args.overhead_points)
            out.append(loop_run(small))
            out.append(loop_run(small, share=False))
            out.append(dask_run(small, 1, folder, "overhead, 1 worker"))
            out.append(dask_run(small, 2, folder, "overhead, 2 workers"))
    print(f"{'run':<22} {'points':>6} {'start s':>8} {'sweep s':>8} {'total s':>8} {'points/s':>9} {'point CPU s':>11}"
          "  load avg (1, 5, 15 min)")
    for r in out:
        print(f"{r['run']:<22} {r['points']:>6} {r['cluster_start_s']:>8.1f} {r['sweep_s']:>8.1f} {r['total_s']:>8.1f} "
              f"{r['points_per_s']:>9.2f} {r['cpu_s']:>11.1f}  {r['load']}")
    rates = {r["run"]: r["points_per_s"] for r in out}
    if "plain loop" in rates:
        print(f"Dask overhead (plain loop / 1-worker LocalCluster points/s): "
              f"{rates['plain loop'] / rates['overhead, 1 worker']:.2f}x; "
              f"2-worker speedup over the loop: {rates['overhead, 2 workers'] / rates['plain loop']:.2f}x")
    if out and out[0]["run"].startswith("full"):
        f = out[0]
        print(f"full sweep: {f['points']} points in {f['total_s']:.1f} s including the cluster start "
              f"({'under' if f['total_s'] < 300 else 'OVER'} the 5-minute bar); the points' CPU time / 2 workers = "
              f"{f['cpu_s'] / 2:.1f} s (the wall time on 2 idle cores, less Dask's share); frontier:")
        for p in f["frontier"]:
            print(f"  {p['design']}: {p['tflops_per_kusd']:.2f} TFLOPS/$1000, {p['tflops_per_w']:.3f} TFLOPS/W, "
                  f"{p['tflops']:.3f} TFLOPS, {p['area_mm2']:.1f} mm^2")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
