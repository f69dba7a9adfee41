"""Cold-cache cost per OpenCL kernel: built one program per kernel (what a lone `compile` does) vs a batch of
kernels per program (`CLDevice.compile_many`), first launch included (PoCL compiles each kernel's work-group
function then). The kernels are those of a deterministic spread of ONNX backend-suite cases.

    python -m bench.cl_build_bench [--cases 40]

Each mode runs in a fresh process with empty WB_CACHE_DIR and POCL_CACHE_DIR; CPU seconds (the process, its
threads and children) are reported next to wall seconds, since a shared machine's load moves the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time


def _cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def collect(n_cases: int, out: str) -> None:
    """Record (source, name, global size, local size, buffer bytes) of every kernel the cases launch."""
    from compiler import runtime_opencl as rc
    from compiler.cl_batch import split_source
    from compiler.onnx import suite

    recs: dict[str, tuple] = {}
    launch = rc.CLDevice.launch

    def spy(self, kernel, gsize, lsize, bufs, wait=False):
        src = next(s for s, k in self.programs.items() if k is kernel)
        parts = split_source(src)  # the name in its own source (a batch may have renamed it)
        recs.setdefault(src, (parts[2] if parts else kernel.function_name, tuple(gsize), lsize and tuple(lsize),
                              [b.buf.size for b in bufs]))
        return launch(self, kernel, gsize, lsize, bufs, wait)

    rc.CLDevice.launch = spy
    for c in suite.subset(suite.collect(), n_cases):
        suite.run_case(c, "CL")
    with open(out, "wb") as f:
        pickle.dump([(s, *v) for s, v in recs.items()], f)


def measure(mode: str, path: str) -> dict:
    """Build the recorded kernels (mode 'single' or 'batched') and launch each once; times in seconds."""
    import pyopencl as cl

    from compiler.runtime_opencl import get_cl_device

    with open(path, "rb") as f:
        recs = pickle.load(f)
    dev = get_cl_device(0)
    c0, w0 = _cpu(), time.perf_counter()
    if mode == "single":
        for src, name, *_ in recs:
            dev.compile(src, name)
    else:
        dev.compile_many([(src, name) for src, name, *_ in recs])
    c1, w1 = _cpu(), time.perf_counter()
    for src, _, gsize, lsize, sizes in recs:
        bufs = [cl.Buffer(dev.ctx, cl.mem_flags.READ_WRITE, s) for s in sizes]
        kernel = dev.programs[src]
        kernel.set_args(*bufs)
        cl.enqueue_nd_range_kernel(dev.queue, kernel, gsize, lsize)
        dev.queue.finish()
    c2, w2 = _cpu(), time.perf_counter()
    return {"mode": mode, "kernels": len(recs), "build_cpu_s": c1 - c0, "build_wall_s": w1 - w0,
            "first_launch_cpu_s": c2 - c1, "first_launch_wall_s": w2 - w1}


def _fresh_env() -> dict:
    env = dict(os.environ, WB_CACHE_DIR=tempfile.mkdtemp(), POCL_CACHE_DIR=tempfile.mkdtemp())
    return env


def main(argv: list[str] | None = None) -> int:
    """Collect the kernels, then time both modes in fresh processes and print per-kernel costs."""
    p = argparse.ArgumentParser(prog="python -m bench.cl_build_bench")
    p.add_argument("--cases", type=int, default=40)
    p.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        mode, path = a.worker
        if mode == "collect":
            collect(a.cases, path)
        else:
            print(json.dumps(measure(mode, path)))
        return 0
    path = os.path.join(tempfile.mkdtemp(), "kernels.pkl")
    run = [sys.executable, "-m", "bench.cl_build_bench", "--cases", str(a.cases), "--worker"]
    subprocess.run([*run, "collect", path], env=_fresh_env(), check=True, capture_output=True)
    for mode in ("single", "batched"):
        out = subprocess.run([*run, mode, path], env=_fresh_env(), check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        n = r["kernels"]
        print(f"{mode:8s} {n} kernels: build {r['build_cpu_s'] / n * 1e3:.0f} ms CPU/kernel"
              f" ({r['build_wall_s']:.1f} s wall), first launch {r['first_launch_cpu_s'] / n * 1e3:.0f} ms"
              f" CPU/kernel ({r['first_launch_wall_s']:.1f} s wall); total"
              f" {(r['build_cpu_s'] + r['first_launch_cpu_s']) / n * 1e3:.0f} ms CPU/kernel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
