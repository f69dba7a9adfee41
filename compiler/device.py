"""Device names (`REF`, `CL`, `CL:1`, `CUDA`, `CUDA:1`, `HIP`...), the default device, and host<->device
buffers."""

from __future__ import annotations

import functools

import numpy as np

from . import jit_trace
from .errors import DeviceError
from .switches import switch

GPU_FAMILIES = ("CUDA", "HIP")


class RefBuffer:
    """A REF device buffer: a flat host numpy array."""

    __slots__ = ("data", "dtype", "size")

    def __init__(self, data: np.ndarray, dtype):
        self.data, self.dtype, self.size = (
            np.ascontiguousarray(data, dtype=dtype.np).reshape(-1),
            dtype,
            data.size,
        )

    def numpy(self) -> np.ndarray:
        return self.data


def _cl_count() -> int:
    try:
        from .opencl_devices import opencl_devices

        return len(opencl_devices())
    except Exception:  # pyopencl missing or broken ICD: no CL devices
        return 0


def gpu_count(family: str) -> int:
    """How many GPUs of family ('CUDA' or 'HIP') work here; 0 when its runtime or driver is missing."""
    return _probe(family)[0]


@functools.cache
def _probe(family: str) -> tuple[int, str]:
    """(GPU count, why none) of a family, probed once per process (drivers do not come and go)."""
    try:
        n = _gpu_count_or_raise(family)
    except Exception as e:  # a missing binding, driver or GPU: none of this family, and why
        return 0, str(e).splitlines()[0]
    return n, "" if n else f"the {family} driver sees no GPU"


def _gpu_count_or_raise(family: str) -> int:
    if family == "CUDA":
        from .runtime_cuda import cuda_device_count

        return cuda_device_count()
    from .runtime_hip import hip_device_count

    return hip_device_count()


def unavailable_reason(family: str) -> str:
    """Why no device of family ('CUDA', 'HIP') works here, or '' when one does."""
    return _probe(family)[1]


def _numbered(family: str, n: int) -> list[str]:
    return ([family] if n else []) + [f"{family}:{i}" for i in range(1, n)]


def available() -> list[str]:
    """Every device string that works on this machine (GPU families first)."""
    gpus = [d for fam in GPU_FAMILIES for d in _numbered(fam, gpu_count(fam))]
    return ["REF"] + gpus + _numbered("CL", _cl_count()) + ["SIM"]


def canonicalize(device: str | None) -> str:
    """The canonical name of a device string ('cl:0' -> 'CL'), or DeviceError listing the available ones."""
    if device is None:
        return default_device()
    if str(device).strip().upper().split(":")[0] == "SIM":  # the design name after the colon keeps its case
        from .accel.sim_device import sim_device_name

        return sim_device_name(str(device))
    d = str(device).upper().strip()
    if d == "GPU":  # PyTorch/tinygrad habit: the first OpenCL GPU, never silently the CPU device
        return _first_gpu(device)
    if d == "CL:0":
        d = "CL"
    if d == "REF":
        return d
    idx = _cl_number(d)
    if idx is not None and idx < _cl_count():
        return d
    fam, _, num = d.partition(":")
    if fam in GPU_FAMILIES and (num.isdigit() or not num):
        d = fam if num in ("", "0") else d
        why = unavailable_reason(fam)
        if not why and int(num or 0) < gpu_count(fam):
            return d
        why = why or f"the {fam} driver sees {gpu_count(fam)} GPU(s)"
        raise DeviceError(f"device {device!r} is unavailable: {why}; available: {', '.join(available())}")
    raise DeviceError(f"unknown device {device!r}; available: {', '.join(available())}")


def _gpu_search() -> tuple[str | None, list]:
    """The first GPU's device string (CUDA, then HIP, then the first OpenCL GPU) or None, and the OpenCL devices
    seen: the one rule behind both the 'GPU' alias and the default device."""
    for fam in GPU_FAMILIES:
        if gpu_count(fam):
            return fam, []
    try:
        from .opencl_devices import describe_opencl_devices

        infos = describe_opencl_devices()
    except Exception:  # pyopencl missing or broken ICD: no OpenCL GPU either
        infos = []
    gpu = next((i for i, info in enumerate(infos) if info.is_gpu), None)
    return (None if gpu is None else "CL" if gpu == 0 else f"CL:{gpu}"), infos


