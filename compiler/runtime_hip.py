"""The HIP device (AMD GPUs): `hip-python` for the HIP runtime and hiprtc, kernels compiled for the GPU's own
gfx target. NOTHING HERE HAS RUN ON AMD HARDWARE: no AMD GPU or ROCm installation was available. What is
proven in CI is that the HIP dialect's sources compile for gfx1100 with clang (amdgpu_offline.py); this
module mirrors runtime_cuda.py call for call and fails with a DeviceError naming the missing piece.
"""

from __future__ import annotations

import numpy as np

from .errors import DeviceError, KernelBuildError
from .kernel_ir import launch_geometry

INSTALL_HINT = "pip install 'petaflop-workbench[hip]' (hip-python matching the ROCm version)"


def _ok(err) -> bool:
    return int(getattr(err, "value", err)) == 0


def _hip():
    try:
        from hip import hip
    except Exception as e:  # not installed, or installed without the ROCm libraries it binds
        raise DeviceError(f"HIP needs hip-python and ROCm ({str(e).splitlines()[0] if str(e) else type(e).__name__}); {INSTALL_HINT}") from None
    try:
        (err,) = hip.hipInit(0)
    except Exception as e:
        raise DeviceError(f"HIP: the ROCm runtime cannot start ({e})") from None
    if not _ok(err):
        raise DeviceError(f"HIP: hipInit failed with {err}")
    return hip


def _check(result, what: str):
    err = result[0]
    if not _ok(err):
        raise DeviceError(f"HIP {what} failed: {err}")
    return result[1] if len(result) == 2 else result[1:]


def hip_device_count() -> int:
    """How many AMD GPUs the HIP runtime sees (DeviceError saying why when HIP cannot be used)."""
    return _check(_hip().hipGetDeviceCount(), "device count")


def compile_hiprtc(src: str, name: str, arch: str) -> bytes:
    """A code object of HIP source src for arch (e.g. 'gfx1100') through hiprtc."""
    try:
        from hip import hiprtc
    except Exception as e:
        raise DeviceError(f"HIP needs hiprtc from hip-python ({e}); {INSTALL_HINT}") from None
    prog = _check(hiprtc.hiprtcCreateProgram(src.encode(), f"{name}.hip".encode(), 0, [], []), "hiprtc create")
    opts = [f"--offload-arch={arch}".encode(), b"-O3"]
    (err,) = hiprtc.hiprtcCompileProgram(prog, len(opts), opts)
    if not _ok(err):
        size = _check(hiprtc.hiprtcGetProgramLogSize(prog), "hiprtc log size")
        log = bytearray(size)
        hiprtc.hiprtcGetProgramLog(prog, log)
        raise KernelBuildError(f"hiprtc build of kernel {name} for {arch} failed:\n{bytes(log).decode(errors='replace')}")
    size = _check(hiprtc.hiprtcGetCodeSize(prog), "hiprtc code size")
    code = bytearray(size)
    _check((hiprtc.hiprtcGetCode(prog, code)[0], None), "hiprtc code")
    return bytes(code)


class HIPBuffer:
    """Device memory holding `size` elements of a dtype."""

    __slots__ = ("dev", "size", "dtype", "ptr")

    def __init__(self, dev: HIPDevice, size: int, dtype):
        self.dev, self.size, self.dtype = dev, size, dtype
        self.ptr = _check(dev.hip.hipMalloc(max(4, size * dtype.itemsize)), "alloc")

    def __del__(self):
        try:
            self.dev.hip.hipFree(self.ptr)
        except Exception:  # interpreter shutdown
            pass

    def copyin(self, arr: np.ndarray) -> None:
        """Copy a host array of `size` elements into the buffer."""
        host = np.ascontiguousarray(arr, dtype=self.dtype.np)
        kind = self.dev.hip.hipMemcpyKind.hipMemcpyHostToDevice
        _check((self.dev.hip.hipMemcpy(self.ptr, host, host.nbytes, kind)[0], None), "copy to device")

    def numpy(self) -> np.ndarray:
        """The buffer's contents as a flat host array (waits for launched kernels)."""
        out = np.empty(self.size, dtype=self.dtype.np)
        if self.size:
            self.dev.synchronize()
            kind = self.dev.hip.hipMemcpyKind.hipMemcpyDeviceToHost
            _check((self.dev.hip.hipMemcpy(out, self.ptr, out.nbytes, kind)[0], None), "copy to host")
        return out


class HIPDevice:
    """One AMD GPU (`HIP`, `HIP:1`...): a stream and compiled kernels."""

    def __init__(self, index: int):
        hip = self.hip = _hip()
        count = _check(hip.hipGetDeviceCount(), "device count")
        if index >= count:
            raise DeviceError(f"HIP:{index} does not exist; the HIP runtime sees {count} GPU(s)")
        self.index = index
        _check((hip.hipSetDevice(index)[0], None), "set device")
        props = hip.hipDeviceProp_t()
        _check((hip.hipGetDeviceProperties(props, index)[0], None), "properties")
        self.arch = props.gcnArchName.decode().split(":")[0]
        self.name = props.name.decode()
        self.ident = f"{self.name}|{self.arch}"
        self.stream = _check(hip.hipStreamCreate(), "stream")
        self.kernels: dict[str, object] = {}

    def alloc(self, size: int, dtype) -> HIPBuffer:
        """An uninitialised buffer of `size` elements."""
        return HIPBuffer(self, size, dtype)

    def compile(self, src: str, name: str, shared_bytes: int = 0):
        """The kernel `name` of HIP source src, compiled for this GPU once per process (HIP needs no opt-in
        for dynamic shared memory up to the device's limit, so shared_bytes only matters at launch)."""
        fn = self.kernels.get(src)
        if fn is None:
            mod = _check(self.hip.hipModuleLoadData(compile_hiprtc(src, name, self.arch)), f"module load of {name}")
            fn = self.kernels[src] = _check(self.hip.hipModuleGetFunction(mod, name.encode()), f"function {name}")
        return fn

    def launch(self, fn, gsize: tuple, lsize: tuple, bufs: list, wait: bool = False, name: str = "",
               shared_bytes: int = 0) -> float | None:
        """Launch fn over gsize work-items in blocks of lsize with shared_bytes of dynamic shared memory; with
        wait, block and return seconds."""
        hip = self.hip
        grid, lsize, args, _keep = launch_geometry(gsize, lsize, bufs)
        if wait:
            start, end = _check(hip.hipEventCreate(), "event"), _check(hip.hipEventCreate(), "event")
            hip.hipEventRecord(start, self.stream)
        _check((hip.hipModuleLaunchKernel(fn, *grid, *lsize, shared_bytes, self.stream, args.ctypes.data, None)[0], None), f"launch of {name}")
        if not wait:
            return None
        hip.hipEventRecord(end, self.stream)
        _check((hip.hipEventSynchronize(end)[0], None), f"kernel {name}")
        return _check(hip.hipEventElapsedTime(start, end), "event time") * 1e-3

    def synchronize(self) -> None:
        """Wait for the stream."""
        _check((self.hip.hipStreamSynchronize(self.stream)[0], None), "synchronize (a kernel faulted)")


_DEVICES: dict[int, HIPDevice] = {}


def get_hip_device(index: int) -> HIPDevice:
    """The process-wide HIPDevice for an index, created on first use."""
    if index not in _DEVICES:
        _DEVICES[index] = HIPDevice(index)
    return _DEVICES[index]
