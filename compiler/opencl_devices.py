"""Enumerate OpenCL devices in the order `CL`, `CL:1`, ... name them (GPUs first, then the rest)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpenCLDeviceInfo:
    """One OpenCL device as the workbench numbers it."""

    index: int
    platform: str
    name: str
    kind: str  # "GPU", "CPU" or "ACCELERATOR"
    compute_units: int
    global_mem_bytes: int
    version: str

    @property
    def is_gpu(self) -> bool:
        """True for a GPU device."""
        return self.kind == "GPU"


def opencl_devices() -> list:
    """pyopencl Device objects in workbench order: GPUs first, then CPUs and others, stable by platform."""
    import os

    import pyopencl as cl

    from .program_cache import cache_dir

    # PoCL keeps built programs and compiled work-group functions in its own cache: put it with ours, so
    # WB_CACHE_DIR names every compiled artifact (a cold WB_CACHE_DIR is a cold start); read at its first use
    if "POCL_CACHE_DIR" not in os.environ:
        os.environ["POCL_CACHE_DIR"] = str(cache_dir() / "pocl")
    try:
        platforms = cl.get_platforms()
    except cl.LogicError:  # no ICD registered at all: same as an empty list
        return []
    devices = [d for p in platforms for d in p.get_devices()]
    return sorted(devices, key=lambda d: 0 if d.type & cl.device_type.GPU else 1)


def describe_opencl_devices() -> list[OpenCLDeviceInfo]:
    """Plain descriptions of `opencl_devices()`, for `workbench doctor` and error messages."""
    import pyopencl as cl

    out = []
    for i, d in enumerate(opencl_devices()):
        kind = "GPU" if d.type & cl.device_type.GPU else "CPU" if d.type & cl.device_type.CPU else \
            "ACCELERATOR"
        out.append(OpenCLDeviceInfo(i, d.platform.name.strip(), d.name.strip(), kind, d.max_compute_units,
                                    d.global_mem_size, d.version.strip()))
    return out
