"""Benchmark ONNX import: the PP-OCR mobile text-direction classifier (a real pretrained model shipped in the
`rapidocr_onnxruntime` wheel, kept as tests/fixtures/onnx/) on CL vs onnxruntime on the CPU, in the same run.

    python -m bench.onnx_bench [--batch 8] [--repeats 10] [--breakdown] [--json out.json]

Printed: load time; the first call on CL (graph build + schedule + kernel compiles or program-cache hits: run
it twice, the second run shows the warm-cache first call); the median warm call on CL and on onnxruntime
(after one warm-up call each), their ratio (target: within 3x), and the max |difference| of the outputs.
Timings are noisy on a shared machine: the median of --repeats calls is reported with its min..max range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "tests" / "fixtures" / "onnx" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"


def _times(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def breakdown(model, x: np.ndarray, repeats: int) -> dict:
    """Where a warm call's time goes (medians over repeats, seconds): building the lazy graph node by node
    (Python), scheduling it into kernels (Python), launching them and waiting (dispatch + device), and the
    device time of the kernels alone (profiling events, one kernel at a time: WB_DEBUG=1)."""
    import contextlib
    import io
    import os

    from compiler.realize import run_schedule
    from compiler.schedule import create_schedule
    from compiler.tensor import Tensor

    parts: dict[str, list[float]] = {"graph_s": [], "schedule_s": [], "launch_and_wait_s": [], "kernels_s": []}
    n_kernels = 0
    for i in range(2 * repeats):
        t0 = time.perf_counter()
        outs = [o for o in model(x=x) if isinstance(o, Tensor)]
        t1 = time.perf_counter()
        kernels = create_schedule([o.node for o in outs])
        t2 = time.perf_counter()
        if i < repeats:
            run_schedule(kernels)
            parts["graph_s"].append(t1 - t0)
            parts["schedule_s"].append(t2 - t1)
            parts["launch_and_wait_s"].append(time.perf_counter() - t2)
            n_kernels = len(kernels)
            continue
        old = os.environ.get("WB_DEBUG")
        os.environ["WB_DEBUG"] = "1"  # each kernel waited for and timed by its profiling event
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                run_schedule(kernels)
        finally:
            os.environ.pop("WB_DEBUG") if old is None else os.environ.__setitem__("WB_DEBUG", old)
        parts["kernels_s"].append(sum(float(line.split()[1]) for line in buf.getvalue().splitlines()
                                      if line.split()[2:3] == ["ms"]) * 1e-3)
    out = {k: statistics.median(v) for k, v in parts.items()}
    out["kernels"] = n_kernels
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or write --json) the figures."""
    import onnxruntime as ort

    from compiler.onnx import load_onnx

    p = argparse.ArgumentParser(prog="python -m bench.onnx_bench")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="CL")
    p.add_argument("--json", metavar="OUT.json")
    p.add_argument("--breakdown", action="store_true", help="also split a warm call into graph building,"
                   " scheduling, launches and device time")
    a = p.parse_args(argv)
    x = np.random.default_rng(0).uniform(-1, 1, (a.batch, 3, 48, 192)).astype(np.float32)

    t0 = time.perf_counter()
    model = load_onnx(MODEL, device=a.device)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = model.run({"x": x})
    first_s = time.perf_counter() - t0
    ours_t = _times(lambda: model.run({"x": x}), a.repeats)

    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"x": x})[0]
    ort_t = _times(lambda: sess.run(None, {"x": x}), a.repeats)

    got = next(iter(ours.values()))
    res = {
        "model": MODEL.name, "batch": a.batch, "device": a.device, "load_s": load_s, "first_call_s": first_s,
        "ours_median_s": statistics.median(ours_t), "ours_range_s": [min(ours_t), max(ours_t)],
        "onnxruntime_median_s": statistics.median(ort_t), "onnxruntime_range_s": [min(ort_t), max(ort_t)],
        "max_abs_diff": float(np.max(np.abs(got - ref))),
    }
    res["ratio"] = res["ours_median_s"] / res["onnxruntime_median_s"]
    print(f"{MODEL.name} batch {a.batch}: load {load_s * 1e3:.0f} ms, first call on {a.device} {first_s:.2f} s")
    print(f"  {a.device}: median {res['ours_median_s'] * 1e3:.2f} ms ({ours_t and min(ours_t) * 1e3:.2f}.."
          f"{max(ours_t) * 1e3:.2f})  onnxruntime CPU: median {res['onnxruntime_median_s'] * 1e3:.2f} ms"
          f" ({min(ort_t) * 1e3:.2f}..{max(ort_t) * 1e3:.2f})  ratio {res['ratio']:.2f}x"
          f"  max |diff| {res['max_abs_diff']:.2g}")
    if a.breakdown:
        res["breakdown"] = b = breakdown(model, x, a.repeats)
        print(f"  warm call on {a.device} ({b['kernels']} kernels): graph {b['graph_s'] * 1e3:.1f} ms, schedule"
              f" {b['schedule_s'] * 1e3:.1f} ms, launch+wait {b['launch_and_wait_s'] * 1e3:.1f} ms; kernels alone"
              f" {b['kernels_s'] * 1e3:.1f} ms (medians)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
