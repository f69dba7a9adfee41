"""The lazy graph: one Node per primitive op, built by the Tensor frontend and consumed by the scheduler."""

from __future__ import annotations

import math
from itertools import count

from .dtypes import DType, dtypes
from .errors import DTypeError, ShapeError
from .ops import BINARY, FLOAT_ONLY, INT_ONLY, REDUCE, UNARY, Ops

_ids = count()

# Called with every new node while set (compiler.schedule_ahead arms it to launch a predicted plan's kernels
# as their outputs are built); None otherwise, so building a graph pays one global lookup per node
ON_NODE = None


class GradMode:
    """Whether new nodes record their sources for autograd (`compiler.autograd.no_grad` turns it off)."""

    enabled = True


class Node:
    """A primitive op with its sources, argument, shape, dtype and device; `buffer` is set once realized.

    `requires_grad` marks float nodes that depend on a parameter; such nodes keep (op, arg, sources) in
    `ad` (realizing turns a node into a LOAD without sources, but backward still needs the graph).

    `unit` is set on the output of a composite op rebuilt from its recorded graph (graph_template.py):
    (template number, the other nodes the rebuild made in order, the outside nodes its graph reads, fused), so
    schedule_cache.graph_key can describe the whole rebuild by one row instead of one per node. A packed
    rebuild made no other nodes: its `src` is PACKED and its unit (number, None, outside nodes read,
    template rows, the rows' inputs, the first id reserved for its inner nodes, fused) until `expand`.
    The last element, `fused`, is (kind, parameters, input nodes) where one kernel may compute the whole
    composite (schedule_attention.py), else None."""

    __slots__ = (
        "op", "src", "arg", "shape", "dtype", "device", "buffer", "id", "requires_grad", "ad", "unit",
        "__weakref__",
    )  # fmt: skip

    def __init__(self, op: Ops, src: tuple, arg, shape: tuple, dtype: DType, device: str, buffer=None):
        self.op, self.src, self.arg, self.shape, self.dtype, self.device = op, src, arg, shape, dtype, device
        self.buffer, self.id = buffer, next(_ids)
        track = False
        if GradMode.enabled:  # a loop, not any(generator): every op of every eager call passes here
            for s in src:
                if s.requires_grad:
                    track = dtype.is_float
                    break
        self.requires_grad, self.ad, self.unit = track, ((op, arg, src) if track else None), None
        if ON_NODE is not None:
            ON_NODE(self)

    @property
    def realized(self) -> bool:
        """True when the value lives in a device buffer (a LOAD leaf)."""
        return self.buffer is not None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self):
        return f"<Node {self.op.name} {self.shape} {self.dtype.name}{' realized' if self.realized else ''}>"


def next_id() -> int:
    """An id no node has or will have: every node made after this call has a larger one."""
    return next(_ids)


class _Packed:
    """The `src` of a composite's output rebuilt without its inner nodes (graph_template.py): not a tuple,
    so code that walks sources without calling `expand` first fails loudly instead of seeing a leaf."""

    __slots__ = ()

    def __repr__(self):
        return "<packed sources: lazy.expand(node) makes them>"


PACKED = _Packed()


def reserve_ids(count_: int) -> int:
    """The first of count_ consecutive ids that no node made later will take (a packed composite's inner
    nodes get them when expanded, so creation order stays an order sources-first)."""
    global _ids
    first = next(_ids)
    _ids = count(first + count_)
    return first


def expand(out: Node) -> None:
    """Make the inner nodes of a packed composite output (graph_template) and its real sources, in place;
    they take the ids reserved for them, so the graph is the one an unpacked rebuild makes."""
    global ON_NODE
    number, _, used, rows, env, first, fused = out.unit
    env = list(env)
    base = len(env)
    # made as they would have been while the composite was built: no gradient tracking (a packed composite
    # had none) and not seen by schedule_ahead (armed for a later stretch, not this one)
    hook, grad, ON_NODE, GradMode.enabled = ON_NODE, GradMode.enabled, None, False
    try:
        for k in range(len(rows) - 1):
            op, srcs, arg, shape, dtype, device, _rule = rows[k]
            n = Node(op, tuple([env[s] for s in srcs]), arg, shape, dtype, device)
            n.id = first + k
            env.append(n)
    finally:
        ON_NODE, GradMode.enabled = hook, grad
    out.src = tuple([env[s] for s in rows[-1][1]])
    out.unit = (number, tuple(env[base:]), used, fused)


def expand_all(roots: list[Node]) -> bool:
    """Expand every packed composite output below roots (unrealized nodes only); True if there was one."""
    seen: set[int] = set()
    stack = list(roots)
    found = False
    while stack:
        n = stack.pop()
        if n.id in seen or n.buffer is not None:
            continue
        seen.add(n.id)
        if n.src is PACKED:
            expand(n)
            found = True
        stack.extend(n.src)
    return found


