"""Maps the elementwise (and one reduce) part of a kernel onto the vector unit's ops, or says why it cannot.

The vector unit works on accumulator rows in the accumulator dtype (int32 on int8 designs, fp32 on float
designs): add, mul, max, min with a row or an immediate operand, shl, a rounding shr, relu, and on designs
with special functions exp2, recip and sqrt. A node maps when its dtype is the accumulator dtype and its op
(or a small pattern: `where(x < y, x, y)` is min, `(x + 2^(s-1)) >> s` is the rounding shr) has a vector op.
A final cast to the design's input dtype becomes a narrowing store when the value is provably in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..lazy import Node
from ..ops import Ops
from .host_values import chain_base, is_leaf_chain, leaf_value

__all__ = ["VecStep", "VecPlan", "plan_vector", "acc_dtype_name"]

_COMMUTATIVE = {"add", "mul", "max", "min"}


@dataclass
class VecStep:
    """One vec instruction over a chunk: dst = op(src, src2 or imm); `phase` says before or after the reduce."""

    op: str
    dst: int
    src: int
    src2: int | None = None
    imm: float | int | None = None
    phase: str = "pre"


@dataclass
class VecPlan:
    """Slots (accumulator regions) for leaves and values, the vec steps, the reduce and the output slot."""

    leaves: list[tuple[int, Node, str]] = field(default_factory=list)  # (slot, leaf-chain node, phase)
    steps: list[VecStep] = field(default_factory=list)
    slot_phase: dict[int, str] = field(default_factory=dict)
    reduce: str | None = None  # "add" or "max": rows of the pre-reduce slot are combined into its first rows
    reduce_slot: int | None = None
    reduce_out: int | None = None  # the post slot that names the reduced rows (the first rows of reduce_slot)
    out_slot: int = -1
    narrow: bool = False  # store converts to the input dtype (int8 saturating / fp16 / bf16 rounding)


def acc_dtype_name(design) -> str:
    """The compiler dtype name of the design's accumulator: int32 or float32."""
    return "float32" if design.is_float else "int32"


class _Unsupported(Exception):
    pass


def _const(n: Node, leaf_ids: set[int]) -> float | int | None:
    """The scalar of a leaf chain over a CONST, else None."""
    if not is_leaf_chain(n, leaf_ids) or chain_base(n, leaf_ids).op != Ops.CONST:
        return None
    v = np.asarray(leaf_value(n, leaf_ids)).reshape(-1)
    return v[0].item() if v.size else None


def _same(a: Node, b: Node, leaf_ids: set[int]) -> bool:
    """The same value: one node, or two constants equal everywhere."""
    if a is b:
        return True
    ca = _const(a, leaf_ids)
    return ca is not None and a.shape == b.shape and ca == _const(b, leaf_ids)


def value_range(n: Node, leaf_ids: set[int]) -> tuple[float, float]:
    """Bounds of a node's values known from its structure (constants, max, min), else (-inf, inf)."""
    c = _const(n, leaf_ids)
    if c is not None:
        return float(c), float(c)
    if n.realized or n.id in leaf_ids or not n.src:
        if n.dtype.name in ("int8", "uint8"):
            info = np.iinfo(n.dtype.np)
            return float(info.min), float(info.max)
        if n.realized and n.dtype.is_int and n.size:  # a stored activation: its actual values
            v = n.buffer.numpy()
            return float(v.min()), float(v.max())
        return (0.0, 1.0) if n.dtype.name == "bool" else (-math.inf, math.inf)
    if n.op == Ops.CAST and n.src[0].dtype.name in ("int8", "uint8", "bool"):
        info = np.iinfo(n.src[0].dtype.np) if n.src[0].dtype.name != "bool" else None
        return (float(info.min), float(info.max)) if info is not None else (0.0, 1.0)
    if n.op in (Ops.RESHAPE, Ops.PERMUTE, Ops.EXPAND, Ops.SHRINK, Ops.FLIP, Ops.REDUCE_MAX):
        return value_range(n.src[0], leaf_ids)
    if n.op == Ops.MAX:
        (la, ha), (lb, hb) = (value_range(s, leaf_ids) for s in n.src)
        return max(la, lb), max(ha, hb)
    if n.op == Ops.ADD:
        (la, ha), (lb, hb) = (value_range(s, leaf_ids) for s in n.src)
        return la + lb, ha + hb
    if n.op == Ops.WHERE and n.src[0].op == Ops.CMPLT:
        p, q = n.src[0].src
        if _same(n.src[1], p, leaf_ids) and _same(n.src[2], q, leaf_ids) or \
                _same(n.src[1], q, leaf_ids) and _same(n.src[2], p, leaf_ids):
            (la, ha), (lb, hb) = value_range(p, leaf_ids), value_range(q, leaf_ids)
            if _same(n.src[1], p, leaf_ids):  # min
                return min(la, lb), min(ha, hb)
            return max(la, lb), max(ha, hb)
    return -math.inf, math.inf


