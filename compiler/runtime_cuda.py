"""The CUDA device: the driver API through `cuda-bindings`, kernels compiled to cubin by NVRTC for the
device's own architecture, buffers and launches on one stream per device.

Every failure is a compiler error that names the missing piece: no `cuda-bindings` (the `cuda` extra), no
NVIDIA driver, no GPU, a kernel that NVRTC rejects (`KernelBuildError` with the log), a launch or a memory
copy the driver refuses (`DeviceError` with the driver's error name and the kernel).
"""

from __future__ import annotations

import numpy as np

from .errors import DeviceError
from .kernel_ir import launch_geometry
from .nvrtc import INSTALL_HINT, compile_cuda


def _driver():
    """cuda.bindings.driver, initialised; DeviceError naming what is missing otherwise."""
    try:
        from cuda.bindings import driver
    except ImportError as e:
        raise DeviceError(f"CUDA needs cuda-bindings, which is not installed ({e}); {INSTALL_HINT}") from None
    try:
        (err,) = driver.cuInit(0)
    except Exception as e:  # libcuda.so is not there: no NVIDIA driver on this machine
        raise DeviceError(f"CUDA: no NVIDIA driver (libcuda) found ({str(e).splitlines()[0]})") from None
    if err != driver.CUresult.CUDA_SUCCESS:
        raise DeviceError(f"CUDA: cuInit failed with {_name(driver, err)}")
    return driver


def _name(driver, err) -> str:
    try:
        return driver.cuGetErrorName(err)[1].decode()
    except Exception:  # an error code the binding cannot name
        return str(err)


_TOOLKIT_TOO_NEW = ("UNSUPPORTED_PTX_VERSION", "INVALID_IMAGE", "NO_BINARY_FOR_GPU", "INVALID_PTX")


def _check(driver, result, what: str):
    err = result[0]
    if err != driver.CUresult.CUDA_SUCCESS:
        name = _name(driver, err)
        hint = ""
        if any(t in name for t in _TOOLKIT_TOO_NEW):
            hint = (" (NVRTC may be newer than the driver: install the nvidia-cuda-nvrtc matching the CUDA version"
                    " nvidia-smi reports)")
        raise DeviceError(f"CUDA {what} failed: {name}{hint}")
    return result[1] if len(result) == 2 else result[1:]


def cuda_device_count() -> int:
    """How many CUDA GPUs the driver sees (DeviceError saying why when CUDA cannot be used at all)."""
    driver = _driver()
    return _check(driver, driver.cuDeviceGetCount(), "device count")


class CUDABuffer:
    """Device memory holding `size` elements of a dtype."""

    __slots__ = ("dev", "size", "dtype", "ptr", "nbytes")

    def __init__(self, dev: CUDADevice, size: int, dtype):
        self.dev, self.size, self.dtype = dev, size, dtype
        self.nbytes = max(4, size * dtype.itemsize)
        pool = dev.free_buffers.get(self.nbytes)
        self.ptr = pool.pop() if pool else _check(dev.drv, dev.drv.cuMemAlloc(self.nbytes), f"alloc of {self.nbytes} bytes")

    def __del__(self):
        try:
            self.dev.free_buffers.setdefault(self.nbytes, []).append(self.ptr)
        except Exception:  # interpreter shutdown
            pass

    def copyin(self, arr: np.ndarray) -> None:
        """Copy a host array of `size` elements into the buffer."""
        host = np.ascontiguousarray(arr, dtype=self.dtype.np)
        if self.size:
            _check(self.dev.drv, (self.dev.drv.cuMemcpyHtoD(self.ptr, host.ctypes.data, host.nbytes)[0], None), "copy to device")

    def numpy(self) -> np.ndarray:
        """The buffer's contents as a flat host array (waits for launched kernels)."""
        out = np.empty(self.size, dtype=self.dtype.np)
        if self.size:
            self.dev.synchronize()
            _check(self.dev.drv, (self.dev.drv.cuMemcpyDtoH(out.ctypes.data, self.ptr, out.nbytes)[0], None), "copy to host")
        return out


