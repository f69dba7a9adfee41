"""The CUDA and HIP backends (devices CUDA, CUDA:1, HIP, HIP:1, ...): programs from the optimizer in the device
family's dialect (tensor-core and tiled GEMMs included), launched by that family's runtime: the driver API
(runtime_cuda.py) or hip-python (runtime_hip.py; never run on AMD hardware)."""

from __future__ import annotations

from .device import gpu_index
from .kernel_ir import Kernel, Program
from .optimizer import cached_program


def _runtime_device(device: str):
    """The runtime's handle of a CUDA or HIP device string (imported on demand: each runtime needs its bindings)."""
    if device.split(":")[0] == "CUDA":
        from .runtime_cuda import get_cuda_device as get
    else:
        from .runtime_hip import get_hip_device as get
    return get(gpu_index(device))


class GPUBackend:
    """One CUDA or HIP GPU as a `backend.Backend`."""

    def __init__(self, device: str):
        self.device = device
        self.dev = _runtime_device(device)

    def program(self, kernel: Kernel) -> Program:
        """The optimizer's program for kernel (memoized by the kernel's structure)."""
        return cached_program(kernel)

    def alloc(self, size: int, dtype):
        """An uninitialised device buffer."""
        return self.dev.alloc(size, dtype)

    def run(self, program: Program, buffers: list, wait: bool = False) -> float | None:
        """Compile (cached) and launch program; with wait, block and return its device time."""
        fn = self.dev.compile(program.src, program.name, program.shared_bytes)
        return self.dev.launch(fn, program.global_size, program.local_size, buffers, wait=wait, name=program.name,
                               shared_bytes=program.shared_bytes)

    def synchronize(self) -> None:
        """Wait for the device's stream to drain."""
        self.dev.synchronize()
