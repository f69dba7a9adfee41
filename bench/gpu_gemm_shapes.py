"""Time cuBLAS (through PyTorch) on every GEMM shape that workbench/measured_gemm.csv holds for a chip, on the
GPU in hand, with the SM clock and board power sampled during each shape's calls (NVML).

    python -m bench.gpu_gemm_shapes --chip h100-sxm --out shapes.json --csv shapes.csv

This is how the project measures silicon itself when a GPU is lent, instead of only citing others' numbers:
each shape is timed three ways, in the same run,
- kernel: CUDA events around a loop of back-to-back calls (launch gaps hidden; L2 warm), per call;
- flushed: each call alone between events, right after a write of 2x the L2's size (L2 cold);
- wall: host clock around the same loop with a final synchronise (what a `torch.matmul` loop sees).
A shape's clocks are the SM clock NVML reads every ~2 ms while its kernel loop runs: a short call on an idle
GPU may never reach the boost clock, which is what the chip model's worst rows need to know.
B is stored N x K and used transposed (C = A @ B^T, the nn.Linear and DeepGEMM layout); outputs in the row's
out_dtype (an fp32 output of bf16 inputs uses torch.mm's out_dtype where this PyTorch has it).
`--csv` writes rows in measured_gemm.csv's columns (timing kernel, l2 warm and flushed), ready to review and
append. Without a CUDA GPU, `--smoke` runs the same code on the CPU on small shapes (a test of the script).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import threading
import time
from pathlib import Path

from workbench.measured import load_measurements

TORCH_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32", "tf32": "float32"}


class ClockSampler:
    """Samples the SM clock (MHz) and board power (W) through NVML on a thread while `with` is open."""

    def __init__(self, index: int = 0, period_s: float = 0.002):
        self.period_s, self.clocks, self.watts = period_s, [], []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # no NVML: the rows carry no clock
            self._nvml = None

    def identity(self) -> dict:
        """The GPU's name, driver, and its maximum SM clock, as NVML reports them."""
        if self._nvml is None:
            return {}
        n, h = self._nvml, self._h
        name = n.nvmlDeviceGetName(h)
        return {
            "name": name.decode() if isinstance(name, bytes) else name,
            "driver": str(n.nvmlSystemGetDriverVersion()),
            "max_sm_clock_mhz": n.nvmlDeviceGetMaxClockInfo(h, n.NVML_CLOCK_SM),
            "power_limit_w": n.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0,
        }

    def __enter__(self):
        self.clocks, self.watts, self._stop = [], [], threading.Event()
        if self._nvml is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        n, h = self._nvml, self._h
        while not self._stop.is_set():
            self.clocks.append(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM))
            self.watts.append(n.nvmlDeviceGetPowerUsage(h) / 1000.0)
            time.sleep(self.period_s)

    def __exit__(self, *exc):
        self._stop.set()
        if self._nvml is not None:
            self._thread.join()

    def summary(self) -> dict:
        """Median and range of what was sampled."""
        if not self.clocks:
            return {}
        return {"sm_clock_mhz_median": statistics.median(self.clocks), "sm_clock_mhz_min": min(self.clocks),
                "sm_clock_mhz_max": max(self.clocks), "power_w_median": statistics.median(self.watts),
                "samples": len(self.clocks)}


def unique_shapes(chip: str) -> list[tuple[str, str, int, int, int, int]]:
    """(dtype, out_dtype, m, n, k, batch) of every measurement of chip, once each, in file order."""
    seen: dict = {}
    for r in load_measurements():
        if r.chip == chip:
            seen.setdefault((r.dtype, r.out_dtype or r.dtype, r.m, r.n, r.k, r.batch), None)
    return list(seen)


class Timer:
    """Times a zero-argument callable on torch's current device (events on CUDA, the host clock on the CPU)."""

    def __init__(self, torch):
        self.torch, self.cuda = torch, torch.cuda.is_available()

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def loop(self, fn, reps: int) -> float:
        """Seconds per call over reps back-to-back calls."""
        if not self.cuda:
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            return (time.perf_counter() - t0) / reps
        s, e = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(reps):
            fn()
        e.record()
        e.synchronize()
        return s.elapsed_time(e) * 1e-3 / reps

    def one(self, fn, before) -> float:
        """Seconds of one call of fn, timed alone right after before() (which is not timed)."""
        before()
        if not self.cuda:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        s, e = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        return s.elapsed_time(e) * 1e-3


