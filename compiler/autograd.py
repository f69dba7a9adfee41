"""Reverse-mode autograd over the primitive ops: one backward rule per op in ops.py.

Every Tensor method is composed from the primitive ops, so it is differentiable through these rules. A
rule maps (node, gradient of the node) to one gradient per source (None where a source gets none), and
builds it from primitive ops too, so backward graphs are scheduled, fused and run like forward ones.

The one exception is a `Composite`: a method whose composed gradient is correct but has a much faster
form the primitive rules cannot find (conv2d: the composed input gradient is a sum into a window gradient
and a fold back onto the image; as a transposed convolution it runs in the GEMM template). Its forward
graph stays primitive; `record_composite` makes backward treat the result as one op with its own rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import lazy
from .device import to_device
from .errors import CompilerError
from .lazy import GradMode, Node, toposort
from .ops import Ops

_LN2 = math.log(2.0)


@contextmanager
def no_grad() -> Iterator[None]:
    """Within this block new nodes record no graph for backward (inference, optimizer updates)."""
    prev = GradMode.enabled
    GradMode.enabled = False
    try:
        yield
    finally:
        GradMode.enabled = prev


@contextmanager
def enable_grad() -> Iterator[None]:
    """Within this block graphs are recorded again, even inside no_grad."""
    prev = GradMode.enabled
    GradMode.enabled = True
    try:
        yield
    finally:
        GradMode.enabled = prev


# --- node helpers (the rules are written with these; all of them are primitive ops) ---------------
def _const(v: float, like: Node) -> Node:
    return lazy.const(v, like.shape, like.dtype, like.device)


def _add(a: Node, b: Node) -> Node:
    return lazy.alu(Ops.ADD, a, b)


def _mul(a: Node, b: Node) -> Node:
    return lazy.alu(Ops.MUL, a, b)


def _neg(a: Node) -> Node:
    return lazy.alu(Ops.NEG, a)


def _recip(a: Node) -> Node:
    return lazy.alu(Ops.RECIP, a)


def _where(c: Node, a: Node, b: Node) -> Node:
    return lazy.alu(Ops.WHERE, c, a, b)


def _eq(a: Node, b: Node) -> Node:
    return lazy.alu(Ops.NEG, lazy.alu(Ops.CMPNE, a, b))


def _sum_to(g: Node, shape: tuple) -> Node:
    """g summed over the axes that were broadcast from size 1 to reach g.shape (shape has g's rank)."""
    axes = tuple(i for i, (s, t) in enumerate(zip(shape, g.shape, strict=True)) if s == 1 and t != 1)
    return lazy.reduce(Ops.SUM, g, axes)


def _expand(g: Node, shape: tuple) -> Node:
    return lazy.movement(Ops.EXPAND, g, shape)


# --- the rules: (node, its gradient, its sources) -> one gradient (or None) per source --------------
def _max_share(a: Node, b: Node) -> Node:
    """The share of MAX's gradient that goes to a: 1 where a wins, 1/2 on ties, 0 where b wins."""
    win = lazy.cast(lazy.alu(Ops.CMPLT, b, a), a.dtype)
    tie = lazy.cast(_eq(a, b), a.dtype)
    return _add(win, _mul(tie, _const(0.5, a)))


def _reduce_max(n: Node, axes: tuple, g: Node, x: Node) -> Node:
    # the gradient is split evenly between the elements equal to the maximum
    hit = lazy.cast(_eq(x, _expand(n, x.shape)), x.dtype)
    share = _mul(g, _recip(lazy.reduce(Ops.SUM, hit, axes)))
    return _mul(hit, _expand(share, x.shape))


def _gather(ax: int, g: Node, x: Node, idx: Node) -> Node:
    """Scatter-add of g into x's shape along the gathered axis, as a compare-and-sum over positions."""
    size, k = x.shape[ax], idx.shape[ax]
    # shapes with an extra axis right after `ax`: target position (size) x gathered position (k)
    shp = x.shape[:ax] + (size, k) + x.shape[ax + 1 :]
    ar = lazy.movement(Ops.RESHAPE, _arange(size, idx), (1,) * ax + (size, 1) + (1,) * (len(x.shape) - ax - 1))
    pos = _expand(ar, shp)

    def spread(t: Node) -> Node:  # (..., k, ...) -> (..., size, k, ...)
        t = lazy.movement(Ops.RESHAPE, t, t.shape[:ax] + (1, k) + t.shape[ax + 1 :])
        return _expand(t, shp)

    hit = _eq(spread(idx), pos)
    out = lazy.reduce(Ops.SUM, _where(hit, spread(g), lazy.const(0.0, shp, g.dtype, g.device)), (ax + 1,))
    return lazy.movement(Ops.RESHAPE, out, x.shape)


def _arange(n: int, like: Node) -> Node:
    """0..n-1 as a buffer of like's dtype on like's device."""
    return lazy.load(
        to_device(np.arange(n, dtype=like.dtype.np), like.dtype, like.device), (n,), like.dtype, like.device
    )


def _inverse(perm: tuple) -> tuple:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


# a rule gets (node, its op's arg, the node's gradient, *sources); the node stands for its own value
Rule = Callable[..., tuple]


@dataclass(frozen=True)
class Composite:
    """A Tensor method recorded for backward as one op with its own rule (see the module docstring)."""

    name: str
    rule: Rule


def record_composite(out: Node, comp: Composite, arg, srcs: tuple) -> None:
    """Make backward reach srcs from out through comp.rule instead of through out's primitive graph.

    out must be a node made by the composite method itself (no one else holds it yet)."""
    if out.requires_grad and out.ad is not None:
        out.ad = (comp, arg, srcs)

RULES: dict[Ops, Rule] = {
    Ops.ADD: lambda n, arg, g, a, b: (g, g),
    Ops.MUL: lambda n, arg, g, a, b: (_mul(g, b), _mul(g, a)),
    Ops.NEG: lambda n, arg, g, a: (_neg(g),),
    Ops.RECIP: lambda n, arg, g, a: (_neg(_mul(g, _mul(n, n))),),
    Ops.EXP2: lambda n, arg, g, a: (_mul(g, _mul(n, _const(_LN2, n))),),
    Ops.LOG2: lambda n, arg, g, a: (_mul(g, _recip(_mul(a, _const(_LN2, a)))),),
    Ops.SQRT: lambda n, arg, g, a: (_mul(g, _recip(_mul(n, _const(2.0, n)))),),
    Ops.SIN: lambda n, arg, g, a: (_mul(g, lazy.alu(Ops.SIN, _add(_neg(a), _const(math.pi / 2, a)))),),
    Ops.MAX: lambda n, arg, g, a, b: (_mul(g, _max_share(a, b)), _mul(g, _max_share(b, a))),
    Ops.WHERE: lambda n, arg, g, c, a, b: (None, _where(c, g, _const(0.0, g)), _where(c, _const(0.0, g), g)),
    Ops.CAST: lambda n, arg, g, a: (lazy.cast(g, a.dtype) if a.dtype.is_float else None,),
    Ops.SUM: lambda n, arg, g, a: (_expand(g, a.shape),),
    Ops.REDUCE_MAX: lambda n, arg, g, a: (_reduce_max(n, arg, g, a),),
    Ops.RESHAPE: lambda n, arg, g, a: (lazy.movement(Ops.RESHAPE, g, a.shape),),
    Ops.PERMUTE: lambda n, arg, g, a: (lazy.movement(Ops.PERMUTE, g, _inverse(arg)),),
    Ops.EXPAND: lambda n, arg, g, a: (_sum_to(g, a.shape),),
    Ops.PAD: lambda n, arg, g, a: (
        lazy.movement(Ops.SHRINK, g, tuple((b, b + s) for (b, _), s in zip(arg, a.shape, strict=True))),
    ),
    Ops.SHRINK: lambda n, arg, g, a: (
        lazy.movement(Ops.PAD, g, tuple((b, s - e) for (b, e), s in zip(arg, a.shape, strict=True))),
    ),
    Ops.FLIP: lambda n, arg, g, a: (lazy.movement(Ops.FLIP, g, arg),),
    Ops.GATHER: lambda n, arg, g, x, idx: (_gather(arg, g, x, idx), None),
}
# ops with no gradient: comparisons, integer and bitwise ops give non-float results (never tracked)
NO_GRADIENT = frozenset({Ops.CMPLT, Ops.CMPNE, Ops.IDIV, Ops.MOD, Ops.AND, Ops.OR, Ops.XOR, Ops.SHL, Ops.SHR})
LEAVES = frozenset({Ops.LOAD, Ops.CONST})


def _graph(root: Node) -> list[Node]:
    """The nodes that need a gradient, reachable from root through recorded sources, sources first."""
    return toposort([root], sources=lambda n: [s for s in (n.ad[2] if n.ad is not None else ()) if s.requires_grad])


def gradients(root: Node, grad: Node | None = None, retain_graph: bool = False) -> dict[int, tuple[Node, Node]]:
    """d(root)/d(leaf) for every leaf that requires grad: {leaf id: (leaf, gradient node)}.

    grad is the gradient flowing into root (ones for a one-element root when None). The graph behind
    root is freed afterwards unless retain_graph, like PyTorch."""
    if not root.requires_grad:
        raise CompilerError(
            "backward: this tensor does not require grad (no parameter with requires_grad=True feeds it, "
            "it was built under no_grad(), or its graph was freed by an earlier backward())"
        )
    if grad is None:
        if math.prod(root.shape) != 1:
            raise CompilerError(f"backward: a tensor of shape {root.shape} needs a gradient argument")
        grad = _const(1.0, root)
    elif grad.shape != root.shape:
        raise CompilerError(f"backward: gradient shape {grad.shape} does not match tensor shape {root.shape}")
    order = _graph(root)
    grads: dict[int, Node] = {root.id: lazy.cast(grad, root.dtype)}
    leaves: dict[int, tuple[Node, Node]] = {}
    with no_grad():
        for n in reversed(order):
            g = grads.pop(n.id, None)
            if g is None:
                continue
            if n.ad is None:
                leaves[n.id] = (n, g)
                continue
            op, arg, srcs = n.ad
            rule = op.rule if isinstance(op, Composite) else RULES[op]
            outs = rule(n, arg, g, *srcs)
            for s, gs in zip(srcs, outs, strict=True):
                if gs is None or not s.requires_grad:
                    continue
                grads[s.id] = _add(grads[s.id], gs) if s.id in grads else gs
    if not retain_graph:
        for n in order:
            if n.ad is not None:
                n.ad, n.requires_grad = None, False
    return leaves
