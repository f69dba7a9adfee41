"""Benchmark this project's compiler against numpy, PyTorch (CPU) and tinygrad 0.14 on one machine.

    python -m bench.compiler_bench                  # everything, full sizes
    python -m bench.compiler_bench --quick          # small sizes, a smoke run
    python -m bench.compiler_bench --only matmul_1024 --only gpt2_block --json out.json
    python -m bench.compiler_bench --repeats 3       # 3 interleaved rounds: ratios with their ranges
    python -m bench.compiler_bench --threads 1       # every column on one thread (BLAS, PyTorch, PoCL)

Workloads: fp32 matmul 512/1024/2048; x @ W with W 4096x4096 (a matrix-vector product, W stored in x
out); exp2(relu(a*b+c)) on 16M floats; sum of 16M floats; row softmax on 4096x4096; conv2d batch 8,
64->64, 56x56, 3x3, padding 1; GPT-2 small's causal attention alone (12 heads of 128 x 64, q, k and v given);
one GPT-2-small block forward (batch 1, 128 tokens, d_model 768, 12
heads, MLP 3072).

Each column runs in its own subprocess (bench/compiler_worker.py) so frameworks cannot interfere:
numpy and this project (`ours`) in this interpreter's environment; PyTorch on the CPU (eager, its
default thread count) in this interpreter if it has torch (the `bench` extra), else `$TORCH_PYTHON`
or `.venv-torch`; tinygrad likewise (`$TINYGRAD_PYTHON`, `.venv-tinygrad`) with `DEV=<device>`.
PyPI's only Linux x86-64 torch wheel is the CUDA build (about 550 MB plus the nvidia-* wheels); it runs
on the CPU without a GPU. Columns run one after another, never at once. Times are the median of >= 5
runs after warm-up; the first call (compile) is reported separately, and for `ours` and tinygrad also
in a fresh process with an empty on-disk program cache (cold) and again with that cache filled (warm).

A column that cannot run prints "<column> column: not available (reason)" and is left out.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.compiler_worker import WORKLOADS

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "compiler_worker.py"
DEFAULT_TINYGRAD_PYTHON = str(Path(__file__).resolve().parent.parent / ".venv-tinygrad" / "bin" / "python")
COLUMNS = ("numpy", "torch", "tinygrad", "ours")
DEFAULT_TORCH_PYTHON = str(Path(__file__).resolve().parent.parent / ".venv-torch" / "bin" / "python")
TORCH_TARGET_WORKLOADS = ("softmax", "conv2d", "gpt2_block")  # issue 17: at least as fast as PyTorch there
GPT2_WARM_FIRST_CALL_TARGET_S = 2.0
MATMUL_1024_VS_NUMPY_TARGET = 0.40


# ----------------------------------------------------------------------------------------------
# Environments of the columns

def _peer_python(env_var: str, module: str, default: str) -> str:
    """`$env_var`, else this interpreter if it has `module` (the `bench` extra), else the default venv's python."""
    if env_var in os.environ:
        return os.environ[env_var]
    if importlib.util.find_spec(module) is not None:
        return sys.executable
    return default


def tinygrad_python() -> str:
    """`$TINYGRAD_PYTHON`, else this interpreter if it has tinygrad (the `bench` extra), else `.venv-tinygrad`."""
    return _peer_python("TINYGRAD_PYTHON", "tinygrad", DEFAULT_TINYGRAD_PYTHON)


def torch_python() -> str:
    """`$TORCH_PYTHON`, else this interpreter if it has torch (the `bench` extra), else `.venv-torch`."""
    return _peer_python("TORCH_PYTHON", "torch", DEFAULT_TORCH_PYTHON)


