"""Benchmark ONNX import: the PP-OCR mobile text-direction classifier (a real pretrained model shipped in the
`rapidocr_onnxruntime` wheel, kept as tests/fixtures/onnx/) on CL vs onnxruntime on the CPU, in the same run.

    python -m bench.onnx_bench [--batch 8] [--repeats 20] [--threads N] [--plain] [--breakdown] [--json out.json]

Printed: the load average; load time; the first call on CL (graph build + schedule + kernel compiles or
program-cache hits: run it twice, the second run shows the warm-cache first call); warm calls on CL (`run()`,
which replays the recorded kernels from its fourth call on) and on onnxruntime, interleaved call by call after
warm-up so both see the same load, as medians with their min..max range; their ratio (target: within 3x) and
the max |difference| of the outputs. `--plain` also times `run()` without replay (graph built and scheduled
every call) in the same interleaved loop. `--threads N` runs both on N threads: onnxruntime's
intra_op_num_threads and PoCL's compute units (POCL_MAX_PTHREAD_COUNT for PoCL 3's pthread device,
POCL_CPU_MAX_CU_COUNT for PoCL 4 and later; the device's reported compute units are printed), which the
other jobs on a shared machine disturb less than two threads each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "tests" / "fixtures" / "onnx" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"


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


def _set_threads(n: int) -> None:
    """PoCL's CPU device on n compute units; must run before the OpenCL platform is first touched."""
    os.environ["POCL_MAX_PTHREAD_COUNT"] = str(n)  # PoCL <= 3 pthread device
    os.environ["POCL_CPU_MAX_CU_COUNT"] = str(n)  # PoCL >= 4 cpu device


def _interleaved(fns: dict, repeats: int, block: int = 5) -> dict[str, list[float]]:
    """Seconds per call of each fn: blocks of `block` timed calls, the fns in turn, until each has `repeats`
    (each sees the same load). Every block starts with one untimed call, because a library's thread pool
    keeps spinning for a while after its last call (onnxruntime's intra-op threads, OpenBLAS) and would
    otherwise slow the first calls of the library timed next."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    while any(len(v) < repeats for v in out.values()):
        for k, fn in fns.items():
            fn()
            for _ in range(min(block, repeats - len(out[k]))):
                t0 = time.perf_counter()
                fn()
                out[k].append(time.perf_counter() - t0)
    return out


def _summary(ts: list[float]) -> dict:
    return {"median_s": statistics.median(ts), "range_s": [min(ts), max(ts)]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (or write --json) the figures."""
    p = argparse.ArgumentParser(prog="python -m bench.onnx_bench")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--device", default="CL")
    p.add_argument("--threads", type=int, default=0, help="threads for both (0: each library's default)")
    p.add_argument("--plain", action="store_true", help="also time run() without schedule replay")
    p.add_argument("--json", metavar="OUT.json")
    p.add_argument("--breakdown", action="store_true", help="also split an unreplayed warm call into graph"
                   " building, scheduling, launches and device time")
    a = p.parse_args(argv)
    if a.threads:
        _set_threads(a.threads)
    import onnxruntime as ort

    from compiler.onnx import load_onnx

    load_avg = os.getloadavg()
    x = np.random.default_rng(0).uniform(-1, 1, (a.batch, 3, 48, 192)).astype(np.float32)
    t0 = time.perf_counter()
    model = load_onnx(MODEL, device=a.device)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = model.run({"x": x})
    first_s = time.perf_counter() - t0

    so = ort.SessionOptions()
    if a.threads:
        so.intra_op_num_threads, so.inter_op_num_threads = a.threads, 1
    sess = ort.InferenceSession(str(MODEL), so, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"x": x})[0]
    fns = {"ours": lambda: model.run({"x": x}), "onnxruntime": lambda: sess.run(None, {"x": x})}
    if a.plain:
        plain = load_onnx(MODEL, device=a.device, replay=False)
        fns["ours_plain"] = lambda: plain.run({"x": x})
    for fn in fns.values():  # warm-up: compiles, and the three calls before run() replays
        for _ in range(4):
            fn()
    ts = _interleaved(fns, a.repeats)

    got = next(iter(ours.values()))
    res = {
        "model": MODEL.name, "batch": a.batch, "device": a.device, "threads": a.threads or "default",
        "compute_units": _compute_units(a.device), "load_average": list(load_avg), "load_s": load_s,
        "first_call_s": first_s, "replays": model._replayer.replays,
        **{k: _summary(v) for k, v in ts.items()},
        "max_abs_diff": float(np.max(np.abs(got - ref))),
    }
    res["ratio"] = res["ours"]["median_s"] / res["onnxruntime"]["median_s"]
    fmt = lambda k: (f"median {res[k]['median_s'] * 1e3:.2f} ms ({res[k]['range_s'][0] * 1e3:.2f}.."
                     f"{res[k]['range_s'][1] * 1e3:.2f})")
    print(f"{MODEL.name} batch {a.batch}, threads {res['threads']} (PoCL compute units {res['compute_units']}),"
          f" load average {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}")
    print(f"  load {load_s * 1e3:.0f} ms, first call on {a.device} {first_s:.2f} s")
    print(f"  {a.device} (replayed): {fmt('ours')}  onnxruntime CPU: {fmt('onnxruntime')}  ratio {res['ratio']:.2f}x"
          f"  max |diff| {res['max_abs_diff']:.2g}")
    if a.plain:
        print(f"  {a.device} without replay: {fmt('ours_plain')}"
              f"  ratio {res['ours_plain']['median_s'] / res['onnxruntime']['median_s']:.2f}x")
    if a.breakdown:
        res["breakdown"] = b = breakdown(model, x, a.repeats)
        print(f"  unreplayed warm call on {a.device} ({b['kernels']} kernels): graph {b['graph_s'] * 1e3:.1f} ms,"
              f" schedule {b['schedule_s'] * 1e3:.1f} ms, launch+wait {b['launch_and_wait_s'] * 1e3:.1f} ms;"
              f" kernels alone {b['kernels_s'] * 1e3:.1f} ms (medians)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return 0


def _compute_units(device: str) -> int | None:
    """The OpenCL device's compute units (None for other devices)."""
    if not device.upper().startswith("CL"):
        return None
    from compiler.device import cl_index
    from compiler.runtime_opencl import get_cl_device

    return int(get_cl_device(cl_index(device)).device.max_compute_units)


if __name__ == "__main__":
    sys.exit(main())