class CUDADevice:
    """One CUDA GPU (`CUDA`, `CUDA:1`...): its primary context, a stream, and compiled kernels."""

    def __init__(self, index: int):
        drv = self.drv = _driver()
        count = _check(drv, drv.cuDeviceGetCount(), "device count")
        if index >= count:
            raise DeviceError(f"CUDA:{index} does not exist; the driver sees {count} CUDA GPU(s)")
        self.index = index
        self.handle = _check(drv, drv.cuDeviceGet(index), "device get")
        self.ctx = _check(drv, drv.cuDevicePrimaryCtxRetain(self.handle), "context")
        _check(drv, (drv.cuCtxSetCurrent(self.ctx)[0], None), "set context")
        attr = drv.CUdevice_attribute
        major = _check(drv, drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.handle), "attribute")
        minor = _check(drv, drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.handle), "attribute")
        self.arch = f"sm_{major}{minor}"
        self.name = _check(drv, drv.cuDeviceGetName(256, self.handle), "name").split(b"\0")[0].decode()
        self.shared_mem_bytes = _check(
            drv, drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, self.handle), "attribute"
        )
        self.shared_mem_optin_bytes = _check(
            drv, drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, self.handle),
            "attribute")
        self.stream = _check(drv, drv.cuStreamCreate(0), "stream")
        self.ident = f"{self.name}|{self.arch}"
        self.free_buffers: dict[int, list] = {}
        self.kernels: dict[str, object] = {}
        self._modules: list = []

    def alloc(self, size: int, dtype) -> CUDABuffer:
        """An uninitialised buffer of `size` elements."""
        return CUDABuffer(self, size, dtype)

    def compile(self, src: str, name: str, shared_bytes: int = 0):
        """The kernel `name` of CUDA source src, compiled to this GPU's cubin once per process; allowed
        shared_bytes of dynamic shared memory (above 48 KB a kernel must opt in)."""
        fn = self.kernels.get(src)
        if fn is None:
            image = np.frombuffer(compile_cuda(src, name, self.arch, cubin=True), dtype=np.uint8)
            mod = _check(self.drv, self.drv.cuModuleLoadData(image.ctypes.data), f"module load of kernel {name}")
            self._modules.append((mod, image))
            fn = self.kernels[src] = _check(self.drv, self.drv.cuModuleGetFunction(mod, name.encode()), f"function {name}")
            if shared_bytes > 48 * 1024:
                if shared_bytes > self.shared_mem_optin_bytes:
                    raise DeviceError(f"kernel {name} needs {shared_bytes} bytes of shared memory; {self.name} allows"
                                      f" {self.shared_mem_optin_bytes} per block (choose a smaller tile)")
                attr = self.drv.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
                _check(self.drv, (self.drv.cuFuncSetAttribute(fn, attr, shared_bytes)[0], None),
                       f"shared memory opt-in of kernel {name}")
        return fn

    def launch(self, fn, gsize: tuple, lsize: tuple, bufs: list, wait: bool = False, name: str = "",
               shared_bytes: int = 0) -> float | None:
        """Launch fn over gsize work-items in blocks of lsize with shared_bytes of dynamic shared memory; with
        wait, block and return its time in seconds."""
        drv = self.drv
        grid, lsize, args, _keep = launch_geometry(gsize, lsize, bufs)
        if wait:
            start, end = (_check(drv, drv.cuEventCreate(0), "event") for _ in range(2))
            _check(drv, (drv.cuEventRecord(start, self.stream)[0], None), "event record")
        res = drv.cuLaunchKernel(fn, *grid, *lsize, shared_bytes, self.stream, args.ctypes.data, 0)
        _check(drv, (res[0], None), f"launch of kernel {name} (grid {grid}, block {list(lsize)})")
        if not wait:
            return None
        _check(drv, (drv.cuEventRecord(end, self.stream)[0], None), "event record")
        _check(drv, (drv.cuEventSynchronize(end)[0], None), f"kernel {name}")
        ms = _check(drv, drv.cuEventElapsedTime(start, end), "event time")
        for ev in (start, end):
            drv.cuEventDestroy(ev)
        return ms * 1e-3

    def synchronize(self) -> None:
        """Wait for the stream; a kernel's asynchronous fault surfaces here as a DeviceError."""
        _check(self.drv, (self.drv.cuStreamSynchronize(self.stream)[0], None), "synchronize (a kernel faulted)")


_DEVICES: dict[int, CUDADevice] = {}


def get_cuda_device(index: int) -> CUDADevice:
    """The process-wide CUDADevice for an index, created on first use."""
    if index not in _DEVICES:
        _DEVICES[index] = CUDADevice(index)
    return _DEVICES[index]
