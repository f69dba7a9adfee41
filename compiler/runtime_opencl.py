"""The CL device: a context and queue per OpenCL device, buffers, programs cached in memory and on disk."""

from __future__ import annotations

import os
import time

import numpy as np

from . import program_cache
from .cl_batch import batch_source
from .dtypes import dtypes
from .errors import KernelBuildError
from .kernel_ir import TILE_COUNTER
from .opencl_devices import opencl_devices
from .switches import switch

BUILD_OPTIONS = ["-cl-mad-enable", "-cl-std=CL1.2"]
# kernels per clBuildProgram: PoCL compiles each kernel's work-group function at its first launch from the
# whole program, so that cost grows with the batch; 16 keeps it near a lone kernel's while the build's fixed
# cost is shared (measured, docs/onnx.md)
MAX_BATCH = 16
MIN_BATCH = 4  # a thread per this many kernels at least: below it, threads buy less than batching saves


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
        # the tile counter of kernels that declare TILE_COUNTER (id of each such kernel object): two ints,
        # zero between launches (the kernel's last work-group resets them); one queue, so one counter
        self.tile_kernels: set[int] = set()
        self.tiles = CLBuffer(self, 2, dtypes.int32)
        self.tiles.copyin(np.zeros(2, np.int32))
        self.batches: dict[str, object] = {}  # cache key of a batch program's source -> its cl.Program
        self.ident = (
            f"{self.device.name}|{self.device.driver_version}|{self.device.version}|{cl.VERSION_TEXT}"
        )
        self.is_cpu = bool(self.device.type & cl.device_type.CPU)
        # PoCL caches its builds itself (POCL_CACHE_DIR, see opencl_devices), and asking it for a program's
        # binary compiles every kernel in it once more (~0.3 s each): keep our binaries for other drivers only
        self.cache_binaries = "pocl" not in self.device.platform.version.lower()

    def alloc(self, size: int, dtype) -> CLBuffer:
        """An uninitialised buffer of `size` elements."""
        return CLBuffer(self, size, dtype)

    def compile(self, src: str, name: str):
        """The kernel `name` from `src`, built once per process and cached as a binary on disk."""
        if src in self.programs:
            return self.programs[src]
        key = self._key(src)
        kernel = self._cached(key, name)
        if kernel is None:
            prg = self._build(src, name)
            import pyopencl as cl

            if self.cache_binaries:
                program_cache.write("cl", key, prg.get_info(cl.program_info.BINARIES)[0])
            kernel = cl.Kernel(prg, name)
        return self._keep(src, kernel)

    def compile_many(self, items: list[tuple[str, str]]) -> None:
        """compile() each (src, name) not built yet: those on disk are loaded, the rest built a batch of
        kernels per program (one clBuildProgram each, see cl_batch), the batches on a pool of threads
        (pyopencl lets go of the GIL while PoCL builds)."""
        todo = []
        for src, name in dict.fromkeys((src, name) for src, name in items if src not in self.programs):
            kernel = self._cached(self._key(src), name)
            if kernel is None:
                todo.append((src, name))
            else:
                self._keep(src, kernel)
        if len(todo) < 2:
            for src, name in todo:
                self.compile(src, name)
            return
        workers = min(os.cpu_count() or 1, -(-len(todo) // MIN_BATCH))
        size = min(MAX_BATCH, -(-len(todo) // workers))
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        if workers < 2:
            for b in batches:
                self._compile_batch(b)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for f in [pool.submit(self._compile_batch, b) for b in batches]:
                f.result()  # re-raises a KernelBuildError

    def _compile_batch(self, items: list[tuple[str, str]]) -> None:
        """Build items as one program and cache it once, with a pointer to it per kernel; a batch that does
        not build (or cannot be merged) is built kernel by kernel, so an error names its own kernel."""
        import pyopencl as cl

        merged = batch_source(items)
        prg = None
        if merged is not None:
            try:
                prg = cl.Program(self.ctx, merged[0]).build(options=BUILD_OPTIONS)
            except cl.RuntimeError:
                prg = None
        if prg is None:
            for src, name in items:
                self.compile(src, name)
            return
        bkey = self._key(merged[0])
        if self.cache_binaries:
            program_cache.write("clbatch", bkey, prg.get_info(cl.program_info.BINARIES)[0])
        self.batches[bkey] = prg
        for (src, _), kname in zip(items, merged[1], strict=True):
            if self.cache_binaries:
                program_cache.write("clref", self._key(src), f"{bkey}\n{kname}".encode())
            self._keep(src, cl.Kernel(prg, kname))

    def _keep(self, src: str, kernel):
        """Remember kernel as src's, and whether it takes the device's tile counter; returns it."""
        self.programs[src] = kernel
        if TILE_COUNTER in src:
            self.tile_kernels.add(id(kernel))  # kernels are never dropped, so their ids stay theirs
        return kernel

    def _key(self, src: str) -> str:
        return program_cache.cache_key(src, self.ident, " ".join(BUILD_OPTIONS))

    def _cached(self, key: str, name: str):
        """The kernel from the on-disk cache (its own binary, or its batch's), or None; a corrupt or stale
        entry is removed so that the kernel is built again."""
        if not self.cache_binaries:
            return None
        import pyopencl as cl

        binary = program_cache.read("cl", key)
        if binary is not None:
            try:
                return cl.Kernel(cl.Program(self.ctx, [self.device], [binary]).build(options=BUILD_OPTIONS), name)
            except Exception:  # a corrupt or stale entry: rebuild from source
                program_cache.remove("cl", key)
        ref = program_cache.read("clref", key)
        if ref is None:
            return None
        try:
            bkey, kname = ref.decode().split("\n")
            prg = self.batches.get(bkey)
            if prg is None:
                binary = program_cache.read("clbatch", bkey)
                if binary is None:
                    raise FileNotFoundError(bkey)
                prg = cl.Program(self.ctx, [self.device], [binary]).build(options=BUILD_OPTIONS)
                self.batches[bkey] = prg
            return cl.Kernel(prg, kname)
        except Exception:  # a missing batch or a corrupt entry: build again
            program_cache.remove("clref", key)
            return None

    def _build(self, src: str, name: str):
        """src built on its own, or a KernelBuildError with the build log and the numbered source."""
        import pyopencl as cl

        try:
            return cl.Program(self.ctx, src).build(options=BUILD_OPTIONS)
        except cl.RuntimeError as e:
            numbered = "\n".join(f"{i + 1:4d} {line}" for i, line in enumerate(src.splitlines()))
            raise KernelBuildError(
                f"OpenCL build of kernel {name} failed on {self.device.name.strip()}:\n"
                f"{e}\n--- source ---\n{numbered}"
            ) from None

    def launch(
        self, kernel, gsize: tuple, lsize: tuple | None, bufs: list, wait: bool = False
    ) -> float | None:
        """Enqueue a kernel; with wait, block and return its device time in seconds."""
        if id(kernel) in self.tile_kernels:
            bufs = [*bufs, self.tiles]
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
        return int(switch("WB_DEBUG", "0"))
    except ValueError:
        return 0
