"""Compare the reference designs' simulated GEMM throughput with published measurements of the real chips.

    PYTHONPATH=$PWD python -m bench.validate_silicon            # table and error statistics per chip
    PYTHONPATH=$PWD python -m bench.validate_silicon --json out.json

Data: workbench/measured_gemm.csv (each row cites its source; docs/models.md tabulates them). For each chip the
design whose [reference] chip names it is simulated on the same shape through `workbench.estimate` (the cycle
simulator, the power cap included). Prints, per chip and per shape kind, the median and worst absolute error of
simulated / measured - 1. Issue 14's bar: median <= 10%, worst <= 25%.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from workbench.measured import (  # noqa: E402
    compare_to_design,
    error_stats,
    load_measurements,
    reference_design_for,
)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print it; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write every comparison to this JSON file")
    ap.add_argument("--chip", action="append", help="only these chip keys (default: every chip in the data)")
    args = ap.parse_args(argv)
    rows = load_measurements()
    chips = args.chip or sorted({r.chip for r in rows})
    report: dict[str, object] = {}
    for chip in chips:
        design = reference_design_for(chip)
        t0 = time.perf_counter()
        results = compare_to_design([r for r in rows if r.chip == chip], design)
        wall = time.perf_counter() - t0
        print(f"\n{chip} vs {design.name} ({len(results)} measurements, {wall:.1f} s of simulation)")
        print(f"  {'dtype':<5} {'shape (batch x m x n x k)':<28} {'kind':<8} {'measured':>9} {'simulated':>9} {'error':>8}")
        for c in results:
            shape = f"{c.batch} x {c.m} x {c.n} x {c.k}"
            sim = f"{c.simulated_tflops:9.1f}" if c.simulated_tflops is not None else "      n/a"
            err = f"{c.error:+8.1%}" if c.error is not None else f"  ({c.note[:40]})"
            print(f"  {c.dtype:<5} {shape:<28} {c.kind:<8} {c.measured_tflops:9.1f} {sim} {err}")
        stats = {"all": error_stats(results)}
        for kind in sorted({c.kind for c in results}):
            stats[kind] = error_stats([c for c in results if c.kind == kind])
        for name, s in stats.items():
            if s.get("count"):
                print(f"  {name:<8} n={s['count']:<3} median |error| {s['median_abs_error']:.1%}, worst "
                      f"{s['worst_abs_error']:.1%}, median signed {s['median_signed_error']:+.1%}")
        report[chip] = {"design": design.name, "stats": stats, "rows": [c.to_json() for c in results]}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
