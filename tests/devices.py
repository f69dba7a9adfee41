"""The devices the compiler's value tests run on: REF (the oracle), then every compute device found here.

On a CPU machine that is CL (PoCL); on a GPU machine CUDA joins, so the same numerics and differential
tests check the CUDA renderer's values where a GPU is lent."""

from __future__ import annotations

from compiler import Device

_FOUND = Device.available()
COMPUTE_DEVICES = [d for d in ("CL", "CUDA") if d in _FOUND]
DEVICES = ["REF", *COMPUTE_DEVICES]
HAS_CUDA = "CUDA" in _FOUND


def on_cpu_cl(dev: str) -> bool:
    """True for the CL device when it is a CPU (PoCL): the CPU GEMM templates apply there, not on an OpenCL GPU."""
    if dev != "CL":
        return False
    from compiler.runtime_opencl import get_cl_device

    return get_cl_device(0).is_cpu


def gemm_opts_field(dev: str) -> str | None:
    """The KernelOpts field a float32 matmul's program sets on dev: the CPU template on a CPU, the tiled
    GPU template on a GPU, None on REF."""
    if dev == "REF":
        return None
    return "gemm" if on_cpu_cl(dev) else "gpu_gemm"
