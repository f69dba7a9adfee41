"""The OpenCL backend (devices CL, CL:1, ...): programs from the optimizer, launches through pyopencl."""

from __future__ import annotations

from .device import cl_index
from .kernel_ir import Kernel, Program
from .optimizer import cached_program
from .runtime_opencl import get_cl_device


class OpenCLBackend:
    """One OpenCL device as a `backend.Backend`."""

    def __init__(self, device: str):
        self.device = device
        self.dev = get_cl_device(cl_index(device))

    def program(self, kernel: Kernel) -> Program:
        """The optimizer's program for kernel (memoized by the kernel's structure)."""
        return cached_program(kernel)

    def prepare(self, programs: list[Program]) -> None:
        """Build every program not built yet, several at once (cold start: each build takes ~1 s)."""
        self.dev.compile_many([(p.src, p.name) for p in programs])

    def alloc(self, size: int, dtype):
        """An uninitialised device buffer."""
        return self.dev.alloc(size, dtype)

    def run(self, program: Program, buffers: list, wait: bool = False) -> float | None:
        """Compile (cached) and enqueue program; with wait, block and return its device time."""
        clk = self.dev.compile(program.src, program.name)
        return self.dev.launch(clk, program.global_size, program.local_size, buffers, wait=wait)

    def synchronize(self) -> None:
        """Wait for the device's queue to drain."""
        self.dev.synchronize()