def _first_gpu(device: str) -> str:
    """The first GPU (see _gpu_search); DeviceError naming what was found when there is none."""
    gpu, devs = _gpu_search()
    if gpu is not None:
        return gpu
    found = ", ".join(f"{d.name} ({d.kind})" for d in devs) or "no OpenCL devices"
    raise DeviceError(
        f"device {device!r}: no GPU on this machine (no CUDA or HIP GPU, no OpenCL GPU: found {found}); use"
        f" 'CL' for the CPU OpenCL device or 'REF'"
    )


_default: tuple[str | None, str] | None = None  # (WB_DEVICE when it was chosen, the device)


def default_device() -> str:
    """WB_DEVICE, else the first GPU (CUDA, then HIP, then an OpenCL GPU), else CL (PoCL), else REF."""
    global _default
    env = switch("WB_DEVICE")
    if _default is None or _default[0] != env:  # a changed WB_DEVICE is honoured, and a removed one undone
        try:
            _default = (env, canonicalize(env) if env else _first_device())
        except DeviceError as exc:  # the user gave no device: say where this one came from
            raise DeviceError(f"environment variable WB_DEVICE={env!r}: {exc}; fix or unset it") from None
    return _default[1]


def _first_device() -> str:
    gpu, _ = _gpu_search()
    return gpu or ("CL" if _cl_count() else "REF")


def _cl_number(device: str) -> int | None:
    """n for 'CL:n' (0 for 'CL'), None for anything that is not an OpenCL device name."""
    if device == "CL":
        return 0
    head, _, n = device.partition(":")
    return int(n) if head == "CL" and n.isdigit() else None


def gpu_index(device: str) -> int:
    """n of a 'CUDA:n' or 'HIP:n' device string (0 for plain 'CUDA' or 'HIP')."""
    n = device.partition(":")[2]
    return int(n) if n.isdigit() else 0


def cl_index(device: str) -> int:
    """The OpenCL device index of a CL device string ('CL' -> 0, 'CL:2' -> 2)."""
    idx = _cl_number(device.upper().strip())
    if idx is None:
        raise DeviceError(f"{device!r} is not an OpenCL device; name one as CL or CL:n")
    return idx


def describe(device: str) -> str:
    """The hardware behind a device string: 'name (platform)' for an OpenCL device, else the string."""
    d = str(device).upper().strip()
    if d.split(":")[0] == "CUDA":
        from .runtime_cuda import get_cuda_device

        return f"{get_cuda_device(gpu_index(d)).name} (CUDA)"
    idx = _cl_number(d)
    if idx is None:
        return device
    from .opencl_devices import describe_opencl_devices

    infos = describe_opencl_devices()
    return f"{infos[idx].name} ({infos[idx].platform})" if idx < len(infos) else device


def to_device(arr: np.ndarray, dtype, device: str):
    """A buffer on `device` holding a copy of arr."""
    buf = _to_device(arr, dtype, device)
    if jit_trace.ACTIVE is not None:  # the jit must know which buffers a call filled from host data
        jit_trace.ACTIVE.upload(buf, arr)
    return buf


def _to_device(arr: np.ndarray, dtype, device: str):
    if device == "REF" or device.startswith("SIM"):  # SIM buffers live on the host between programs
        return RefBuffer(arr, dtype)
    fam = device.split(":")[0]
    if fam in GPU_FAMILIES:
        index = gpu_index(device)
        if fam == "CUDA":
            from .runtime_cuda import get_cuda_device as get_gpu
        else:
            from .runtime_hip import get_hip_device as get_gpu
        buf = get_gpu(index).alloc(arr.size, dtype)
        buf.copyin(arr)
        return buf
    from .runtime_opencl import get_cl_device

    buf = get_cl_device(cl_index(device)).alloc(arr.size, dtype)
    buf.copyin(arr)
    return buf


class _DeviceMeta(type):
    @property
    def DEFAULT(cls) -> str:  # an upper-case name, as tinygrad spells it
        """The default device (WB_DEVICE, else the first OpenCL device, else REF)."""
        return default_device()


class Device(metaclass=_DeviceMeta):
    """Namespace for device queries: `Device.DEFAULT`, `Device.available()`, `Device.canonicalize(name)`."""

    available = staticmethod(available)
    canonicalize = staticmethod(canonicalize)

    @classmethod
    def default(cls) -> str:
        return default_device()

    def __class_getitem__(cls, name):
        return canonicalize(name)
