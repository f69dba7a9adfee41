"""Model weights on disk: safetensors save/load (the `safetensors` package) and bfloat16 conversion.

bfloat16 is a storage dtype (`dtypes.bfloat16`, numpy arrays of `ml_dtypes.bfloat16`): files may hold BF16
(half the bytes). Conversion rounds to nearest even, like PyTorch's .to(torch.bfloat16); NaN stays a quiet
NaN of the same sign."""

from __future__ import annotations

import os
from pathlib import Path

import ml_dtypes
import numpy as np

from .errors import DTypeError

_BF16 = np.dtype(ml_dtypes.bfloat16)

# safetensors dtype names <-> numpy; BF16 is handled by the two functions below
_ST = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip
_SPEC = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
         "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}  # fmt: skip


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 values as bfloat16 bit patterns (uint16), rounded to nearest even; NaN stays NaN."""
    return np.asarray(x, np.float32).astype(_BF16).view(np.uint16)


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) as float32 values (exact)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (still stored as float32)."""
    return from_bfloat16_bits(to_bfloat16_bits(x))


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype == _BF16


def _arrays(state) -> dict[str, np.ndarray]:
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    return {k: (v.numpy() if hasattr(v, "numpy") and not isinstance(v, np.ndarray) else np.asarray(v))
            for k, v in state.items()}  # fmt: skip


def save_safetensors(state, path: str | os.PathLike, dtype: str | None = None, metadata: dict | None = None) -> None:
    """Write a module's state dict (or a {name: Tensor/array} dict) to a .safetensors file.

    dtype="bfloat16" (or "float16", "float32") stores the float tensors in that format; without it each
    tensor keeps its own dtype (bfloat16 tensors as BF16). The file is written to a temporary name in the
    same folder and renamed, so a crash never leaves half a file."""
    from safetensors import TensorSpec, serialize_file

    if dtype not in (None, "float32", "float16", "bfloat16"):
        raise DTypeError(f"save_safetensors: dtype {dtype!r} must be float32, float16 or bfloat16")
    specs, keep = {}, []
    for name, a in _arrays(state).items():
        a = np.asarray(a).copy(order="C")  # (ascontiguousarray would turn a 0-d tensor into 1-d)
        if _is_float(a) and dtype is not None:
            a = a.astype(np.float32).astype({"bfloat16": _BF16, "float16": np.float16, "float32": np.float32}[dtype])
        if a.dtype == _BF16:
            a, st = a.view(np.uint16), "BF16"
        else:
            st = next((k for k, v in _ST.items() if np.dtype(v) == a.dtype), None)
            if st is None:
                raise DTypeError(f"save_safetensors: {name} has unsupported dtype {a.dtype}")
        keep.append(a)
        specs[name] = TensorSpec(dtype=_SPEC[st], shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        serialize_file(specs, str(tmp), {k: str(v) for k, v in (metadata or {}).items()} or None)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed save leaves neither a half-written file nor its temporary
        raise


def load_safetensors(path: str | os.PathLike, keep_bfloat16: bool = False) -> dict[str, np.ndarray]:
    """{name: numpy array} from a .safetensors file; BF16 tensors come back as float32 (exact), or with
    keep_bfloat16 as `ml_dtypes.bfloat16` arrays (a Tensor made from one is a bfloat16 tensor)."""
    from safetensors import SafetensorError, deserialize

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"load_safetensors: no file {p}")
    try:
        items = deserialize(p.read_bytes())
    except SafetensorError as e:
        raise DTypeError(f"load_safetensors: {p} is not a valid safetensors file ({e})") from None
    out = {}
    for name, info in items:
        st, shape, data = info["dtype"], tuple(info["shape"]), info["data"]
        if st == "BF16":
            bits = np.frombuffer(data, np.uint16).reshape(shape)
            out[name] = bits.view(_BF16).copy() if keep_bfloat16 else from_bfloat16_bits(bits)
        elif st in _ST:
            out[name] = np.frombuffer(data, _ST[st]).reshape(shape).copy()
        else:
            raise DTypeError(f"load_safetensors: {p}: {name} has dtype {st}; supported: BF16, {', '.join(_ST)}")
    return out
