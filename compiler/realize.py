"""Runs a schedule: compiles each kernel's program, allocates outputs, launches, and reports with WB_DEBUG."""

from __future__ import annotations

from .device import RefBuffer, alloc, cl_index
from .interpreter import evaluate
from .lazy import Node
from .runtime_opencl import debug_level, get_cl_device
from .schedule import Kernel, create_schedule


def _mark_realized(n: Node, buf) -> None:
    n.buffer = buf
    n.src = ()  # cut the graph so the inputs' memory can be freed


def realize(roots: list[Node]) -> None:
    """Compute every unrealized root on its device."""
    roots = [r for r in roots if not r.realized]
    if not roots:
        return
    if roots[0].device == "REF":
        for r in roots:
            _mark_realized(r, RefBuffer(evaluate(r), r.dtype))
        return
    if roots[0].device.startswith("SIM"):
        from .accel.runtime import run_schedule_sim

        run_schedule_sim(create_schedule(roots), _mark_realized)
        return
    run_schedule(create_schedule(roots))


def run_schedule(kernels: list[Kernel]) -> None:
    """Execute kernels in order on their CL devices."""
    dbg = debug_level()
    if dbg >= 2:
        print(f"schedule: {len(kernels)} kernels")
        for i, k in enumerate(kernels):
            print(f"  {i:3d} {k.name:40s} in={[n.shape for n in k.inputs]} flops={k.flops} bytes={k.bytes}")
    for k in kernels:
        if k.out.size == 0:  # nothing to compute; an empty buffer stands for the result
            _mark_realized(k.out, alloc(0, k.out.dtype, k.device))
            continue
        prg = k.program()
        dev = get_cl_device(cl_index(k.device))
        if dbg >= 4:
            print(f"IR {k.name}: full_shape={k.full_shape} reduce_axes={k.reduce_axes} opts={prg.opts}")
        if dbg >= 3:
            print(prg.src)
        clk = dev.compile(prg.src, prg.name)
        out = alloc(k.out.size, k.out.dtype, k.device)
        bufs = [out] + [n.buffer for n in prg.buffers[1:]]
        t = dev.launch(clk, prg.global_size, prg.local_size, bufs, wait=dbg >= 1)
        if dbg >= 1:
            print(
                f"{k.name:40s} {t * 1e3:9.3f} ms {k.flops / t * 1e-9:9.2f} GFLOP/s "
                f"{k.bytes / t * 1e-9:9.2f} GB/s"
                f"  gsize={prg.global_size}"
            )
        _mark_realized(k.out, out)
    for dev_name in {k.device for k in kernels}:
        get_cl_device(cl_index(dev_name)).synchronize()  # realize() returns with the results computed