def torch_env() -> tuple[dict | None, str | None]:
    """The environment of the PyTorch (CPU) column, or (None, reason) when torch cannot be imported."""
    py = torch_python()
    if not Path(py).exists():
        return None, f"{py} not found: `pip install -e '.[bench]'` (or set TORCH_PYTHON)"
    probe = subprocess.run([py, "-c", "import torch, numpy"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"{py} cannot import torch and numpy ({last})"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env, None


def tinygrad_env(device: str) -> tuple[dict | None, str | None]:
    """The environment tinygrad's CL device needs here, or (None, reason) when it cannot run.

    tinygrad loads libOpenCL itself (ctypes); the pyopencl wheel in tinygrad's venv brings an ICD
    loader and PoCL, found through OPENCL_PATH, PYOPENCL_HOME and LD_LIBRARY_PATH. Its CPU helpers
    compile C with `$CC` (default clang): Debian's clang-15 works (`apt-get install clang-15`).
    """
    py = tinygrad_python()
    if not Path(py).exists():
        return None, (f"{py} not found: run `bash bench/setup_peers.sh` (or `pip install -e '.[bench]'`, "
                      f"or set TINYGRAD_PYTHON)")
    code = "import tinygrad, pyopencl, os; print(os.path.dirname(pyopencl.__file__))"
    probe = subprocess.run([py, "-c", code], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"{py} cannot import tinygrad and pyopencl ({last})"
    pyopencl_dir = probe.stdout.strip().splitlines()[-1]
    libs = sorted(glob.glob(os.path.join(pyopencl_dir, ".libs", "libOpenCL*.so*")))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # keep this repository's packages out of tinygrad's process
    if libs:
        env.setdefault("OPENCL_PATH", libs[0])
        env.setdefault("PYOPENCL_HOME", pyopencl_dir)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            x for x in (os.path.join(pyopencl_dir, ".libs"), env.get("LD_LIBRARY_PATH")) if x)
    if "CC" not in env:
        cc = next((c for c in ("clang", "clang-15", "clang-16", "clang-14") if shutil.which(c)), None)
        if cc is None:
            return None, "tinygrad needs clang for its CPU helpers: apt-get install -y clang-15 (or set CC)"
        env["CC"] = cc
    env["DEV"] = device
    return env, None


def ours_env(root: str | None = None) -> dict:
    """This interpreter's environment with the source tree that provides `compiler` first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (str(root or REPO), env.get("PYTHONPATH")) if x)
    return env


def column_command(column: str, args, extra: list[str]) -> tuple[list[str] | None, dict | None, str | None]:
    base = [str(WORKER), "--column", column, "--device", args.device] + (["--quick"] if args.quick else [])
    if args.threads:
        base += ["--threads", str(args.threads)]
    if column == "tinygrad":
        env, reason = tinygrad_env(args.device)
        if env is None:
            return None, None, reason
        jit = ["--tinygrad-jit"] if args.tinygrad_jit else []
        return [tinygrad_python(), *base, *jit, *extra], thread_env(env, args.threads), None
    if column == "torch":
        env, reason = torch_env()
        if env is None:
            return None, None, reason
        return [torch_python(), *base, *extra], thread_env(env, args.threads), None
    env = ours_env(args.compiler_root)
    if column == "ours" and args.ours_jit:
        extra = ["--ours-jit", *extra]
    if column == "numpy" and args.numpy_threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.numpy_threads)
    return [sys.executable, *base, *extra], thread_env(env, args.threads), None


THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",  # numpy's BLAS, PyTorch
               "POCL_MAX_PTHREAD_COUNT", "POCL_CPU_MAX_CU_COUNT")  # PoCL's CPU driver: 3.x, then 4.x on


def thread_env(env: dict, threads: int | None) -> dict:
    """env with every column's thread pool limited to `threads` (BLAS, OpenMP, PoCL); env when None."""
    if not threads:
        return env
    return dict(env, **{var: str(threads) for var in THREAD_VARS})


def run_worker(cmd: list[str], env: dict, timeout: float) -> dict:
    """Run one worker; its last stdout line is its JSON report. Progress lines pass through to stderr."""
    proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=None, text=True,
                          timeout=timeout)
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"available": False, "reason": f"worker exited {proc.returncode} without a report"}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------------------------
# First call in a fresh process: cold (empty on-disk caches) and warm (the same caches, filled)

