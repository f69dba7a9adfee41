"""Index math on the kernel IR: row-major positions, how each view maps an index to its source, and which
positions and bounds a value's reads use (what a renderer would emit, answered without rendering)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .kernel_ir import Kernel
from .lazy import Node
from .ops import MOVEMENT, REDUCE, Ops
from .symbolic import Lin


def contiguous_strides(shape: tuple) -> list[int]:
    """Row-major strides of shape, 0 for size-1 axes (their index never matters)."""
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc if s > 1 else 0)
        acc *= s
    return strides[::-1]


def linear(idx: tuple, shape: tuple) -> Lin:
    """Row-major position of idx in a contiguous array of shape."""
    lin = Lin()
    for i, s in zip(idx, contiguous_strides(shape), strict=True):
        lin = lin + i * s
    return lin


def unravel(lin: Lin, shape: tuple) -> tuple:
    """The index in shape of row-major position lin."""
    return tuple(
        lin.floordiv(st).mod(sz) if sz > 1 else Lin()
        for st, sz in zip(contiguous_strides(shape), shape, strict=True)
    )


def view_index(n: Node, idx: tuple) -> tuple[tuple, list[tuple[Lin, int, int]]]:
    """For a view node n read at idx: the index into n.src[0], and the bounds (x, lo, hi) meaning
    lo <= x < hi that the read needs to be in range (PAD only; outside them the value is 0)."""
    op, src = n.op, n.src[0]
    if op == Ops.RESHAPE:
        if tuple(d for d in n.shape if d != 1) == tuple(d for d in src.shape if d != 1):
            # only size-1 axes come or go: the other axes keep their indices. Linearizing would wrap an
            # index that a PAD further down lets go out of range (a conv's border) into divisions
            kept = iter([i for i, d in zip(idx, n.shape, strict=True) if d != 1])
            return tuple(Lin() if d == 1 else next(kept) for d in src.shape), []
        return unravel(linear(idx, n.shape), src.shape), []
    if op == Ops.PERMUTE:
        sidx = [Lin()] * len(idx)
        for i, a in enumerate(n.arg):
            sidx[a] = idx[i]
        return tuple(sidx), []
    if op == Ops.EXPAND:
        return tuple(Lin() if s == 1 else i for i, s in zip(idx, src.shape, strict=True)), []
    if op == Ops.SHRINK:
        return tuple(i + b for i, (b, _) in zip(idx, n.arg, strict=True)), []
    if op == Ops.FLIP:
        return tuple(
            (-i + (s - 1)) if a in n.arg else i for a, (i, s) in enumerate(zip(idx, n.shape, strict=True))
        ), []
    if op == Ops.PAD:
        bounds = [(i, b, b + s) for i, (b, _), s in zip(idx, n.arg, src.shape, strict=True)]
        return tuple(i - b for i, (b, _) in zip(idx, n.arg, strict=True)), bounds
    raise ValueError(f"{op} is not a view")



def input_read(k: Kernel, node: Node, idx: tuple) -> tuple[Node, tuple, list] | None:
    """node of kernel k read at idx, traced through views to the kernel input it reads: (input, index
    into it, PAD bounds (x, lo, hi) the read needs), or None when a non-view op is on the way."""
    inputs = {i.id for i in k.inputs}
    n, ix, bounds = node, idx, []
    while not (n.id in inputs and n is not k.out):
        if n.op not in MOVEMENT:
            return None
        ix, b = view_index(n, ix)
        bounds += b
        n = n.src[0]
    return n, ix, bounds

def _never(x: Lin, lo: int, hi: int) -> bool:
    return x.hi < lo or x.lo >= hi


def _always(x: Lin, lo: int, hi: int) -> bool:
    return x.lo >= lo and x.hi < hi


@dataclass
class Reads:
    """What computing a value at an index touches: the buffer loads, the range checks, and whether any
    arithmetic is done (False for a view of one buffer or a constant)."""

    loads: list = field(default_factory=list)  # (buffer Node, position Lin)
    checks: list = field(default_factory=list)  # Lins that a PAD compares against its bounds
    computes: bool = False

    def index_exprs(self) -> list[Lin]:
        """Every index expression the value's code contains: load positions, then checked indices."""
        return [lin for _, lin in self.loads] + self.checks

    def variables(self) -> set[str]:
        """Names of the loop variables any of those expressions uses."""
        return set().union(*(lin.variables() for lin in self.index_exprs()))


def reads(k: Kernel, node: Node, idx: tuple) -> Reads:
    """The loads, range checks and arithmetic of computing node (a value inside k) at idx; reads stop at
    k's input buffers, and a PAD that is out of range everywhere reads nothing."""
    inputs = {i.id for i in k.inputs}
    out = Reads()
    seen: set = set()
    stack = [(node, idx)]
    while stack:
        n, ix = stack.pop()
        if (n.id, ix) in seen:
            continue
        seen.add((n.id, ix))
        if n.id in inputs and n is not k.out:
            out.loads.append((n, linear(ix, n.shape)))
        elif n.op == Ops.CONST:
            continue
        elif n.op in MOVEMENT:
            sidx, bounds = view_index(n, ix)
            if any(_never(*b) for b in bounds):
                continue
            out.checks += [x for x, lo, hi in bounds if not _always(x, lo, hi)]
            stack.append((n.src[0], sidx))
        elif n.op in REDUCE:
            raise ValueError(f"reads: {n.op} inside a value of kernel {k.name} has its own loop")
        elif n.op == Ops.GATHER:  # the gathered axis is read at a loaded (data-dependent) position
            out.computes = True
            size = n.src[0].shape[n.arg]
            sidx = tuple(Lin.var(f"gather{n.id}", size) if a == n.arg else j for a, j in enumerate(ix))
            stack.extend([(n.src[1], ix), (n.src[0], sidx)])
        else:
            out.computes = True
            stack.extend((s, ix) for s in n.src)
    return out
