"""Backends: how the kernels of one device family become programs and run. The scheduler knows none of it.

A backend is any object with the four methods of `Backend`, made per device string by the factory
registered for its family (the part before ':', e.g. "CL" for "CL:1"). `realize.run_schedule` asks
`get_backend(kernel.device)` for each kernel's program, an output buffer and a launch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .backend_opencl import OpenCLBackend
from .dtypes import DType
from .errors import DeviceError
from .kernel_ir import Kernel, Program


class Backend(Protocol):
    """What running a schedule needs from one device."""

    def program(self, kernel: Kernel) -> Program:
        """The program that computes kernel on this device (choose, render and memoize as it likes)."""
        ...

    def alloc(self, size: int, dtype: DType):
        """An uninitialised buffer of size elements; it must offer `.numpy()` for reading back."""
        ...

    def run(self, program: Program, buffers: list, wait: bool = False) -> float | None:
        """Launch program on buffers (kernel.buffers' order: output first); with wait, block and
        return the device time in seconds."""
        ...

    def synchronize(self) -> None:
        """Return once everything launched so far has finished."""
        ...


def _sim_backend(device: str) -> Backend:
    from .accel.backend_sim import SimBackend  # the accelerator backend imports isa and sim: load it on demand

    return SimBackend(device)


def _gpu(device: str) -> Backend:
    from .backend_gpu import GPUBackend  # loads the CUDA or HIP bindings only when such a device is used

    return GPUBackend(device)


_FACTORIES: dict[str, Callable[[str], Backend]] = {
    "CL": OpenCLBackend,
    "SIM": _sim_backend,
    "CUDA": _gpu,
    "HIP": _gpu,
}
_BACKENDS: dict[str, Backend] = {}


def register_backend(family: str, factory: Callable[[str], Backend]) -> None:
    """Make devices named `family` or `family:n` run through factory(device) (replaces any earlier one)."""
    _FACTORIES[family] = factory
    for name in [d for d in _BACKENDS if d.split(":")[0] == family]:
        del _BACKENDS[name]


def get_backend(device: str) -> Backend:
    """The backend of a canonical device string, created on first use."""
    be = _BACKENDS.get(device)
    if be is None:
        factory = _FACTORIES.get(device.split(":")[0])
        if factory is None:
            raise DeviceError(f"no backend runs kernels on device {device!r}; backends: {', '.join(_FACTORIES)}")
        be = _BACKENDS[device] = factory(device)
    return be


def program_for(kernel: Kernel) -> Program:
    """The program kernel's device would run for it (e.g. `program_for(t.schedule()[0]).src`)."""
    return get_backend(kernel.device).program(kernel)