def mark_realized(n: Node, buf) -> None:
    """Make n a LOAD leaf of buf: nothing may still see it as the op it was (a MUL with no sources)."""
    n.buffer, n.op, n.arg = buf, Ops.LOAD, None
    n.src, n.unit = (), None  # cut the graph so the inputs' memory can be freed


def const(value, shape: tuple, dtype: DType, device: str) -> Node:
    """A scalar broadcast to `shape`, stored as the dtype's Python type."""
    v = bool(value) if dtype == dtypes.bool else float(value) if dtype.is_float else int(value)
    return Node(Ops.CONST, (), v, tuple(shape), dtype, device)


def load(buffer, shape: tuple, dtype: DType, device: str) -> Node:
    """A realized buffer as a graph leaf."""
    return Node(Ops.LOAD, (), None, tuple(shape), dtype, device, buffer)


def _check_same(op: Ops, srcs) -> None:
    first = srcs[0]
    if all(s.shape == first.shape and s.device == first.device for s in srcs[1:]):
        return
    shapes = [s.shape for s in srcs]
    if any(sh != shapes[0] for sh in shapes):
        raise ShapeError(f"{op.name}: operand shapes {' and '.join(map(str, shapes))} differ")
    devs = {s.device for s in srcs}
    if len(devs) > 1:
        raise ShapeError(f"{op.name}: operands on different devices {sorted(devs)}; use .to(device)")


_ALU_OPS = UNARY | BINARY | {Ops.WHERE}  # once here: a set union per call cost a hash of every op
_BITWISE = frozenset({Ops.AND, Ops.OR, Ops.XOR})
_TYPED_OPS = FLOAT_ONLY | INT_ONLY | _BITWISE  # ops that accept only some dtypes
_COMPARES = frozenset({Ops.CMPLT, Ops.CMPNE})
_WHERE, _BOOL = Ops.WHERE, dtypes.bool


def alu(op: Ops, *srcs: Node) -> Node:
    """An elementwise op on operands of one shape; dtypes must already agree (the frontend casts)."""
    # every elementwise op of every eager call passes here: plain loops and identity tests first, the
    # messages only once something is wrong
    first = srcs[0]
    shape, device = first.shape, first.device
    for s in srcs:
        if s.shape != shape or s.device != device:
            _check_same(op, srcs)
    if op is _WHERE:
        if first.dtype is not _BOOL:
            raise DTypeError(f"WHERE: condition must be bool, got {first.dtype.name}")
        data = srcs[1:]
    else:
        data = srcs
    dt = data[0].dtype
    for d in data:
        if d.dtype is not dt and d.dtype != dt:
            raise DTypeError(f"{op.name}: operand dtypes {' and '.join(d.dtype.name for d in data)} differ")
    if op in _TYPED_OPS:
        if op in FLOAT_ONLY and not dt.is_float:
            raise DTypeError(f"{op.name}: needs a float operand, got {dt.name}")
        if op in INT_ONLY and not dt.is_int:
            raise DTypeError(f"{op.name}: needs an integer operand, got {dt.name}")
        if op in _BITWISE and dt.is_float:
            raise DTypeError(f"{op.name}: needs integer or bool operands, got {dt.name}")
    elif op not in _ALU_OPS:
        raise AssertionError(f"{op.name} is not an elementwise op")
    out = _BOOL if op in _COMPARES else dt
    return Node(op, srcs, None, shape, out, device)


def cast(x: Node, dtype: DType) -> Node:
    """Convert to another dtype; a no-op when it already has it."""
    return x if x.dtype == dtype else Node(Ops.CAST, (x,), dtype, x.shape, dtype, x.device)


def reduce(op: Ops, x: Node, axes: tuple) -> Node:
    """SUM or REDUCE_MAX over axes, keeping them as size 1."""
    assert op in REDUCE
    axes = tuple(sorted(set(axes)))
    if not axes:
        return x
    shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    return Node(op, (x,), axes, shape, x.dtype, x.device)


def gather(x: Node, idx: Node, axis: int) -> Node:
    """GATHER: x's values at the int32 positions idx along axis (torch.gather with full-size index)."""
    if idx.dtype != dtypes.int32:
        raise DTypeError(f"GATHER: indices must be int32, got {idx.dtype.name}; cast them with .int()")
    if not 0 <= axis < len(x.shape) or len(idx.shape) != len(x.shape):
        raise ShapeError(f"GATHER: index shape {idx.shape} and axis {axis} do not fit source shape {x.shape}")
    if any(i != s for a, (i, s) in enumerate(zip(idx.shape, x.shape, strict=True)) if a != axis):
        raise ShapeError(f"GATHER: index shape {idx.shape} must equal source shape {x.shape} except on axis {axis}")
    if x.device != idx.device:
        raise ShapeError(f"GATHER: source on {x.device} and indices on {idx.device}; use .to(device)")
    return Node(Ops.GATHER, (x, idx), axis, idx.shape, x.dtype, x.device)


