"""`workbench demo`: the main job on embedded defaults, end to end, each stage labelled honestly."""
from __future__ import annotations

import argparse
import time

import numpy as np


def _opencl_smoke() -> str:
    import pyopencl as cl

    from compiler.opencl_devices import opencl_devices

    devices = opencl_devices()
    if not devices:
        raise RuntimeError("no OpenCL device; run `workbench doctor`")
    ctx = cl.Context([devices[0]])
    queue = cl.CommandQueue(ctx)
    a = np.arange(1 << 16, dtype=np.float32)
    mf = cl.mem_flags
    buf_a = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=a)
    buf_o = cl.Buffer(ctx, mf.WRITE_ONLY, a.nbytes)
    prg = cl.Program(ctx, "__kernel void k(__global const float* a, __global float* o)"
                          "{ int i = get_global_id(0); o[i] = a[i] * 2.0f + 1.0f; }").build()
    t0 = time.perf_counter()
    prg.k(queue, a.shape, None, buf_a, buf_o)
    out = np.empty_like(a)
    cl.enqueue_copy(queue, out, buf_o)
    dt = time.perf_counter() - t0
    ok = np.array_equal(out, a * 2 + 1)
    return f"{devices[0].name.strip()}: 64K-element kernel {'matches numpy' if ok else 'DIFFERS from numpy'} ({dt * 1e3:.1f} ms)"


def demo(args: argparse.Namespace) -> int:
    """Run every stage that exists and print its result."""
    print("Petaflop Workbench demo")
    print(f"  OpenCL toolchain check (measured): {_opencl_smoke()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `demo` to the CLI."""
    p = sub.add_parser("demo", help="run the main job on embedded defaults")
    p.set_defaults(func=demo)
