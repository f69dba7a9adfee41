"""A tinygrad-style tensor compiler: lazy tensors, primitive ops, fused kernels, OpenCL/CUDA renderers."""

from .device import Device
from .dtypes import DType, dtypes
from .errors import CompilerError, DeviceError, DTypeError, KernelBuildError, ShapeError
from .ops import Ops
from .tensor import Tensor

__all__ = [
    "Tensor",
    "dtypes",
    "DType",
    "Device",
    "Ops",
    "CompilerError",
    "ShapeError",
    "DTypeError",
    "DeviceError",
    "KernelBuildError",
]