# the movement ops as module globals: an Enum member's attribute lookup costs more than the test that uses it
_RESHAPE, _EXPAND, _PERMUTE, _PAD, _SHRINK, _FLIP = Ops.RESHAPE, Ops.EXPAND, Ops.PERMUTE, Ops.PAD, Ops.SHRINK, Ops.FLIP


def movement(op: Ops, x: Node, arg) -> Node:
    """A view op; validates its argument against the shape and skips it when it changes nothing."""
    sh = x.shape
    # each branch tests its own no-op case first: matmul's and broadcasting's reshapes and expands often are
    if op is _RESHAPE:
        arg = tuple(map(int, arg))
        if arg == sh:
            return x
        if math.prod(arg) != math.prod(sh) or (arg and min(arg) < 0):
            raise ShapeError(f"RESHAPE: cannot reshape {sh} ({math.prod(sh)} elements) to {arg}")
        new = arg
    elif op is _EXPAND:
        arg = tuple(map(int, arg))
        if arg == sh:
            return x
        if len(arg) != len(sh):
            raise ShapeError(f"EXPAND: cannot expand {sh} to {arg}")
        for a, s in zip(arg, sh, strict=True):  # lengths checked above
            if a != s and s != 1:
                raise ShapeError(f"EXPAND: cannot expand {sh} to {arg}")
        new = arg
    elif op is _PERMUTE:
        arg = tuple(map(int, arg))
        if sorted(arg) != list(range(len(sh))):
            raise ShapeError(f"PERMUTE: order {arg} is not a permutation of the axes of {sh}")
        if arg == tuple(range(len(sh))):
            return x
        new = tuple([sh[a] for a in arg])
    elif op is _PAD:
        arg = tuple((int(b), int(a)) for b, a in arg)
        if len(arg) != len(sh) or any(b < 0 or a < 0 for b, a in arg):
            raise ShapeError(f"PAD: padding {arg} does not fit shape {sh}")
        if all(b == 0 and a == 0 for b, a in arg):
            return x
        new = tuple(s + b + a for s, (b, a) in zip(sh, arg, strict=True))
    elif op is _SHRINK:
        arg = tuple((int(b), int(e)) for b, e in arg)
        if len(arg) != len(sh) or any(not (0 <= b <= e <= s) for (b, e), s in zip(arg, sh, strict=True)):
            raise ShapeError(f"SHRINK: ranges {arg} do not fit shape {sh}")
        if all(b == 0 and e == s for (b, e), s in zip(arg, sh, strict=True)):
            return x
        new = tuple(e - b for b, e in arg)
    elif op is _FLIP:
        arg = tuple(sorted(set(int(a) for a in arg)))
        if any(not 0 <= a < len(sh) for a in arg):
            raise ShapeError(f"FLIP: axes {arg} out of range for shape {sh}")
        if all(sh[a] == 1 for a in arg):  # FLIP of size-1 axes
            return x
        new = sh
    else:
        raise AssertionError(f"{op.name} is not a movement op")
    return Node(op, (x,), arg, new, x.dtype, x.device)


def broadcast(x: Node, shape: tuple) -> Node:
    """x broadcast to shape by numpy's rules (ones prepended, size-1 axes expanded): the RESHAPE and EXPAND
    `movement` would make, built directly since every binary op with a bias or a scalar row comes here."""
    sh = x.shape
    if sh == shape:
        return x
    lead = len(shape) - len(sh)
    if lead < 0 or any(s != 1 and s != t for s, t in zip(sh, shape[lead:], strict=True)):
        raise ShapeError(f"EXPAND: cannot expand {sh} to {tuple(shape)}")
    shape = tuple([int(s) for s in shape])
    if lead:
        sh = (1,) * lead + sh
        x = Node(_RESHAPE, (x,), sh, sh, x.dtype, x.device)
    return x if sh == shape else Node(_EXPAND, (x,), shape, shape, x.dtype, x.device)


def toposort(roots: list[Node], stop_realized: bool = True, sources=None) -> list[Node]:
    """Nodes reachable from roots, sources first; realized nodes are leaves when stop_realized.

    `sources(node)` replaces a node's `src` as the edges to follow (autograd walks its recorded sources)."""
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if n.id in seen:
            continue
        seen.add(n.id)
        stack.append((n, True))
        if sources is not None:
            stack.extend((s, False) for s in reversed(sources(n)) if s.id not in seen)
        elif not (stop_realized and n.realized):
            if n.src is PACKED:
                expand(n)
            stack.extend((s, False) for s in reversed(n.src) if s.id not in seen)
    return order