def first_call_env(column: str, env: dict, cache: Path) -> dict:
    env = dict(env)
    env["POCL_CACHE_DIR"] = str(cache / "pocl")  # PoCL keeps compiled kernels on disk too
    if column == "ours":
        env["WB_CACHE_DIR"] = str(cache / "wb")
    elif column == "tinygrad":
        env["CACHEDB"] = str(cache / "tinygrad" / "cache.db")
    return env


def first_calls(column: str, args, workloads: list[str]) -> dict:
    out = {}
    for w in workloads:
        cmd, env, reason = column_command(column, args, ["--first-call", w])
        if cmd is None:
            return {}
        with tempfile.TemporaryDirectory(prefix=f"wb_bench_{column}_") as tmp:
            rec = {}
            for phase in ("cold", "warm"):
                t0 = time.perf_counter()
                rep = run_worker(cmd, first_call_env(column, env, Path(tmp)), args.timeout)
                wall = time.perf_counter() - t0
                if not rep.get("available") or "first_call" not in rep:
                    rec[phase] = None
                    rec[phase + "_error"] = rep.get("error") or rep.get("reason")
                    break
                rec[phase] = rep["first_call"]["first_call_s"]
                rec[phase + "_process_s"] = wall
                rec[phase + "_import_s"] = rep.get("import_s")
            out[w] = rec
            print(f"  {column:8s} {w:12s} first call in a fresh process: cold {_fmt_s(rec.get('cold'))}, "
                  f"warm {_fmt_s(rec.get('warm'))}", file=sys.stderr, flush=True)
    return out


# ----------------------------------------------------------------------------------------------
# Report

def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def merge_rounds(rounds: list[dict]) -> dict:
    """One report per column from several interleaved rounds: each workload's median over the rounds'
    medians, its times from every round, and the rounds' medians (`round_medians_s`)."""
    merged: dict = {}
    for c in COLUMNS:
        reps = [r[c] for r in rounds if c in r]
        if not reps:
            continue
        out = dict(reps[0], results=[], errors={})
        for rep in reps:
            out["errors"].update(rep.get("errors") or {})
        names = dict.fromkeys(rec["workload"] for rep in reps for rec in rep.get("results", []))
        for w in names:
            recs = [rec for rep in reps for rec in rep.get("results", []) if rec["workload"] == w]
            meds = [rec["median_s"] for rec in recs]
            cpus = [rec["cpu_median_s"] for rec in recs if rec.get("cpu_median_s")]
            if cpus:
                recs[0] = dict(recs[0], cpu_median_s=statistics.median(cpus))
            rec = dict(recs[0], round_medians_s=meds, median_s=statistics.median(meds),
                       min_s=min(rec["min_s"] for rec in recs),
                       times_s=[t for rec in recs for t in rec.get("times_s", [])])
            rec["gflops"] = rec["flop"] / rec["median_s"] / 1e9
            rec["check"] = next((r["check"] for r in recs if r.get("check") and not r["check"].get("ok")),
                                recs[0].get("check"))
            out["results"].append(rec)
        loads = [rep.get("loadavg_start") for rep in reps if rep.get("loadavg_start")]
        if loads:
            out["loadavg_range"] = [min(x[0] for x in loads), max(x[0] for x in loads)]
        merged[c] = out
    return merged


def ratio_range(rounds: list[dict], w: str, fast: str, slow: str) -> list[float] | None:
    """[min, max] over the interleaved rounds of slow's time / fast's time for workload w (same round)."""
    vals = []
    for r in rounds:
        t = {c: next((rec["median_s"] for rec in r.get(c, {}).get("results", []) if rec["workload"] == w), None)
             for c in (fast, slow)}
        if t[fast] and t[slow]:
            vals.append(t[slow] / t[fast])
    return [min(vals), max(vals)] if vals else None


