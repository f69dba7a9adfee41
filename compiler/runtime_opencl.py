"""The CL device: a context and queue per OpenCL device, buffers, programs cached in memory and on disk."""

from __future__ import annotations

import os
import time

import numpy as np

from . import program_cache
from .errors import KernelBuildError
from .opencl_devices import opencl_devices

BUILD_OPTIONS = ["-cl-mad-enable", "-cl-std=CL1.2"]


class CLBuffer:
    """Device memory holding `size` elements of a dtype."""

    __slots__ = ("dev", "size", "dtype", "buf")

    def __init__(self, dev: CLDevice, size: int, dtype):
        import pyopencl as cl

        self.dev, self.size, self.dtype = dev, size, dtype
        nbytes = max(1, size * dtype.itemsize)
        pool = dev.free_buffers.get(nbytes)
        # reuse freed device memory: fresh allocations pay page faults on first touch
        self.buf = pool.pop() if pool else cl.Buffer(dev.ctx, cl.mem_flags.READ_WRITE, nbytes)

    def __del__(self):
        try:
            self.dev.free_buffers.setdefault(self.buf.size, []).append(self.buf)
        except Exception:  # interpreter shutdown: nothing to return the memory to
            pass

    def copyin(self, arr: np.ndarray) -> None:
        import pyopencl as cl

        cl.enqueue_copy(
            self.dev.queue, self.buf, np.ascontiguousarray(arr, dtype=self.dtype.np), is_blocking=True
        )

    def numpy(self) -> np.ndarray:
        """The buffer's contents as a flat host array (waits for queued kernels)."""
        import pyopencl as cl

        out = np.empty(self.size, dtype=self.dtype.np)
        if self.size:
            cl.enqueue_copy(self.dev.queue, out, self.buf, is_blocking=True)
        return out


class CLDevice:
    """One OpenCL device (`CL`, `CL:1`...) with its context, in-order queue and program caches."""

    def __init__(self, index: int):
        import pyopencl as cl

        self.index = index
        self.device = opencl_devices()[index]
        self.ctx = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.ctx, properties=cl.command_queue_properties.PROFILING_ENABLE)
        self.free_buffers: dict[int, list] = {}  # nbytes -> released cl.Buffers
        self.programs: dict[str, object] = {}  # source -> kernel object
        self.ident = (
            f"{self.device.name}|{self.device.driver_version}|{self.device.version}|{cl.VERSION_TEXT}"
        )
        self.is_cpu = bool(self.device.type & cl.device_type.CPU)

    def alloc(self, size: int, dtype) -> CLBuffer:
        """An uninitialised buffer of `size` elements."""
        return CLBuffer(self, size, dtype)

    def compile(self, src: str, name: str):
        """The kernel `name` from `src`, built once per process and cached as a binary on disk."""
        if src in self.programs:
            return self.programs[src]
        import pyopencl as cl

        key = program_cache.cache_key(src, self.ident, " ".join(BUILD_OPTIONS))
        prg = None
        binary = program_cache.read("cl", key)
        if binary is not None:
            try:
                prg = cl.Program(self.ctx, [self.device], [binary]).build(options=BUILD_OPTIONS)
                cl.Kernel(prg, name)
            except Exception:  # a corrupt or stale entry: rebuild from source
                program_cache.remove("cl", key)
                prg = None
        if prg is None:
            try:
                prg = cl.Program(self.ctx, src).build(options=BUILD_OPTIONS)
            except cl.RuntimeError as e:
                log = str(e)
                numbered = "\n".join(f"{i + 1:4d} {line}" for i, line in enumerate(src.splitlines()))
                raise KernelBuildError(
                    f"OpenCL build of kernel {name} failed on {self.device.name.strip()}:\n"
                    f"{log}\n--- source ---\n{numbered}"
                ) from None
            program_cache.write("cl", key, prg.get_info(cl.program_info.BINARIES)[0])
        self.programs[src] = cl.Kernel(prg, name)
        return self.programs[src]

    def compile_many(self, items: list[tuple[str, str]]) -> None:
        """compile() each (src, name) not built yet, in a pool of threads: pyopencl lets go of the GIL
        while PoCL builds, so N cores build N kernels at a time."""
        todo = list(dict.fromkeys((src, name) for src, name in items if src not in self.programs))
        if len(todo) < 2:
            for src, name in todo:
                self.compile(src, name)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:
            for f in [pool.submit(self.compile, src, name) for src, name in todo]:
                f.result()  # re-raises a KernelBuildError

    def launch(
        self, kernel, gsize: tuple, lsize: tuple | None, bufs: list, wait: bool = False
    ) -> float | None:
        """Enqueue a kernel; with wait, block and return its device time in seconds."""
        kernel.set_args(*[b.buf for b in bufs])
        import pyopencl as cl

        ev = cl.enqueue_nd_range_kernel(self.queue, kernel, gsize, lsize)
        if not wait:
            return None
        ev.wait()
        return (ev.profile.end - ev.profile.start) * 1e-9

    def synchronize(self) -> None:
        self.queue.finish()


def time_kernel(dev: CLDevice, kernel, gsize, lsize, bufs, reps: int = 3) -> float:
    """Best-of-reps device time of one launch, in seconds."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        t = dev.launch(kernel, gsize, lsize, bufs, wait=True)
        best = min(best, t if t else time.perf_counter() - t0)
    return best


_DEVICES: dict[int, CLDevice] = {}


def get_cl_device(index: int) -> CLDevice:
    """The process-wide CLDevice for an index, created on first use."""
    if index not in _DEVICES:
        _DEVICES[index] = CLDevice(index)
    return _DEVICES[index]


def debug_level() -> int:
    """WB_DEBUG as an int (0 when unset)."""
    try:
        return int(os.environ.get("WB_DEBUG", "0"))
    except ValueError:
        return 0
