"""The CUDA backend (devices CUDA, CUDA:1, ...): programs from the optimizer in the CUDA dialect (tensor-core
and tiled GEMMs included), launches through the driver API (runtime_cuda.py)."""

from __future__ import annotations

from .device import gpu_index
from .kernel_ir import Kernel, Program
from .optimizer import cached_program
from .runtime_cuda import get_cuda_device


class CUDABackend:
    """One CUDA GPU as a `backend.Backend`."""

    def __init__(self, device: str):
        self.device = device
        self.dev = get_cuda_device(gpu_index(device))

    def program(self, kernel: Kernel) -> Program:
        """The optimizer's program for kernel (memoized by the kernel's structure)."""
        return cached_program(kernel)

    def alloc(self, size: int, dtype):
        """An uninitialised device buffer."""
        return self.dev.alloc(size, dtype)

    def run(self, program: Program, buffers: list, wait: bool = False) -> float | None:
        """Compile (cached) and launch program; with wait, block and return its device time."""
        fn = self.dev.compile(program.src, program.name)
        return self.dev.launch(fn, program.global_size, program.local_size, buffers, wait=wait, name=program.name)

    def synchronize(self) -> None:
        """Wait for the device's stream to drain."""
        self.dev.synchronize()