def summarize(columns: dict, first: dict, workloads: list[str], rounds: list[dict] | None = None) -> list[dict]:
    """One row per workload: per-column time and GFLOP/s, speed ratios (with their range over interleaved
    rounds), targets."""
    rounds = rounds or [columns]
    rows = []
    for w in workloads:
        row = {"workload": w}
        for c, rep in columns.items():
            rec = next((r for r in rep.get("results", []) if r["workload"] == w), None)
            if rec is None:
                row[c] = {"error": rep.get("errors", {}).get(w) or rep.get("reason")}
                continue
            row[c] = {k: rec.get(k) for k in ("median_s", "min_s", "gflops", "first_call_s", "check", "flop",
                                              "params", "cpu_median_s")}
        t = {c: row.get(c, {}).get("median_s") for c in COLUMNS}
        ok_ours = (row.get("ours", {}).get("check") or {}).get("ok")
        # speed ratios: how many times faster the first is than the second (> 1: faster)
        row["ours_vs_numpy"] = _ratio(t["numpy"], t["ours"]) if ok_ours else None
        row["ours_vs_tinygrad"] = _ratio(t["tinygrad"], t["ours"]) if ok_ours else None
        row["ours_vs_torch"] = _ratio(t["torch"], t["ours"]) if ok_ours else None
        cpu = {c: row.get(c, {}).get("cpu_median_s") for c in COLUMNS}
        row["cpu_ratios"] = {f"ours_vs_{c}": _ratio(cpu[c], cpu["ours"]) if ok_ours else None
                             for c in ("numpy", "torch", "tinygrad")}
        row["tinygrad_vs_numpy"] = _ratio(t["numpy"], t["tinygrad"])
        row["torch_vs_numpy"] = _ratio(t["numpy"], t["torch"])
        row["ranges"] = {f"{a}_vs_{b}": ratio_range(rounds, w, a, b) if (a != "ours" or ok_ours) else None
                         for a, b in (("ours", "numpy"), ("ours", "torch"), ("ours", "tinygrad"),
                                      ("torch", "numpy"), ("tinygrad", "numpy"))}
        row["first_call"] = {c: first.get(c, {}).get(w) for c in first}
        targets = []
        r = row["ours_vs_tinygrad"]
        targets.append({"target": "as fast as tinygrad", "value": r, "pass": None if r is None else r >= 1.0})
        if w in TORCH_TARGET_WORKLOADS:
            r = row["ours_vs_torch"]
            targets.append({"target": "as fast as PyTorch", "value": r, "pass": None if r is None else r >= 1.0})
        if w == "matmul_1024":
            g_o, g_n = row.get("ours", {}).get("gflops"), row.get("numpy", {}).get("gflops")
            r = g_o / g_n if (g_o and g_n and ok_ours) else None
            targets.append({"target": f">= {MATMUL_1024_VS_NUMPY_TARGET:.0%} of numpy GFLOP/s",
                            "value": r, "pass": None if r is None else r >= MATMUL_1024_VS_NUMPY_TARGET})
        if w == "gpt2_block":
            warm, limit = (row["first_call"].get("ours") or {}).get("warm"), GPT2_WARM_FIRST_CALL_TARGET_S
            targets.append({"target": f"warm first call < {limit:.0f} s", "value": warm,
                            "pass": None if warm is None else warm < limit})
        row["targets"] = targets
        rows.append(row)
    return rows


