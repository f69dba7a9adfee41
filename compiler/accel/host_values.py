"""Host-side values of a kernel's operands: view/cast chains over realized buffers, evaluated with numpy.

The accelerator's DMA moves rows; the layout an operand needs (a transpose, a broadcast, an im2col window,
a widening cast) is prepared on the host when the DRAM image is built, and its bytes are accounted as host
layout traffic by the runtime. These helpers evaluate such chains without materializing broadcasts.
"""

from __future__ import annotations

import numpy as np

from ..lazy import Node
from ..ops import MOVEMENT, Ops

__all__ = ["is_leaf_chain", "leaf_value", "chain_base"]


def is_leaf_chain(n: Node, leaf_ids: set[int]) -> bool:
    """True when n is a kernel input, a constant, or movement/cast ops down to one of those."""
    while True:
        if n.id in leaf_ids or n.realized or n.op == Ops.CONST:
            return True
        if n.op not in MOVEMENT and n.op != Ops.CAST:
            return False
        n = n.src[0]


def chain_base(n: Node, leaf_ids: set[int]) -> Node:
    """The input buffer or constant at the bottom of a leaf chain."""
    while not (n.id in leaf_ids or n.realized or n.op == Ops.CONST):
        n = n.src[0]
    return n


def _move(n: Node, v: np.ndarray) -> np.ndarray:
    if n.op == Ops.RESHAPE:
        return v.reshape(n.arg)
    if n.op == Ops.PERMUTE:
        return v.transpose(n.arg)
    if n.op == Ops.EXPAND:
        return np.broadcast_to(v, n.arg)  # a stride-0 view: no copy
    if n.op == Ops.PAD:
        return np.pad(v, n.arg)
    if n.op == Ops.SHRINK:
        return v[tuple(slice(b, e) for b, e in n.arg)]
    if n.op == Ops.FLIP:
        return np.flip(v, n.arg)
    if n.op == Ops.CAST:
        return v.astype(n.dtype.np)
    raise ValueError(f"{n.op} is not a view or cast")


def leaf_value(n: Node, leaf_ids: set[int], values: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The value of a leaf chain as a (possibly broadcast, read-only) numpy array of n.shape.

    values: arrays for leaves that are not realized buffers (a GEMM's result under its epilogue), by node id.
    """
    chain = []
    while not (n.id in leaf_ids or n.realized or n.op == Ops.CONST):
        chain.append(n)
        n = n.src[0]
    if values and n.id in values:
        v = values[n.id].reshape(n.shape)
    elif n.op == Ops.CONST:
        v = np.broadcast_to(np.array(n.arg, dtype=n.dtype.np), n.shape)
    else:
        v = n.buffer.numpy().reshape(n.shape)
    with np.errstate(all="ignore"):
        for m in reversed(chain):
            v = _move(m, v)
    return v
