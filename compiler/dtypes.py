"""The dtypes a Tensor can hold, their numpy and OpenCL C names, and the promotion rule.

float16 and bfloat16 are storage formats: kernels load them into float32, compute in float32 and round
to nearest even on every store. bfloat16 values live in numpy as `ml_dtypes.bfloat16` (what JAX uses);
devices store the 16 bits as an unsigned short."""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .errors import DTypeError
from .ops import Ops


@dataclass(frozen=True, eq=True)
class DType:
    """One element type: `priority` orders promotion, `cname` is the OpenCL storage type."""

    name: str
    priority: int
    itemsize: int
    np: type
    cname: str

    @property
    def is_float(self) -> bool:
        """True for float16, bfloat16 and float32."""
        return self.name in ("float16", "bfloat16", "float32")

    @property
    def is_int(self) -> bool:
        """True for the integer dtypes (not bool)."""
        return self.name.startswith("int") or self.name.startswith("uint")

    @property
    def is_unsigned(self) -> bool:
        """True for uint8 and bool."""
        return self.name in ("uint8", "bool")

    @property
    def min(self) -> float | int:
        """The lowest value the dtype holds (-inf for floats, 0 for bool)."""
        return -math.inf if self.is_float else int(np.iinfo(self.np).min) if self.is_int else 0

    @property
    def compute(self) -> str:
        """The OpenCL C type arithmetic runs in: 16-bit floats are stored, float is computed."""
        return "bool" if self.name == "bool" else "float" if self.is_float else self.cname

    def __repr__(self) -> str:
        return f"dtypes.{self.name}"

    def __eq__(self, other) -> bool:
        # the dtypes are singletons: identity answers nearly every comparison (graph building makes
        # hundreds per call) before the five fields are compared
        if self is other:
            return True
        if not isinstance(other, DType):
            return NotImplemented
        return (self.name, self.priority, self.itemsize, self.np, self.cname) == (
            other.name, other.priority, other.itemsize, other.np, other.cname
        )


class dtypes:
    """Namespace of the supported dtypes, like `dtypes.float32`."""

    bool = DType("bool", 0, 1, np.bool_, "uchar")
    uint8 = DType("uint8", 1, 1, np.uint8, "uchar")
    int8 = DType("int8", 2, 1, np.int8, "char")
    int32 = DType("int32", 3, 4, np.int32, "int")
    float16 = DType("float16", 4, 2, np.float16, "half")
    bfloat16 = DType("bfloat16", 4, 2, ml_dtypes.bfloat16, "ushort")  # the bits, loaded and stored by helpers
    float32 = DType("float32", 5, 4, np.float32, "float")
    bf16 = bfloat16
    half = float16
    default_float = float32
    default_int = int32
    all = (bool, uint8, int8, int32, float16, bfloat16, float32)


_BY_NAME = {d.name: d for d in dtypes.all} | {
    "float": dtypes.float32,
    "half": dtypes.float16,
    "bf16": dtypes.bfloat16,
    "int": dtypes.int32,
}


# x + ROUNDER - ROUNDER rounds a float32 x to an integer (no cast) for |x| < 2**22: the sum has no fraction
# bits, so the add itself rounds and the subtraction is exact (tensor.exp; render_opencl spots the pattern)
FLOAT32_ROUNDER = 1.5 * 2.0**23


def to_dtype(x) -> DType:
    """A DType from a DType, a name like 'float32', or a numpy dtype; raises DTypeError for anything else."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str) and x.removeprefix("torch.").removeprefix("dtypes.") in _BY_NAME:
        return _BY_NAME[x.removeprefix("torch.").removeprefix("dtypes.")]
    if type(x).__module__ == "torch" and type(x).__name__ == "dtype":  # torch.bfloat16 and friends, by name
        return to_dtype(str(x))
    try:
        npd = np.dtype(x)
    except TypeError:
        npd = None
    if npd is not None:
        for d in dtypes.all:
            if np.dtype(d.np) == npd:
                return d
        if npd.kind == "f":
            return dtypes.float32
        if npd.kind in "iu":
            return dtypes.int32
    raise DTypeError(f"unsupported dtype {x!r}; supported: {', '.join(d.name for d in dtypes.all)}")


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op: the higher of the two, with int8/uint8 mixing widening to int32 and
    float16/bfloat16 mixing widening to float32 (neither holds the other, as in PyTorch)."""
    if {a.name, b.name} == {"int8", "uint8"}:
        return dtypes.int32
    if {a.name, b.name} == {"float16", "bfloat16"}:
        return dtypes.float32
    return a if a.priority >= b.priority else b


def reduce_identity(op: Ops, dtype: DType) -> float | int:
    """The value a reduce starts from, so padding with it changes nothing: 0 for SUM, dtype.min for MAX."""
    return 0 if op == Ops.SUM else dtype.min


def round_to(values, dtype: DType) -> np.ndarray:
    """values as float32 rounded to dtype's precision (nearest even through float32, like a kernel's store)."""
    v = np.asarray(values, dtype=np.float32)
    return v.astype(dtype.np).astype(np.float32) if dtype.name in ("float16", "bfloat16") else v
