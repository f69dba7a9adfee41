"""The REF device: evaluates the primitive-op graph node by node with numpy, the oracle for every test."""

from __future__ import annotations

import math

import numpy as np

from .dtypes import dtypes
from .errors import CompilerError
from .lazy import Node, toposort
from .ops import MOVEMENT, Ops

_BF16 = np.dtype(dtypes.bfloat16.np)


def _idiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # in int64, like C promotes char to int: abs(-128) must not overflow
    a64, safe = a.astype(np.int64), np.where(b == 0, 1, b).astype(np.int64)
    q = np.abs(a64) // np.abs(safe)  # truncation toward zero, like C
    q = np.where((a64 < 0) != (safe < 0), -q, q)
    return np.where(b == 0, 0, q).astype(a.dtype)


def _mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    safe = np.where(b == 0, 1, b).astype(np.int64)
    return np.where(b == 0, 0, a.astype(np.int64) - _idiv(a, safe).astype(np.int64) * safe).astype(a.dtype)


_UNARY = {
    Ops.EXP2: np.exp2,
    Ops.LOG2: np.log2,
    Ops.SIN: np.sin,
    Ops.SQRT: np.sqrt,
    Ops.RECIP: lambda x: np.reciprocal(x),
}
_BINARY = {
    Ops.ADD: np.add,
    Ops.MUL: np.multiply,
    Ops.MAX: np.maximum,
    Ops.CMPLT: np.less,
    Ops.CMPNE: np.not_equal,
    Ops.IDIV: _idiv,
    Ops.MOD: _mod,
    Ops.AND: np.bitwise_and,
    Ops.OR: np.bitwise_or,
    Ops.XOR: np.bitwise_xor,
    Ops.SHL: np.left_shift,
    Ops.SHR: np.right_shift,
}


def _neg(x: np.ndarray) -> np.ndarray:
    return np.logical_not(x) if x.dtype == np.bool_ else np.negative(x)


def eval_node(n: Node, v: list[np.ndarray], float_np=None) -> np.ndarray:
    """The value of one node given the values of its sources, with the node's dtype (float nodes in
    float_np instead when given: float64 evaluation is what gradient checks difference against).

    bfloat16 computes like the devices do: sources widened to float32, the op in float32, the result
    rounded to bfloat16 (nearest even) once."""
    dt = float_np if float_np is not None and n.dtype.is_float else n.dtype.np
    if n.op in MOVEMENT:  # views keep their dtype
        return _eval(n, v, dt, float_np)
    v = [x.astype(np.float32) if x.dtype == _BF16 else x for x in v]
    if n.dtype.name == "bfloat16" and float_np is None:
        return _eval(n, v, np.float32).astype(_BF16)
    return _eval(n, v, dt, float_np)


def _eval(n: Node, v: list[np.ndarray], dt, float_np=None) -> np.ndarray:
    if n.op == Ops.CONST:
        return np.full(n.shape, n.arg, dtype=dt)
    if n.op == Ops.NEG:
        return _neg(v[0])
    if n.op in _UNARY:
        return _UNARY[n.op](v[0]).astype(dt)
    if n.op in _BINARY:
        if n.op in (Ops.ADD, Ops.MUL) and n.dtype.name == "bool":
            return (np.logical_or if n.op == Ops.ADD else np.logical_and)(v[0], v[1])
        if n.op in (Ops.SHL, Ops.SHR):
            return _BINARY[n.op](v[0], np.clip(v[1], 0, 8 * v[0].itemsize - 1).astype(v[0].dtype)).astype(dt)
        return _BINARY[n.op](v[0], v[1]).astype(dt)
    if n.op == Ops.WHERE:
        return np.where(v[0], v[1], v[2]).astype(dt)
    if n.op == Ops.CAST:
        return v[0].astype(dt)
    if n.op == Ops.SUM:
        acc = (float_np or np.float32) if n.dtype.is_float else dt  # float16/bfloat16 sum in float32
        return np.sum(v[0], axis=n.arg, keepdims=True, dtype=acc).astype(dt)
    if n.op == Ops.REDUCE_MAX:
        return np.max(v[0], axis=n.arg, keepdims=True)
    if n.op == Ops.RESHAPE:
        return v[0].reshape(n.arg)
    if n.op == Ops.PERMUTE:
        return v[0].transpose(n.arg)
    if n.op == Ops.EXPAND:
        return np.broadcast_to(v[0], n.arg)
    if n.op == Ops.PAD:
        return np.pad(v[0], n.arg)
    if n.op == Ops.SHRINK:
        return v[0][tuple(slice(b, e) for b, e in n.arg)]
    if n.op == Ops.FLIP:
        return np.flip(v[0], n.arg)
    if n.op == Ops.GATHER:
        idx = np.clip(v[1], 0, v[0].shape[n.arg] - 1).astype(np.int64)
        return np.take_along_axis(v[0], idx, axis=n.arg)
    raise NotImplementedError(f"REF cannot evaluate {n.op}")


def evaluate(root: Node, float_np=None) -> np.ndarray:
    """Evaluate a graph with numpy; realized leaves are read from their host arrays (float values
    computed in float_np when given, e.g. np.float64)."""
    vals: dict[int, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for n in toposort([root]):
            if n.realized:
                vals[n.id] = n.buffer.numpy().reshape(n.shape)
                if float_np is not None and n.dtype.is_float:
                    vals[n.id] = vals[n.id].astype(float_np)
            else:
                try:
                    vals[n.id] = eval_node(n, [vals[s.id] for s in n.src], float_np)
                except MemoryError:  # e.g. a 2048^3 matmul's product: 32 GiB; say so instead of numpy's bare error
                    size = max(math.prod(x.shape) for x in (n, *n.src))
                    raise CompilerError(
                        f"REF: {n.op.name} over {size:,} elements does not fit in host memory: the numpy reference "
                        "interpreter computes each op whole (a matmul as its M x N x K product); use smaller "
                        "sizes, or a compiled device such as CL") from None
    return np.ascontiguousarray(vals[root.id])