def measure_shape(torch, timer: Timer, sampler: ClockSampler, shape, flush_buf, budget_s: float) -> dict:
    """The three timings of one shape, its clocks, and TFLOPS from each."""
    dtype, out_dtype, m, n, k, batch = shape
    dev = "cuda" if timer.cuda else "cpu"
    tdt = getattr(torch, TORCH_DTYPES[dtype])
    gen = torch.Generator(device=dev).manual_seed(0)
    lead = (batch,) if batch > 1 else ()
    a = torch.randn(*lead, m, k, device=dev, generator=gen, dtype=torch.float32).to(tdt)
    b = torch.randn(*lead, n, k, device=dev, generator=gen, dtype=torch.float32).to(tdt)
    bt = b.transpose(-1, -2)
    note = ""
    if out_dtype == "fp32" and dtype != "fp32":
        try:
            fn = (lambda: torch.bmm(a, bt, out_dtype=torch.float32)) if batch > 1 else (
                lambda: torch.mm(a, bt, out_dtype=torch.float32))
            fn()
        except (TypeError, RuntimeError) as e:  # an older PyTorch: the output stays in the input dtype
            note = f"out_dtype fp32 unsupported here ({str(e).splitlines()[0][:80]}); timed with {dtype} output"
            fn = lambda: a @ bt
    else:
        fn = lambda: a @ bt
    flops = 2.0 * batch * m * n * k
    fn()
    timer.sync()
    first = timer.loop(fn, 1)
    reps = max(3, min(200, int(budget_s / max(first, 1e-6))))
    timer.loop(fn, min(reps, 20))  # warm the clocks and the library's heuristics cache
    with sampler:
        kernel = statistics.median(timer.loop(fn, reps) for _ in range(3))
    flushed = statistics.median(timer.one(fn, lambda: flush_buf.fill_(1.0)) for _ in range(max(3, min(reps, 20))))
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    timer.sync()
    wall = (time.perf_counter() - t0) / reps
    row = {"dtype": dtype, "out_dtype": out_dtype, "m": m, "n": n, "k": k, "batch": batch, "reps": reps,
           "kernel_s": kernel, "flushed_s": flushed, "wall_s": wall,
           "kernel_tflops": flops / kernel / 1e12, "flushed_tflops": flops / flushed / 1e12,
           "wall_tflops": flops / wall / 1e12, **sampler.summary()}
    if note:
        row["note"] = note
    return row


def csv_rows(chip: str, rows: list[dict], source_note: str) -> str:
    """The measurements as lines of measured_gemm.csv (timing kernel; l2 warm and flushed)."""
    from workbench.measured import shape_kind

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    for r in rows:
        if "error" in r or r.get("note"):
            continue
        kind = shape_kind(r["m"], r["n"], r["k"], r["batch"])
        for l2, key in (("warm", "kernel_tflops"), ("flushed", "flushed_tflops")):
            clock = f"; SM clock median {r['sm_clock_mhz_median']:.0f} MHz" if "sm_clock_mhz_median" in r else ""
            w.writerow([chip, r["dtype"], r["out_dtype"], r["m"], r["n"], r["k"], r["batch"], kind,
                        f"{r[key]:.2f}", "cuBLAS (PyTorch)", "kernel",
                        "docs/sources.md V (bench/gpu_gemm_shapes.py)", source_note + clock, l2])
    return out.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chip", default="h100-sxm", help="the chip of measured_gemm.csv whose shapes to time")
    ap.add_argument("--out", help="write every row as JSON here")
    ap.add_argument("--csv", help="write measured_gemm.csv rows here")
    ap.add_argument("--budget", type=float, default=0.25, help="seconds of calls per timed loop")
    ap.add_argument("--smoke", action="store_true", help="on the CPU, shapes scaled down 64x: a test of the script")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError as e:
        print(f"needs PyTorch ({e})", file=sys.stderr)
        return 2
    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA GPU seen by PyTorch; --smoke runs the script on the CPU", file=sys.stderr)
        return 2
    shapes = unique_shapes(args.chip)
    if not shapes:
        chips = ", ".join(sorted({r.chip for r in load_measurements()}))
        print(f"no measurements of chip {args.chip!r} in workbench/measured_gemm.csv; its chips: {chips}",
              file=sys.stderr)
        return 2
    if args.smoke:
        shapes = [(d, o, max(1, m // 64), max(1, n // 64), max(1, k // 64), b) for d, o, m, n, k, b in shapes[:6]]
    timer, sampler = Timer(torch), ClockSampler()
    ident = sampler.identity()
    if timer.cuda:
        props = torch.cuda.get_device_properties(0)
        ident.setdefault("name", props.name)
        l2 = getattr(props, "L2_cache_size", 50 << 20)
    else:
        l2 = 1 << 20
    flush_buf = torch.empty(max(2 * l2, 1 << 20) // 4, dtype=torch.float32, device="cuda" if timer.cuda else "cpu")
    ident.update({"torch": torch.__version__, "cuda": str(torch.version.cuda or ""),
                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    print(json.dumps(ident), flush=True)
    rows = []
    for i, shape in enumerate(shapes, 1):
        try:
            row = measure_shape(torch, timer, sampler, shape, flush_buf, args.budget)
            print(f"[{i}/{len(shapes)}] {shape[0]}->{shape[1]} {shape[5]}x{shape[2]}x{shape[3]}x{shape[4]}: "
                  f"kernel {row['kernel_tflops']:.1f} flushed {row['flushed_tflops']:.1f} wall {row['wall_tflops']:.1f}"
                  f" TFLOP/s, SM {row.get('sm_clock_mhz_median', 0):.0f} MHz "
                  f"({row.get('sm_clock_mhz_min', 0):.0f}-{row.get('sm_clock_mhz_max', 0):.0f})", flush=True)
        except Exception as e:  # one failed shape does not stop the rest
            row = {"shape": list(shape), "error": f"{type(e).__name__}: {e}"[:500]}
            print(f"[{i}/{len(shapes)}] {shape}: {row['error']}", flush=True)
        rows.append(row)
    note = (f"{ident.get('name', '?')} (lent to this project), driver {ident.get('driver', '?')}, PyTorch "
            f"{ident['torch']}, C = A @ B^T, {ident['date']}")
    for path, text in ((args.out, json.dumps({"gpu": ident, "rows": rows}, indent=1)),
                       (args.csv, csv_rows(args.chip, rows, note))):
        if path:
            tmp = Path(path).with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
