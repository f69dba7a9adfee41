"""Eager calls of one workload under several host-side modes, blocks of calls alternating in one process so
every mode sees the same load: which of launching ahead and packed composite rebuilds serves a device.

    python -m bench.eager_modes                                   # GPT-2 block, default device, 8 rounds
    python -m bench.eager_modes --device CUDA --rounds 10 --modes ahead,packed,unpacked
    python -m bench.eager_modes --json out.json

Modes (each a setting of the switches in docs/compiler.md):
- ahead: kernels launched while the graph is built (WB_LAUNCH_AHEAD=1); launching ahead reads every node, so
  composites are rebuilt unpacked;
- packed: nothing launched ahead (WB_LAUNCH_AHEAD=0); composites rebuilt packed (their output node alone);
- unpacked: nothing launched ahead, composites rebuilt node by node (WB_COMPOSITE_MEMO=unpacked).
The default on a device is `ahead` where kernels leave a host core free (a GPU) and `packed` elsewhere.
Per mode: the median over rounds of each round's median wall per call, the main thread's CPU per call, and
each round's ratio to the first mode (> 1: the first mode is slower).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

MODES = {
    "ahead": {"WB_LAUNCH_AHEAD": "1"},
    "packed": {"WB_LAUNCH_AHEAD": "0"},
    "noahead": {"WB_LAUNCH_AHEAD": "0"},  # bench.pocl_threads' name for the same setting
    "unpacked": {"WB_LAUNCH_AHEAD": "0", "WB_COMPOSITE_MEMO": "unpacked"},
}
SWITCHES = ("WB_LAUNCH_AHEAD", "WB_COMPOSITE_MEMO")


def alternate(workload: str, device: str, modes: list[str], rounds: int, calls: int = 10) -> dict:
    """{mode: {"wall": per-round median wall per call (s), "cpu": main-thread CPU per call (s)}}."""
    from bench import compiler_worker as w

    p = w.sizes(workload, False)
    fw = w.Ours(device)
    f = fw.fn(workload, p)
    args = [fw.to_device(a) for a in w.make_inputs(workload, p)]
    saved = {k: os.environ.get(k) for k in SWITCHES}
    out = {m: {"wall": [], "cpu": []} for m in modes}
    try:
        for _ in range(rounds):
            for mode in modes:
                for k in SWITCHES:
                    os.environ.pop(k, None)
                os.environ.update(MODES[mode])
                for _ in range(3):  # let the mode take effect (launching ahead arms after a call)
                    fw.finish(f(*args))
                ts, c0 = [], time.thread_time()
                for _ in range(calls):
                    t = time.perf_counter()
                    fw.finish(f(*args))
                    ts.append(time.perf_counter() - t)
                out[mode]["cpu"].append((time.thread_time() - c0) / calls)
                out[mode]["wall"].append(statistics.median(ts))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def summary(res: dict) -> str:
    """One line: each mode's median wall and main-thread CPU per call, and its per-round ratio to the first."""
    ms = lambda v: f"{statistics.median(v) * 1e3:.3f}"  # noqa: E731
    first = next(iter(res))
    parts = []
    for mode, r in res.items():
        part = f"{mode} {ms(r['wall'])} ms (main thread CPU {ms(r['cpu'])})"
        if mode != first:
            ratios = sorted(a / b for a, b in zip(res[first]["wall"], r["wall"], strict=True))
            part += f", {first}/{mode} {statistics.median(ratios):.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f})"
        parts.append(part)
    return " | ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", default="gpt2_block")
    ap.add_argument("--device", default=None, help="a device name (default: WB_DEVICE, else the first GPU, else CL)")
    ap.add_argument("--modes", default="ahead,packed,unpacked", help=f"comma-separated: {', '.join(MODES)}")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--calls", type=int, default=10, help="calls per block (3 more before each, untimed)")
    ap.add_argument("--json", help="also write the per-round figures here")
    a = ap.parse_args(argv)
    from bench.compiler_worker import WORKLOADS

    if a.workload not in WORKLOADS:
        ap.error(f"--workload: unknown workload {a.workload!r}; choose from {', '.join(WORKLOADS)}")
    modes = a.modes.split(",")
    if not modes or any(m not in MODES for m in modes):
        ap.error(f"--modes: {a.modes!r}; choose from {', '.join(MODES)}")
    if a.rounds < 1 or a.calls < 1:
        ap.error("--rounds and --calls must be at least 1")
    from compiler.device import canonicalize, default_device
    from compiler.errors import DeviceError

    try:
        device = canonicalize(a.device) if a.device else default_device()
    except DeviceError as e:
        ap.error(f"--device: {e}")
    res = alternate(a.workload, device, modes, a.rounds, a.calls)
    print(f"{a.workload} on {device}, {a.rounds} rounds of {a.calls} calls: {summary(res)}")
    if a.json:
        from workbench.outputs import staged_file

        with staged_file(a.json) as tmp:
            tmp.write_text(json.dumps({"workload": a.workload, "device": device, "modes": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
