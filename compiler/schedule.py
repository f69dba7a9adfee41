"""The fusing scheduler: splits a lazy graph into kernels over a networkx DAG.

Rules: elementwise ops and views are inlined into whichever kernel consumes them; every reduce starts a
kernel that also absorbs the single-consumer elementwise chain after it; a computed (non-leaf) value that
is broadcast by EXPAND is realized first, so broadcasting never repeats its computation. An attention
composite's kernels then become one where its device has the fused template (schedule_attention.py).

The kernels it returns are plain data (`kernel_ir.Kernel`); choosing and running their programs is the
backends' job (`backend.py`), so nothing here depends on how or where a kernel runs.
"""

from __future__ import annotations

import math
from collections import defaultdict

import networkx as nx

from .kernel_ir import Kernel
from .lazy import Node, toposort
from .ops import ELEMENTWISE, MOVEMENT, REDUCE, Ops
from .schedule_attention import fuse_attention


def _leafy(n: Node, realize: set) -> bool:
    """True when n is a view/cast chain over a buffer, a constant, or a value already being realized."""
    while not (n.realized or n.op == Ops.CONST or n.id in realize):
        if n.op not in MOVEMENT and n.op != Ops.CAST:
            return False
        n = n.src[0]
    return True


def _region(out: Node, realize: set) -> list[Node]:
    """The nodes a kernel computes: out and its sources, stopping at buffers and other kernels' outputs."""
    seen, order, stack = set(), [], [out]
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        order.append(n)
        if n is out or not (n.realized or n.id in realize):
            stack.extend(n.src)
    return order


def _joins(c: Node, x: Node, n_exits: int) -> bool:
    """Whether consumer c of x can join a reduce's epilogue: same-shape elementwise, or a lone reshape."""
    return (c.op in ELEMENTWISE and c.shape == x.shape) or (c.op == Ops.RESHAPE and n_exits == 1)


def _epilogue(red: Node, consumers: dict, byid: dict, root_ids: set, claimed: set, limit: int = 32):
    """The node ending the fused epilogue of a reduce, and the nodes between.

    The epilogue grows through elementwise consumers of the same shape (and reshapes on a single path),
    and is only ever cut where exactly one of its nodes is used outside it, so a value used twice (gelu's
    x) fuses as long as both uses meet again. Every node in it then sits at the reduce's element position.
    """
    region = {red.id}
    best = (red, set(region))
    while len(region) < limit:
        exits = [x for x in region if consumers[x] - region or x in root_ids]
        if len(exits) == 1:
            best = (byid[exits[0]], set(region))
            if exits[0] in root_ids:
                break
        grow = set()
        for x in exits:  # an exit used by anything that cannot join stays an exit; the others grow
            new = consumers[x] - region
            if all(c not in claimed and _joins(byid[c], byid[x], len(exits)) for c in new):
                grow |= new
        if not grow:
            break
        region |= grow
    return best


def create_schedule(roots: list[Node]) -> list[Kernel]:
    """The kernels that realize roots, in a valid execution order."""
    nodes = [n for n in toposort(roots)]
    byid = {n.id: n for n in nodes}
    consumers: dict[int, set] = defaultdict(set)
    for n in nodes:
        if not n.realized:
            for s in n.src:
                consumers[s.id].add(n.id)
    root_ids = {r.id for r in roots if not r.realized}
    realize: set[int] = set(root_ids)
    reduce_of: dict[int, Node] = {}
    claimed: set[int] = set()  # nodes already fused after some reduce: one reduce per kernel
    for n in nodes:
        if n.realized:
            continue
        if n.op in REDUCE:
            end, members = _epilogue(n, consumers, byid, root_ids, claimed)
            claimed |= members - {n.id}
            realize.add(end.id)
            reduce_of[end.id] = n
        elif n.op == Ops.EXPAND and not _leafy(n.src[0], realize):
            m = n.src[0]
            while m.op in MOVEMENT:
                m = m.src[0]
            realize.add(m.id)
    graph = nx.DiGraph()
    kernels: dict[int, Kernel] = {}
    for n in nodes:
        if n.id not in realize or n.realized:
            continue
        region = _region(n, realize)
        inputs = [m for m in region if m is not n and (m.realized or m.id in realize)]
        k = Kernel(n, inputs, reduce_of.get(n.id), device=n.device)
        _describe(k, region)
        kernels[n.id] = k
        graph.add_node(n.id)
        for m in inputs:
            if m.id in realize:
                graph.add_edge(m.id, n.id)
    order = [kernels[i] for i in nx.lexicographical_topological_sort(graph, key=lambda i: i)]
    return fuse_attention(order)


def _describe(k: Kernel, region: list[Node]) -> None:
    """Fill in name, FLOP count (one per ALU op per element) and bytes moved."""
    full, out = math.prod(k.full_shape), k.out.size
    pre = set()
    if k.reduce is not None:
        pre = (
            {m.id for m in _region(k.reduce.src[0], {i.id for i in k.inputs})}
            if not (k.reduce.src[0].realized)
            else set()
        )
    alu = [m for m in region if m.op in ELEMENTWISE and m.op != Ops.CAST and m not in k.inputs]
    k.flops = sum(full if m.id in pre else out for m in alu) + (full if k.reduce is not None else 0)
    k.bytes = (
        sum(m.size * m.dtype.itemsize for m in {i.id: i for i in k.inputs}.values())
        + out * k.out.dtype.itemsize
    )
    if k.reduce is not None:
        red = "x".join(str(s) for i, s in enumerate(k.full_shape) if i in k.reduce_axes)
        k.name = f"r_{'_'.join(map(str, k.out.shape)) or 'scalar'}__{red}"
    else:
        k.name = f"E_{'_'.join(map(str, k.out.shape)) or 'scalar'}"
