"""Device names (`REF`, `CL`, `CL:1`...), the default device, and host<->device buffers."""

from __future__ import annotations

import os

import numpy as np

from .errors import DeviceError

RESERVED = ("CUDA", "HIP")


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


def available() -> list[str]:
    """Every device string that works on this machine."""
    n = _cl_count()
    return ["REF"] + (["CL"] if n else []) + [f"CL:{i}" for i in range(1, n)] + ["SIM"]


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
    why = " (reserved, not implemented on this machine)" if d.split(":")[0] in RESERVED else ""
    raise DeviceError(f"unknown device {device!r}{why}; available: {', '.join(available())}")


def _first_gpu(device: str) -> str:
    """'CL' when the first OpenCL device is a GPU (GPUs are listed first), else DeviceError."""
    try:
        from .opencl_devices import describe_opencl_devices

        devs = describe_opencl_devices()
    except Exception:  # pyopencl missing or broken ICD: no GPU either
        devs = []
    if devs and devs[0].is_gpu:
        return "CL"
    found = ", ".join(f"{d.name} ({d.kind})" for d in devs) or "no OpenCL devices"
    raise DeviceError(
        f"device {device!r}: no OpenCL GPU on this machine (found {found}); use 'CL' for the CPU OpenCL"
        f" device or 'REF'"
    )


_default: str | None = None


def default_device() -> str:
    """WB_DEVICE, else the first OpenCL device (GPUs are listed first), else REF."""
    global _default
    if _default is None:
        env = os.environ.get("WB_DEVICE")
        if env:
            _default = canonicalize(env)
        else:
            _default = "CL" if _cl_count() else "REF"
    return _default


def _cl_number(device: str) -> int | None:
    """n for 'CL:n' (0 for 'CL'), None for anything that is not an OpenCL device name."""
    if device == "CL":
        return 0
    head, _, n = device.partition(":")
    return int(n) if head == "CL" and n.isdigit() else None


def cl_index(device: str) -> int:
    """The OpenCL device index of a CL device string ('CL' -> 0, 'CL:2' -> 2)."""
    idx = _cl_number(device.upper().strip())
    if idx is None:
        raise DeviceError(f"{device!r} is not an OpenCL device; name one as CL or CL:n")
    return idx


def describe(device: str) -> str:
    """The hardware behind a device string: 'name (platform)' for an OpenCL device, else the string."""
    idx = _cl_number(str(device).upper().strip())
    if idx is None:
        return device
    from .opencl_devices import describe_opencl_devices

    infos = describe_opencl_devices()
    return f"{infos[idx].name} ({infos[idx].platform})" if idx < len(infos) else device


def to_device(arr: np.ndarray, dtype, device: str):
    """A buffer on `device` holding a copy of arr."""
    if device == "REF" or device.startswith("SIM"):  # SIM buffers live on the host between programs
        return RefBuffer(arr, dtype)
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