def plan_vector(root: Node, leaf_ids: set[int], design, reduce: Node | None = None) -> VecPlan | str:
    """The vector-unit plan computing `root` from the leaves, or a one-line reason why it cannot run there."""
    try:
        return _Planner(design, leaf_ids, reduce).plan(root)
    except _Unsupported as exc:
        return str(exc)


class _Planner:
    def __init__(self, design, leaf_ids: set[int], reduce: Node | None):
        self.design, self.leaf_ids, self.reduce = design, leaf_ids, reduce
        self.acc = acc_dtype_name(design)
        self.p = VecPlan()
        self.slots: dict[int, int] = {}
        self.phase = "post" if reduce is not None else "pre"

    def _new(self, phase: str) -> int:
        s = len(self.p.slot_phase)
        self.p.slot_phase[s] = phase
        return s

    def plan(self, root: Node) -> VecPlan:
        narrow_types = {"int8": "int8", "fp16": "float16"}
        src = root
        def skip(n: Node) -> Node:
            while n.op == Ops.RESHAPE and n.id not in self.leaf_ids:
                n = n.src[0]  # layouts follow the flat element order, which a reshape keeps
            return n

        src = skip(src)
        # int8 values stored as int32 (a cast back to int32 for the next matmul): store them narrow
        widened = src.op == Ops.CAST and src.dtype.name == self.acc == "int32" and skip(src.src[0]).op == Ops.CAST \
            and skip(src.src[0]).dtype.name == "int8"
        if widened:
            src = skip(src.src[0])
        if src.op == Ops.CAST and src.dtype.name == narrow_types.get(self.design.matrix.input_dtype):
            lo, hi = value_range(src.src[0], self.leaf_ids)
            if src.dtype.name == "int8" and not (-128 <= lo and hi <= 127):
                raise _Unsupported("cast to int8 of a value not clamped to [-128, 127] (the store saturates)")
            self.p.narrow, src = True, src.src[0]
        elif widened:
            raise _Unsupported("cast to int8 on a float design")
        out = self.value(src, "post" if self.reduce is not None else "pre")
        loaded = {s for s, _, _ in self.p.leaves}
        if self.p.reduce_out is not None and self.p.reduce_slot in loaded:
            loaded.add(self.p.reduce_out)
        # the stored slot is never a loaded one: a load two chunks on would overwrite it before the store
        if self.p.slot_phase[out] != ("post" if self.reduce is not None else "pre") or out in loaded:
            fresh = self._new(self.p.slot_phase[out])
            zero = 0.0 if self.design.is_float else 0
            self.p.steps.append(VecStep("add", fresh, out, imm=zero, phase=self.p.slot_phase[out]))
            out = fresh
        self.p.out_slot = out
        if all(chain_base(n, self.leaf_ids).op == Ops.CONST for _, n, _ in self.p.leaves):
            raise _Unsupported("constants only: nothing for the vector unit to load")
        return self.p

    def leaf(self, n: Node, phase: str) -> int:
        if n.dtype.name != self.acc:
            raise _Unsupported(f"operand dtype {n.dtype.name} is not the accumulator's {self.acc}")
        s = self._new(phase)
        self.p.leaves.append((s, n, phase))
        self.slots[n.id] = s
        return s

    def value(self, n: Node, phase: str) -> int:
        if n.id in self.slots:
            return self.slots[n.id]
        if self.reduce is not None and n is self.reduce:
            s = self._reduce(n)
        elif is_leaf_chain(n, self.leaf_ids):
            return self.leaf(n, phase)  # a constant here (no immediate slot) is loaded as a repeated row
        else:
            s = self._alu(n, phase)
        self.slots[n.id] = s
        return s

    def _reduce(self, n: Node) -> int:
        if n.op not in (Ops.SUM, Ops.REDUCE_MAX):
            raise _Unsupported(f"reduce {n.op.name}")
        if n.dtype.name != self.acc:
            raise _Unsupported(f"{n.op.name} in {n.dtype.name}, not the accumulator's {self.acc}")
        s = self.value(n.src[0], "pre")  # the tree may fold a loaded slot in place: the next load waits for it
        self.p.reduce, self.p.reduce_slot = ("add" if n.op == Ops.SUM else "max"), s
        t = self._new("post")  # the first rows of s after the tree; aliased by the program builder
        self.p.reduce_out = t
        return t

    def _binary(self, op: str, a: Node, b: Node, phase: str, n: Node) -> int:
        ca, cb = _const(a, self.leaf_ids), _const(b, self.leaf_ids)
        if ca is not None and cb is None and op in _COMMUTATIVE:
            a, b, ca, cb = b, a, cb, ca
        if ca is not None:
            raise _Unsupported(f"{n.op.name} with a constant first operand")
        src = self.value(a, phase)
        dst = self._new(phase)
        if cb is not None:
            self.p.steps.append(VecStep(op, dst, src, imm=self._imm(cb), phase=phase))
        else:
            self.p.steps.append(VecStep(op, dst, src, self.value(b, phase), phase=phase))
        return dst

    def _imm(self, v) -> float | int:
        if self.design.is_float:
            return float(v)
        v = int(v)
        if not -(2**31) <= v < 2**31:
            raise _Unsupported(f"immediate {v} does not fit int32")
        return v

    def _unary(self, op: str, a: Node, phase: str, imm=None) -> int:
        src = self.value(a, phase)
        dst = self._new(phase)
        self.p.steps.append(VecStep(op, dst, src, imm=imm, phase=phase))
        return dst

    def _trunc(self, y: Node, phase: str) -> int:
        """float(int(y)) for y known to lie in [1, 2^22): round to an integer through 2^23, then subtract 1
        where that rounded up. Every step is exact in fp32: the rounding error d = r - y is a multiple of
        ulp(lower bound), so d * (1 / that ulp) clamped to [0, 1] is 1 exactly when r > y."""
        lo, hi = value_range(y, self.leaf_ids)
        if not (1.0 <= lo and hi < 2.0**22):
            raise _Unsupported(f"float->int cast of values in [{lo}, {hi}] (the vector unit truncates only [1, 2^22))")
        big = 2.0 ** (23 - math.floor(math.log2(lo)))
        src = self.value(y, phase)
        seq = [("add", 2.0**23), ("add", -(2.0**23))]
        r = src
        for op, imm in seq:
            dst = self._new(phase)
            self.p.steps.append(VecStep(op, dst, r, imm=imm, phase=phase))
            r = dst
        d = self._new(phase)
        self.p.steps.append(VecStep("sub", d, r, src, phase=phase))
        cur = d
        for op, imm in (("mul", big), ("max", 0.0), ("min", 1.0)):
            dst = self._new(phase)
            self.p.steps.append(VecStep(op, dst, cur, imm=imm, phase=phase))
            cur = dst
        out = self._new(phase)
        self.p.steps.append(VecStep("sub", out, r, cur, phase=phase))
        return out

    def _alu(self, n: Node, phase: str) -> int:
        if n.op == Ops.RESHAPE and (phase == "post" or self.reduce is None):
            return self.value(n.src[0], phase)  # layouts follow the flat element order, which a reshape keeps
        if n.dtype.name != self.acc:
            raise _Unsupported(f"{n.op.name} in {n.dtype.name}, not the accumulator's {self.acc}")
        special = self.design.vector.special_functions
        if n.op == Ops.ADD:
            return self._binary("add", n.src[0], n.src[1], phase, n)
        if n.op == Ops.MUL:
            return self._binary("mul", n.src[0], n.src[1], phase, n)
        if n.op == Ops.MAX:
            return self._binary("max", n.src[0], n.src[1], phase, n)
        if n.op == Ops.NEG:
            return self._unary("mul", n.src[0], phase, imm=-1.0 if self.design.is_float else -1)
        if n.op == Ops.WHERE and n.src[0].op == Ops.CMPLT:
            p, q = n.src[0].src
            if _same(n.src[1], p, self.leaf_ids) and _same(n.src[2], q, self.leaf_ids):
                return self._binary("min", p, q, phase, n)
            if _same(n.src[1], q, self.leaf_ids) and _same(n.src[2], p, self.leaf_ids):
                return self._binary("max", p, q, phase, n)
        if n.op in (Ops.EXP2, Ops.RECIP, Ops.SQRT):
            if not special:
                raise _Unsupported(f"{n.op.name} needs vector.special_functions")
            return self._unary(n.op.name.lower(), n.src[0], phase)
        if n.op == Ops.CAST and self.design.is_float and n.src[0].op == Ops.CAST and n.src[0].dtype.name == "int32" \
                and n.src[0].src[0].dtype.name == "float32":
            return self._trunc(n.src[0].src[0], phase)
        if n.op == Ops.SHL and not self.design.is_float:
            s = _const(n.src[1], self.leaf_ids)
            if s is not None and 0 <= s <= 31:
                return self._unary("shl", n.src[0], phase, imm=int(s))
        if n.op == Ops.SHR and not self.design.is_float:
            s, inner = _const(n.src[1], self.leaf_ids), n.src[0]
            if s is not None and 1 <= s <= 31 and inner.op == Ops.ADD:
                h = _const(inner.src[1], self.leaf_ids)
                if h == 1 << (int(s) - 1):  # (x + 2^(s-1)) >> s: the unit's rounding shift
                    return self._unary("shr", inner.src[0], phase, imm=int(s))
        raise _Unsupported(f"{n.op.name} ({n.dtype.name}) has no vector-unit op on this design")