def print_table(rows: list[dict], columns: dict, args) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=max(Console().width, 170))
    present = [c for c in COLUMNS if c in columns]
    fmt_r = lambda r: "-" if r is None else f"{r:.2f}x"

    def fmt_rr(row: dict, key: str) -> str:
        rng = row.get("ranges", {}).get(key)
        if row[key] is None or not rng or args.repeats < 2:
            return fmt_r(row[key])
        return f"{row[key]:.2f}x ({rng[0]:.2f}-{rng[1]:.2f})"

    sizes = "quick sizes" if args.quick else "full sizes"
    if args.threads:
        sizes += f", {args.threads} thread{'s' if args.threads != 1 else ''} per column"
    times = Table(title=f"compiler benchmark: median time (GFLOP/s; GB/s of W for gemv), device {args.device}, {sizes}")
    times.add_column("workload")
    times.add_column("GFLOP", justify="right")
    for c in present:
        times.add_column(c, justify="right")
    for row in rows:
        flop = next((row[c]["flop"] for c in present if row.get(c, {}).get("flop")), None)
        cells = [row["workload"], "-" if flop is None else f"{flop / 1e9:.3f}"]
        for c in present:
            rec = row.get(c, {})
            if rec.get("median_s") is None:
                cells.append("[red]error[/red]" if rec.get("error") else "-")
                continue
            bad = rec.get("check") and not rec["check"].get("ok")
            cell = f"{_fmt_s(rec['median_s'])} ({rec['gflops']:.1f})"
            if row["workload"].startswith("gemv_"):  # memory bound: W's 4 bytes per multiply-add
                cell += f" {2 * rec['gflops']:.1f} GB/s"
            if args.threads == 1 and rec.get("cpu_median_s"):  # one thread: its CPU time is the work done
                cell += f"\ncpu {_fmt_s(rec['cpu_median_s'])}"
            cells.append(("[red]WRONG[/red] " if bad else "") + cell)
        times.add_row(*cells)
    con.print(times)

    ratios = Table(title="speed ratios (> 1: the first is faster), first call, targets")
    for name in ("workload", "ours vs numpy", "ours vs torch", "ours vs tinygrad", "torch vs numpy",
                 "tinygrad vs numpy",
                 "first call ours\n(cold / warm)", "first call tinygrad\n(cold / warm)", "targets"):
        ratios.add_column(name, justify="left" if name in ("workload", "targets") else "right")
    for row in rows:
        cells = [row["workload"]] + [fmt_rr(row, key) for key in (
            "ours_vs_numpy", "ours_vs_torch", "ours_vs_tinygrad", "torch_vs_numpy", "tinygrad_vs_numpy")]
        for c in ("ours", "tinygrad"):
            fc = row["first_call"].get(c)
            cells.append("-" if not fc else f"{_fmt_s(fc.get('cold'))} / {_fmt_s(fc.get('warm'))}")
        marks = []
        for t in row["targets"]:
            mark = {True: "[green]PASS[/green]", False: "[red]MISS[/red]", None: "n/a"}[t["pass"]]
            marks.append(f"{mark} {t['target']}")
        cells.append("\n".join(marks) or "-")
        ratios.add_row(*cells)
    con.print(ratios)
    for c, rep in columns.items():
        for w, err in (rep.get("errors") or {}).items():
            con.print(f"{c} {w} failed: {err}", markup=False)
    for c, rep in columns.items():
        load = ""
        if rep.get("loadavg_range"):
            load = f" [load average {rep['loadavg_range'][0]:.1f}-{rep['loadavg_range'][1]:.1f} over the rounds]"
        elif rep.get("loadavg_start") and rep.get("loadavg_end"):
            load = f" [load average {rep['loadavg_start'][0]:.1f} -> {rep['loadavg_end'][0]:.1f}]"
        note = f" - {rep['note']}" if rep.get("note") else ""
        con.print(f"{c}: {rep.get('device_name', '?')}{note}{load}", markup=False)
    if args.threads == 1:
        for row in rows:
            rs = [f"vs {k[8:]} {v:.2f}x" for k, v in row.get("cpu_ratios", {}).items() if v]
            if rs:
                con.print(f"CPU-time ratio of ours (one thread each, > 1: ours does the work in less CPU time), "
                          f"{row['workload']}: {', '.join(rs)}", markup=False)
    if args.repeats > 1:
        con.print(f"{args.repeats} interleaved rounds (every column once per round): times are the median of "
                  "the rounds' medians; a ratio's range (min-max) is over the rounds, each from one round.")
    con.print(f"Medians of at least {args.runs} runs and {args.min_time:g} s of runs per workload, after "
              f"{args.warmup} warm-up calls. First calls in a fresh "
              "process: "
              "cold = empty on-disk program caches, warm = the same caches filled by the cold run. This "
              "machine is small and shared, so timings are noisy.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", metavar="WORKLOAD",
                    help=f"run only this workload (repeatable, or comma separated): {', '.join(WORKLOADS)}")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--device", default="CL", help="OpenCL device for ours and tinygrad (default CL)")
    ap.add_argument("--columns", default=",".join(COLUMNS),
                    help="comma separated subset of numpy,torch,tinygrad,ours (default: all)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per workload (at least 5)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up calls before timing (default 2)")
    ap.add_argument("--min-time", type=float, default=1.0, metavar="S",
                    help="time each workload for at least S seconds (and at least --runs calls, at most "
                         "500): a median over many calls of a short workload (default 1.0)")
    ap.add_argument("--repeats", type=int, default=1, metavar="R",
                    help="interleaved rounds: run every column once per round, R rounds, and report each "
                         "ratio's range over the rounds (a shared machine's load drifts between columns)")
    ap.add_argument("--no-first-call", action="store_true",
                    help="skip the fresh-process cold/warm first calls")
    ap.add_argument("--tinygrad-jit", action="store_true", help="run tinygrad under TinyJit (default: eager)")
    ap.add_argument("--ours-jit", action="store_true",
                    help="run ours under compiler.jit (default: eager, the graph built every call)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per worker process")
    ap.add_argument("--threads", type=int, metavar="N",
                    help="limit every column to N threads (BLAS, PyTorch, PoCL's compute units): on a shared "
                         "machine, --threads 1 compares the code rather than who got the free cores")
    ap.add_argument("--numpy-threads", type=int, metavar="N",
                    help="BLAS threads for the numpy column (default: BLAS's own choice, all cores)")
    ap.add_argument("--compiler-root", metavar="DIR",
                    help="source tree whose `compiler` package the ours column measures (default: this repo)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    if args.runs < 5:
        ap.error("--runs must be at least 5 (the median of at least 5 runs is reported)")
    if args.min_time < 0:
        ap.error("--min-time must be 0 or more seconds")
    workloads = [w for o in (args.only or [",".join(WORKLOADS)]) for w in o.split(",") if w]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    wanted = [c for c in args.columns.split(",") if c]
    unknown = [c for c in wanted if c not in COLUMNS]
    if unknown or not wanted:
        ap.error(f"--columns: unknown column(s) {unknown or [args.columns]}; choose from {', '.join(COLUMNS)}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be at least 1")
    unavailable: dict = {}
    extra = ["--only", ",".join(workloads), "--runs", str(args.runs), "--warmup", str(args.warmup),
             "--min-time", str(args.min_time)]
    rounds: list[dict] = []
    for i in range(args.repeats):
        rnd: dict = {}
        for c in wanted:
            if c in unavailable:
                continue
            cmd, env, reason = column_command(c, args, extra)
            if cmd is None:
                unavailable[c] = reason
                print(f"{c} column: not available ({reason})", flush=True)
                continue
            print(f"running the {c} column (round {i + 1} of {args.repeats})...", file=sys.stderr, flush=True)
            rep = run_worker(cmd, env, args.timeout)
            if not rep.get("available"):
                unavailable[c] = rep.get("reason")
                print(f"{c} column: not available ({rep.get('reason')})", flush=True)
                continue
            rnd[c] = rep
        rounds.append(rnd)
    columns = merge_rounds(rounds) if args.repeats > 1 else rounds[0]

    first: dict = {}
    if not args.no_first_call:
        for c in ("ours", "tinygrad"):
            if c in columns:
                print(f"first calls of the {c} column in fresh processes...", file=sys.stderr, flush=True)
                first[c] = first_calls(c, args, workloads)

    rows = summarize(columns, first, workloads, rounds)
    print_table(rows, columns, args)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": args.device, "quick": args.quick, "runs": args.runs, "min_time_s": args.min_time,
            "warmup": args.warmup,
            "repeats": args.repeats, "rounds": rounds if args.repeats > 1 else None,
            "tinygrad_jit": args.tinygrad_jit, "ours_jit": args.ours_jit, "numpy_threads": args.numpy_threads, "threads": args.threads,
            "compiler_root": str(args.compiler_root or REPO), "unavailable": unavailable,
            "columns": columns, "first_call": first, "rows": rows,
            "host": os.uname().nodename, "cpus": os.cpu_count(),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
