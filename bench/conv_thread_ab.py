"""conv2d at one thread: this tree's kernel against PyTorch's `conv2d` alone (oneDNN), and against other
checkouts of the compiler, in separate processes alternated round by round. The A/B behind
docs/benchmarks.md's "conv2d at one thread: where the time goes" section.

    python -m bench.conv_thread_ab                          # this tree vs torch, 3 rounds
    python -m bench.conv_thread_ab --trees . /tmp/other --rounds 4 --threads 2

Each process warms up 3 calls, then times `--calls` calls by wall clock and by its own process CPU time (a
shared machine moves wall time 2-4x; CPU time per call moves much less). The per-kernel split is
`WB_DEBUG=1` on a plain script (the weight transpose and the convolution kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, os, sys, time
import numpy as np
col, calls, threads, shape = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
n, c, hw, o = shape
if col == "torch":
    import torch
    torch.set_num_threads(threads)
    x = torch.randn(n, c, hw, hw)
    w = torch.randn(o, c, 3, 3)
    torch.inference_mode().__enter__()
    run = lambda: torch.nn.functional.conv2d(x, w, padding=1)
else:
    sys.path.insert(0, col)
    from compiler import Tensor
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((n, c, hw, hw)).astype(np.float32), device="CL").realize()
    w = Tensor(rng.standard_normal((o, c, 3, 3)).astype(np.float32), device="CL").realize()
    run = lambda: x.conv2d(w, padding=1).realize()
for _ in range(3):
    run()
wall, cpu = [], []
for _ in range(calls):
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps([min(wall), float(np.median(wall)), min(cpu), float(np.median(cpu))]))
"""


def run_column(col: str, calls: int, threads: int, shape: tuple) -> list | str:
    """[wall min, wall median, cpu min, cpu median] in seconds for one column, or its error's tail."""
    env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(threads), POCL_CPU_MAX_CU_COUNT=str(threads),
               OMP_NUM_THREADS=str(threads))
    col = col if col == "torch" else os.path.abspath(col)
    out = subprocess.run([sys.executable, "-c", _CHILD, col, str(calls), str(threads), json.dumps(shape)],
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else out.stderr[-300:]


def main(argv: list[str] | None = None) -> int:
    """Alternate the columns for --rounds rounds and print one line per round."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trees", nargs="+", default=["."], help="compiler checkouts to time (default: this one)")
    ap.add_argument("--no-torch", action="store_true", help="leave out PyTorch's column")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shape", default="8,64,56,64", help="N,C,H=W,Cout of the 3x3 pad-1 conv")
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    if len(shape) != 4:
        print(f"--shape {args.shape!r}: give N,C,H,Cout, e.g. 8,64,56,64", file=sys.stderr)
        return 2
    cols = [os.path.abspath(t) for t in args.trees] + ([] if args.no_torch else ["torch"])
    for _ in range(args.rounds):
        parts = []
        for col in cols:
            r = run_column(col, args.calls, args.threads, shape)
            name = "torch" if col == "torch" else os.path.basename(col.rstrip("/"))
            parts.append(f"{name}: error {r}" if isinstance(r, str) else
                         f"{name}: wall min {r[0] * 1e3:.1f} med {r[1] * 1e3:.1f} cpu min {r[2] * 1e3:.1f}"
                         f" med {r[3] * 1e3:.1f} ms")
        print(f"load {os.getloadavg()[0]:.2f}  " + "  ".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
