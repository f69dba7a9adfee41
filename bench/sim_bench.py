"""Benchmark the cycle-level simulator's GEMM entry against SCALE-Sim 3.0 on a grid of GEMMs.

    python -m bench.sim_bench                        # whole grid; SCALE-Sim on a subset
    python -m bench.sim_bench --no-scalesim --json out.json
    python -m bench.sim_bench --scalesim-seconds 30  # smaller SCALE-Sim budget

Grid: GEMMs (M x N x K; M = output rows, N = output columns, K = reduction) 64^3, 128^3, 256^3,
512^3, 1024^3, 128x3072x768 (a GPT-2 MLP layer), and two ResNet-18 convolutions as GEMMs,
12100x64x147 (7x7x3 stem, 110x110 outputs) and 2916x64x576 (3x3x64, 54x54 outputs); arrays 8x8,
16x16, 32x32, 128x128; dataflows os and ws: 64 points.

Columns:
- formula: SCALE-Sim's stall-free cycles in closed form (tests/fixtures/scalesim/README.md), as a
  count of cycles;
- ours: `compiler.accel.gemm_run.simulate_gemm` through `_run_ours` (ideal memory, folds not overlapped), its
  cycles and simulated cycles per wall-clock second; "not available (reason)" until it lands;
- SCALE-Sim: run for real (bench/scalesim_runner.py) on the smallest points first, within a time
  budget; it simulates a few thousand cycles per second, so it cannot do the whole grid.

Targets: the whole grid under 10 s of our simulator's wall time on this 2-core machine, and at
least 1M simulated cycles/s on 1024^3 on a 32x32 array. Timings are noisy on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from bench.scalesim_runner import ScaleSimUnavailable, run_gemm, scalesim_unavailable_reason  # noqa: E402

GEMMS = [(64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
         (128, 3072, 768), (12100, 64, 147), (2916, 64, 576)]
ARRAYS = [(8, 8), (16, 16), (32, 32), (128, 128)]
DATAFLOWS = ("os", "ws")
GRID_WALL_TARGET_S = 10.0
RATE_TARGET = 1e6  # simulated cycles per second on 1024^3, 32x32
RATE_TARGET_POINT = (1024, 1024, 1024, 32, 32)


def formula_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim's stall-free cycles as a count, converted by sim.scalesim (the project's one place)."""
    from sim.scalesim import cycles_from_scalesim, stall_free_formula

    return cycles_from_scalesim(stall_free_formula(m, n, k, rows, cols, dataflow), 0)


# ----------------------------------------------------------------------------------------------
# Our simulator: the one adapter to adjust when the call signature is agreed

def ours_unavailable_reason() -> str | None:
    try:
        from compiler.accel.gemm_run import simulate_gemm  # noqa: F401
    except Exception as exc:  # not merged yet, or broken: say which
        return f"{type(exc).__name__}: {exc}"
    return None


