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
    # PoCL's CPU workers pinned one per core unless the user chose (POCL_AFFINITY=0 turns it off): a kernel
    # wakes its workers together, and unpinned both were often queued on the one CPU that was idle, while
    # the CPU the main thread then left idle took neither for ~2 ms (Linux skips balancing on a CPU whose
    # idle spells are short): the GPT-2 block's first GEMMs ran at half speed in about half the calls
    if "POCL_AFFINITY" not in os.environ and pocl_can_pin(os.environ, allowed_cpus(), os.cpu_count() or 1):
        os.environ["POCL_AFFINITY"] = "1"
    try:
        platforms = cl.get_platforms()
    except cl.LogicError:  # no ICD registered at all: same as an empty list
        return []
    devices = [d for p in platforms for d in p.get_devices()]
    return sorted(devices, key=lambda d: 0 if d.type & cl.device_type.GPU else 1)


def pocl_can_pin(env, allowed: set[int] | None, cpu_count: int) -> bool:
    """Whether POCL_AFFINITY=1 is safe: PoCL pins worker i to CPU i, one worker per CPU it counts (or as many
    as POCL_MAX_PTHREAD_COUNT / POCL_CPU_MAX_CU_COUNT say), so every one of those CPUs must be ours to use
    (a container or `taskset` may allow fewer or others)."""
    if allowed is None:  # no affinity on this OS: PoCL's option is Linux's only
        return False
    # PoCL 3 reads the first variable, PoCL 4 on the second: whichever asks for more workers
    asked = [int(env[v]) for v in ("POCL_MAX_PTHREAD_COUNT", "POCL_CPU_MAX_CU_COUNT") if env.get(v, "").strip().isdigit()]
    workers = max(asked) if asked else cpu_count
    return workers >= 1 and set(range(workers)) <= allowed


def allowed_cpus() -> set[int] | None:
    """The CPUs this process may run on (its affinity), or None where the OS has no such call."""
    import os

    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


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
