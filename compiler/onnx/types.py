"""ONNX element types <-> the compiler's dtypes: which ONNX types run, and how they are held.

The compiler has no 64-bit types: int64/uint32/int16/uint16 values are held as int32 (inputs out of the
int32 range are refused) and double as float32; each output is cast back to the ONNX type the graph
declares on the host, so callers get exact ONNX dtypes (ArgMax and Shape give int64)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from compiler.dtypes import DType, dtypes

from .errors import OnnxImportError

# ONNX element type -> the compiler dtype that holds it
HELD: dict[int, DType] = {
    TensorProto.FLOAT: dtypes.float32,
    TensorProto.DOUBLE: dtypes.float32,
    TensorProto.FLOAT16: dtypes.float16,
    TensorProto.BOOL: dtypes.bool,
    TensorProto.UINT8: dtypes.uint8,
    TensorProto.INT8: dtypes.int8,
    TensorProto.INT16: dtypes.int32,
    TensorProto.UINT16: dtypes.int32,
    TensorProto.INT32: dtypes.int32,
    TensorProto.UINT32: dtypes.int32,
    TensorProto.INT64: dtypes.int32,
    TensorProto.UINT64: dtypes.int32,
}


def type_name(elem: int) -> str:
    """The ONNX name of an element type ('FLOAT', 'INT64', ...)."""
    return TensorProto.DataType.Name(elem)


def held_dtype(elem: int, what: str) -> DType:
    """The compiler dtype an ONNX element type runs as, or OnnxImportError naming `what`."""
    if elem not in HELD:
        raise OnnxImportError(f"{what}: ONNX element type {type_name(elem)} is not supported"
                              f" (supported: {', '.join(type_name(e) for e in HELD)})")
    return HELD[elem]


def np_dtype(elem: int) -> np.dtype:
    """The numpy dtype of an ONNX element type."""
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem))


def held_array(arr: np.ndarray, what: str) -> tuple[np.ndarray, DType]:
    """A host array converted to the dtype the compiler holds it in (range-checked for 64-bit ints)."""
    arr = np.asarray(arr)
    if arr.dtype == np.float64:
        return arr.astype(np.float32), dtypes.float32
    if arr.dtype.kind in "iu" and arr.dtype not in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32)):
        if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
            raise OnnxImportError(f"{what}: integer values outside the int32 range ({arr.min()}..{arr.max()});"
                                  " the compiler holds 64-bit integers as int32")
        return arr.astype(np.int32), dtypes.int32
    if arr.dtype.kind == "f" and arr.dtype not in (np.dtype(np.float16), np.dtype(np.float32)):
        raise OnnxImportError(f"{what}: float type {arr.dtype} is not supported")
    if arr.dtype.kind not in "biuf":
        raise OnnxImportError(f"{what}: numpy dtype {arr.dtype} is not supported")
    return arr, {np.dtype(np.bool_): dtypes.bool, np.dtype(np.uint8): dtypes.uint8, np.dtype(np.int8): dtypes.int8,
                 np.dtype(np.int32): dtypes.int32, np.dtype(np.float16): dtypes.float16,
                 np.dtype(np.float32): dtypes.float32}[arr.dtype]