def _run_ours(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """Cycles (a count) of our simulator for one GEMM with ideal memory and no fold overlap.

    Written against the signature on the isa-sim branch as of this commit:
    `simulate_gemm(m, n, k, design=None, rows=, cols=, dataflow=, ideal_memory=, overlap=, values=, ...)`
    returning a result with `.cycles`. Timing only (`values=False`) where the entry offers it.
    """
    import inspect

    from compiler.accel.gemm_run import simulate_gemm

    kwargs = {"rows": rows, "cols": cols, "dataflow": dataflow, "ideal_memory": True, "overlap": False}
    if "values" in inspect.signature(simulate_gemm).parameters:
        kwargs["values"] = False
    res = simulate_gemm(m, n, k, **kwargs)
    return int(res if isinstance(res, int) else res.cycles)


# ----------------------------------------------------------------------------------------------

def grid() -> list[tuple[int, int, int, int, int, str]]:
    return [(m, n, k, r, c, df) for (m, n, k) in GEMMS for (r, c) in ARRAYS for df in DATAFLOWS]


def run_ours(points: list) -> tuple[dict, float, str | None]:
    reason = ours_unavailable_reason()
    if reason:
        return {}, 0.0, reason
    out = {}
    t_grid = time.perf_counter()
    for p in points:
        t0 = time.perf_counter()
        try:
            cycles = _run_ours(*p)
        except Exception as exc:  # one bad point must not hide the rest
            out[p] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        wall = time.perf_counter() - t0
        out[p] = {"cycles": cycles, "wall_s": wall, "cycles_per_s": cycles / wall if wall > 0 else None}
    return out, time.perf_counter() - t_grid, None


def run_scalesim(points: list, budget_s: float, timeout_s: float) -> tuple[dict, str | None]:
    """SCALE-Sim on the points with the fewest predicted cycles first, until the time budget is spent."""
    reason = scalesim_unavailable_reason()
    if reason:
        return {}, reason
    out = {}
    t_start = time.perf_counter()
    spent_cycles, spent_s = 0, 0.0
    for p in sorted(points, key=lambda p: formula_cycles(*p)):
        left = budget_s - (time.perf_counter() - t_start)
        # predicted wall time: interpreter start plus cycles at the rate seen so far (don't start a
        # run that cannot finish inside the budget)
        predicted = 0.4 + (formula_cycles(*p) * spent_s / spent_cycles if spent_cycles else 0.0)
        if left <= 0 or predicted > left:
            break
        try:
            res = run_gemm(*p, timeout_s=min(timeout_s, max(left, 1.0)))
        except ScaleSimUnavailable as exc:
            return out, str(exc)
        except subprocess.TimeoutExpired as exc:  # the budget ran out: the remaining points are only bigger
            out[p] = {"error": f"stopped after {exc.timeout:.0f} s (budget)"}
            break
        except Exception as exc:
            out[p] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            continue
        from sim.scalesim import cycles_from_scalesim

        count = cycles_from_scalesim(res.total_cycles, res.stall_cycles)
        spent_cycles, spent_s = spent_cycles + count, spent_s + res.wall_s
        out[p] = {"cycles": count, "raw_stall_free": res.stall_free_cycles, "stall_cycles": res.stall_cycles,
                  "wall_s": res.wall_s, "cycles_per_s": count / res.wall_s}
        print(f"  SCALE-Sim {p}: {count} cycles in {res.wall_s:.1f} s", file=sys.stderr, flush=True)
    return out, None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-scalesim", action="store_true", help="skip the SCALE-Sim column")
    ap.add_argument("--scalesim-seconds", type=float, default=90.0,
                    help="wall-clock budget for the SCALE-Sim column (default 90 s)")
    ap.add_argument("--scalesim-timeout", type=float, default=60.0, help="seconds allowed per SCALE-Sim run")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    ap.add_argument("--sim-root", metavar="DIR",
                    help="source tree whose `sim` (and `isa`) packages are measured (default: this repo)")
    args = ap.parse_args(argv)
    if args.sim_root:
        sys.path.insert(0, str(Path(args.sim_root).resolve()))

    points = grid()
    ours, ours_grid_s, ours_reason = run_ours(points)
    if ours_reason:
        print(f"simulator column: not available ({ours_reason})")
    ss, ss_reason = ({}, "skipped (--no-scalesim)") if args.no_scalesim else \
        run_scalesim(points, args.scalesim_seconds, args.scalesim_timeout)
    if ss_reason:
        print(f"SCALE-Sim column: not available ({ss_reason})")

    rows = []
    for p in points:
        f = formula_cycles(*p)
        o, s = ours.get(p, {}), ss.get(p, {})
        rows.append({
            "m": p[0], "n": p[1], "k": p[2], "rows": p[3], "cols": p[4], "dataflow": p[5],
            "formula_cycles": f, "ours": o or None, "scalesim": s or None,
            "ours_matches_formula": (o.get("cycles") == f) if "cycles" in o else None,
            "ours_matches_scalesim": (o.get("cycles") == s.get("cycles")) if "cycles" in o and "cycles" in s
            else None,
            "rate_ratio_vs_scalesim": (o["cycles_per_s"] / s["cycles_per_s"])
            if o.get("cycles_per_s") and s.get("cycles_per_s") else None,
        })

    ss_done = [r["scalesim"] for r in rows if r["scalesim"] and "cycles" in r["scalesim"]]
    ss_rate = _overall_rate(ss_done)
    ours_done = [r["ours"] for r in rows if r["ours"] and "cycles" in r["ours"]]
    ours_rate = _overall_rate(ours_done)
    rate_pts = [r for r in rows if (r["m"], r["n"], r["k"], r["rows"], r["cols"]) == RATE_TARGET_POINT]
    rate_vals = [r["ours"]["cycles_per_s"] for r in rate_pts if r["ours"] and r["ours"].get("cycles_per_s")]
    summary = {
        "ours_grid_wall_s": ours_grid_s if ours_done else None,
        "ours_total_cycles": sum(x["cycles"] for x in ours_done) if ours_done else None,
        "ours_cycles_per_s": ours_rate,
        "scalesim_points": len(ss_done), "scalesim_cycles_per_s": ss_rate,
        "rate_ratio_vs_scalesim": ours_rate / ss_rate if ours_rate and ss_rate else None,
        "target_grid_under_10s": (ours_grid_s < GRID_WALL_TARGET_S) if ours_done else None,
        "target_1024_32x32_rate": (min(rate_vals) >= RATE_TARGET) if rate_vals else None,
        "ours_unavailable": ours_reason, "scalesim_unavailable": ss_reason,
    }
    print_report(rows, summary)
    if args.json:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc = {"rows": rows, "summary": summary, "date_utc": stamp}
        Path(args.json).write_text(json.dumps(doc, indent=1))
        print(f"wrote {args.json}")
    bad = [r for r in rows if r["ours_matches_formula"] is False or r["ours_matches_scalesim"] is False]
    return 1 if bad else 0


def _overall_rate(done: list[dict]) -> float | None:
    """Simulated cycles per wall-clock second over several runs (total cycles / total wall time)."""
    wall = sum(x["wall_s"] for x in done)
    return sum(x["cycles"] for x in done) / wall if done and wall > 0 else None


def print_report(rows: list[dict], summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=max(Console().width, 120))
    tab = Table(title="GEMM cycles: formula (SCALE-Sim closed form), our simulator, SCALE-Sim")
    for name in ("M x N x K", "array", "df", "formula", "ours", "ours cyc/s", "SCALE-Sim", "SCALE-Sim cyc/s",
                 "speed vs SCALE-Sim", "match"):
        tab.add_column(name, justify="left" if name in ("M x N x K", "array", "df", "match") else "right")
    rate = lambda x: "-" if not x else (f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k")
    for r in rows:
        o, s = r["ours"] or {}, r["scalesim"] or {}
        match = []
        if r["ours_matches_formula"] is not None:
            match.append("[green]=formula[/green]" if r["ours_matches_formula"] else "[red]!=formula[/red]")
        if r["ours_matches_scalesim"] is not None:
            ok = r["ours_matches_scalesim"]
            match.append("[green]=SCALE-Sim[/green]" if ok else "[red]!=SCALE-Sim[/red]")
        if s.get("cycles") is not None and s["cycles"] != r["formula_cycles"]:
            match.append("[red]SCALE-Sim!=formula[/red]")
        o_cyc = f"{o['cycles']:,}" if "cycles" in o else o.get("error", "-")[:30]
        s_cyc = f"{s['cycles']:,}" if "cycles" in s else s.get("error", "-")[:30]
        tab.add_row(f"{r['m']}x{r['n']}x{r['k']}", f"{r['rows']}x{r['cols']}", r["dataflow"],
                    f"{r['formula_cycles']:,}", o_cyc, rate(o.get("cycles_per_s")), s_cyc,
                    rate(s.get("cycles_per_s")),
                    f"{r['rate_ratio_vs_scalesim']:.0f}x" if r["rate_ratio_vs_scalesim"] else "-",
                    " ".join(match) or "-")
    con.print(tab)
    mark = lambda v: {True: "[green]PASS[/green]", False: "[red]MISS[/red]", None: "n/a"}[v]
    g = summary["ours_grid_wall_s"]
    con.print(f"our simulator: grid wall time {'-' if g is None else f'{g:.2f} s'} "
              f"({mark(summary['target_grid_under_10s'])} target < {GRID_WALL_TARGET_S:.0f} s), "
              f"{rate(summary['ours_cycles_per_s'])} simulated cycles/s over the grid; 1024^3 on 32x32: "
              f"{mark(summary['target_1024_32x32_rate'])} target >= {rate(RATE_TARGET)} cycles/s")
    ratio = summary["rate_ratio_vs_scalesim"]
    con.print(f"SCALE-Sim: {summary['scalesim_points']} points, {rate(summary['scalesim_cycles_per_s'])} "
              "simulated cycles/s (wall time of its subprocess, interpreter start included); "
              f"ours / SCALE-Sim cycles/s: {'-' if not ratio else f'{ratio:.0f}x'}")
    con.print("Timings are from a small shared machine and are noisy.")


if __name__ == "__main__":
    sys.exit(main())
