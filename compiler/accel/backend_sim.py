"""The SIM backend (devices SIM, SIM:<design>): kernels lowered to isa programs and run on the simulator.

It plugs into `compiler.backend` like the OpenCL backend. `program(kernel)` keeps a structural copy of
the kernel (its inputs as placeholder leaves; no graph nodes of the caller) and says how it will map;
`run(program, buffers)` binds the buffers to the placeholders and lowers and simulates: the exact isa
programs depend on the operands (a view chain's broadcast axes, whether an int32 activation holds int8
values), so they are generated at launch, like a JIT, and recorded in the device's current run
(`runtime.sim_run`). Buffers are host numpy arrays (`RefBuffer`): the simulated DRAM image is built
per program.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..device import RefBuffer
from ..kernel_ir import Kernel, Program
from ..lazy import Node
from ..ops import Ops
from . import runtime
from .kernel_lowering import run_kernel
from .sim_device import design_of

__all__ = ["SimBackend", "SimProgram"]


@dataclass
class SimProgram(Program):
    """A kernel prepared for the SIM device: its structure over placeholder inputs."""

    kernel: Kernel | None = None


def _clone(kernel: Kernel) -> Kernel:
    """The kernel over fresh nodes, its inputs replaced by unrealized LOAD placeholders (in buffers order)."""
    inputs = kernel.buffers[1:]
    new: dict[int, Node] = {}
    for i in inputs:
        new[i.id] = Node(Ops.LOAD, (), None, i.shape, i.dtype, i.device)
    stack = [(kernel.out, False)]
    while stack:
        n, ready = stack.pop()
        if n.id in new:
            continue
        if not ready:
            stack.append((n, True))
            stack.extend((s, False) for s in n.src if s.id not in new)
            continue
        new[n.id] = Node(n.op, tuple(new[s.id] for s in n.src), n.arg, n.shape, n.dtype, n.device)
    red = new[kernel.reduce.id] if kernel.reduce is not None else None
    return Kernel(new[kernel.out.id], [new[i.id] for i in inputs], red, kernel.name, kernel.flops, kernel.bytes,
                  kernel.device)


class SimBackend:
    """One simulated design as a `compiler.backend.Backend`."""

    def __init__(self, device: str):
        self.device = device
        self.design = design_of(device)
        self._programs: dict[tuple, SimProgram] = {}

    def program(self, kernel: Kernel) -> SimProgram:
        """The kernel's structure, memoized by its structure key."""
        key = kernel.structure_key()
        prg = self._programs.get(key)
        if prg is None:
            src = (f"// {kernel.name}: lowered at launch to isa programs for {self.design.name} "
                   "(matrix unit for sum-of-products, vector unit for elementwise/reduce, else host)")
            prg = self._programs[key] = SimProgram(src, kernel.name, (), None, kernel=_clone(kernel))
        return prg

    def alloc(self, size: int, dtype) -> RefBuffer:
        """A host buffer (zeros) of size elements."""
        return RefBuffer(np.zeros(size, dtype=dtype.np), dtype)

    def run(self, program: SimProgram, buffers: list, wait: bool = False) -> float:
        """Lower and simulate the kernel on buffers (output first); returns the simulated seconds.

        In graph mode the kernel's program waits to be simulated with the rest of its run unless `wait`."""
        k = program.kernel
        for ph, buf in zip(k.inputs, buffers[1:], strict=True):
            ph.buffer = buf
        try:
            t0 = time.perf_counter()
            value, rec, events = run_kernel(k, self.design, trace=runtime.tracing(),
                                            collector=runtime.collector(self.device))
            wall = time.perf_counter() - t0
        finally:
            for ph in k.inputs:
                ph.buffer = None  # hold no caller memory between launches
        out = buffers[0]
        out.data[:] = np.asarray(value, dtype=out.dtype.np).reshape(-1)
        runtime.record(self.device, rec, events, wall, out_buffer=out)
        if wait:  # the caller wants this kernel's time now: simulate the pending program (graph mode) up to here
            runtime.flush(self.device, "a launch that waits")
        # simulated seconds; a host kernel, or a kernel whose program is still pending, reports its host wall time
        return rec.cycles / self.design.chip.clock_hz if rec.cycles else wall

    def synchronize(self) -> None:
        """Runs are synchronous."""
