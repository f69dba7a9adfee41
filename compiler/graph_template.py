"""Composite Tensor ops (matmul, conv2d, layernorm, softmax, attention, GELU...) rebuilt from a recorded graph.

A composite op builds tens of primitive nodes through the Tensor frontend, which checks, promotes and
broadcasts at every step: ~5-10 us of Python per node, a tenth of an eager GPT-2 block's call on two cores.
Its graph depends only on its inputs' shapes, dtypes and devices and on its other arguments, so the first
call with a given signature records the nodes it made (op, argument, shape, dtype, device, and each source
as one of those nodes, an input, or a buffer that existed before the call), and later calls make the same
nodes directly: same ops in the same order, hence the same kernels and the same memoized plan. The output
of each recorded or rebuilt graph is marked (`Node.unit`) with the template's number and the nodes it made,
so the plan memo's graph key describes the whole composite by one row (schedule_cache.graph_key).

A rebuild is *packed* where nothing reads its inner nodes as they are made: only the output node is made,
its sources `lazy.PACKED` and its inner nodes' ids reserved, and `lazy.expand` makes them (with those ids,
so the graph is the unpacked one) when something reads them: the scheduler on a plan miss, the interpreter,
a composite recorded around it. On a plan hit they are never made (the GPT-2 block: 158 of its 198 nodes).
Gradients and launching ahead (schedule_ahead: PoCL leaving a core free, or WB_LAUNCH_AHEAD=1) see every
node, so there rebuilds are unpacked, their nodes made by `Node()` as usual.

Only methods whose graph is a function of that signature may be decorated: no random numbers, no data read
back, no training flag; what the frontend reads of an input node beyond its shape (whether a sum over it is a
contraction that the GEMM template takes whole) joins the signature through `traits`. A call that cannot be
recorded (it read a node made before it that is neither an input nor a buffer) is simply run again next time.
WB_COMPOSITE_MEMO=0 turns the memo off, WB_COMPOSITE_MEMO=unpacked the packing (comparisons).
"""

from __future__ import annotations

import functools
import itertools
from collections import OrderedDict
from typing import NamedTuple

from . import lazy
from .lazy import GradMode, Node
from .switches import switch

# a template's number in graph keys: never reused, where id() of a template evicted from its memo could be
_NUMBERS = itertools.count()


class Template(NamedTuple):
    """What rebuilds a composite's graph: one row per node in the order made, each source an index into one
    list (the outside buffers, then the inputs, then each node as it is made)."""

    rows: tuple
    out: int  # the output's index in that list
    outside: tuple  # buffers from before the recording call that the rows read (a cached causal mask)
    number: int  # the template's row in graph keys
    used: tuple  # indices of the outside buffers and inputs the rows read (graph_key's sources)
    # (kind, parameters, indices of the inputs it names) where the method says one kernel can compute the
    # whole composite (schedule_attention.py), else None
    fused: tuple | None = None


MAX_TEMPLATES = 64  # signatures remembered per decorated method (each holds one graph's rows)
MAX_ROWS = 2000  # a composite that builds more nodes than this is not recorded


def _signature(args: tuple, kwargs: dict, traits=None) -> tuple[tuple, list[Node]] | None:
    """(key, input nodes): each tensor argument by shape, dtype, device, grad flag, first position (one
    tensor passed twice is another graph than two tensors) and `traits(node)` where given, every other
    argument by type and value; None when an argument cannot be keyed."""
    key: list = [GradMode.enabled]
    nodes: list[Node] = []
    first: dict[int, int] = {}
    for name, a in (*((None, a) for a in args), *sorted(kwargs.items())):
        n = getattr(a, "node", None)
        if isinstance(n, Node):
            j = first.setdefault(id(n), len(nodes))
            if j == len(nodes):
                nodes.append(n)
            key.append((name, j, n.shape, n.dtype.name, n.device, n.requires_grad,
                        traits(n) if traits is not None else None))
        elif a is None or type(a) in (bool, int, float, str):
            key.append((name, type(a), a))
        elif type(a) is tuple and all(type(x) in (bool, int, float) for x in a):
            key.append((name, tuple, a))
        else:
            return None
    return tuple(key), nodes


def _record(out: Node, inputs: list[Node], start: int, fused=None) -> Template | None:
    """The template that rebuilds out from inputs, a row for each node made since node id `start` that out
    depends on, in the order they were made; None when out reads a node made before the call that is no
    input or buffer. Marks out as the template's unit (`_mark_unit`). fused: (kind, parameters, input
    nodes) where one kernel may compute the whole composite."""
    where = {id(n): j for j, n in enumerate(inputs)}
    made: dict[int, Node] = {}
    stack = [out]
    while stack:
        n = stack.pop()
        if id(n) in where or n.id in made:
            continue
        if n.buffer is not None:
            if n.id > start:  # computed or uploaded during the call: its data may depend on this call
                return None
            continue  # a buffer from before the call (a cached constant such as a causal mask)
        if n.id <= start:  # an unrealized node from before the call that is no input
            return None
        if n.src is lazy.PACKED:  # a composite rebuilt inside this one: its nodes become rows here
            lazy.expand(n)
        made[n.id] = n
        if len(made) > MAX_ROWS:
            return None
        stack.extend(n.src)
    if out.id not in made:  # the composite returned an input unchanged
        return None
    order = sorted(made)
    outside: dict[int, Node] = {}  # buffers from before the call, by first use
    for i in order:
        n = made[i]
        for s in (*n.src, *(n.ad[2] if n.ad is not None and n.ad[0] is not n.op else ())):
            if id(s) not in where and s.id not in made:
                if s.buffer is None:  # an autograd source made before the call that is no input
                    return None
                outside.setdefault(s.id, s)
    base = len(outside) + len(inputs)
    index = {i: k for k, i in enumerate(outside)}
    index.update({i: base + k for k, i in enumerate(order)})

    def ref(s: Node) -> int:
        return len(outside) + where[id(s)] if id(s) in where else index[s.id]

    rows = []
    for i in order:
        n = made[i]
        rule = None
        if n.ad is not None and n.ad[0] is not n.op:  # backward through a rule of its own (conv2d's)
            comp, arg, srcs = n.ad
            rule = (comp, arg, tuple(ref(s) for s in srcs))
        rows.append((n.op, tuple(ref(s) for s in n.src), n.arg, n.shape, n.dtype, n.device, rule))
    used = tuple(sorted({s for r in rows for s in r[1] if s < base}))  # the outside nodes the graph reads
    if fused is not None:
        fused = (fused[0], fused[1], tuple(len(outside) + where[id(n)] for n in fused[2]))
    template = Template(tuple(rows), index[out.id], tuple(outside.values()), next(_NUMBERS), used, fused)
    env = (*outside.values(), *inputs)
    _mark_unit(out, template, [made[i] for i in order[:-1]], env)  # out was made last: its sources first
    return template


def _mark_unit(out: Node, template: Template, inner: list[Node], env) -> None:
    """Tag out as the output of template's graph (Node.unit), so graph_key describes it by one row."""
    if out.buffer is None:  # launched ahead while being rebuilt: already a leaf
        out.unit = (template.number, tuple(inner), tuple([env[i] for i in template.used]), _fused(template, env))


def _fused(template: Template, env) -> tuple | None:
    """The unit's fused description with its inputs as nodes: (kind, parameters, input nodes)."""
    f = template.fused
    return None if f is None else (f[0], f[1], tuple([env[i] for i in f[2]]))


def _replay(template: Template, inputs: list[Node]) -> Node:
    rows, out, outside = template.rows, template.out, template.outside
    env = [*outside, *inputs]
    base = len(env)
    made = env.append
    for op, srcs, arg, shape, dtype, device, rule in rows:
        n = Node(op, tuple([env[s] for s in srcs]), arg, shape, dtype, device)
        if rule is not None and n.ad is not None:  # what autograd.record_composite did when recorded
            n.ad = (rule[0], rule[1], tuple([env[s] for s in rule[2]]))
        made(n)
    _mark_unit(env[out], template, env[base:-1], env)
    return env[out]


def _replay_packed(template: Template, inputs: list[Node]) -> Node:
    """The composite's output alone, its sources packed (lazy.PACKED): the plan memo's graph key needs only
    the template's row, so its inner nodes are made (lazy.expand) only if something reads them: scheduling
    a graph with no memoized plan, the interpreter, an enclosing composite's recording."""
    rows = template.rows
    env = (*template.outside, *inputs)
    first = lazy.reserve_ids(len(rows) - 1)
    op, _, arg, shape, dtype, device, _ = rows[-1]
    out = Node(op, (), arg, shape, dtype, device)
    out.src = lazy.PACKED
    out.unit = (template.number, None, tuple([env[i] for i in template.used]), rows, env, first,
                _fused(template, env))
    return out


def _packs(inputs: list[Node], template: Template) -> bool:
    """Whether a rebuild may leave its inner nodes unmade: no gradient to record, nothing watching nodes as
    they are made (schedule_ahead's prediction), and no launching ahead to record them later (it numbers
    every node of a stretch)."""
    if lazy.ON_NODE is not None:
        return False
    for n in inputs:
        if n.requires_grad:
            return False
    for n in template.outside:
        if n.requires_grad:
            return False
    return not _schedule_ahead().launches_ahead(template.rows[-1][5])


@functools.cache
def _schedule_ahead():
    """compiler.schedule_ahead, imported once: an import statement per rebuild cost more than the rest of
    _packs, and the runtimes it loads should come with the first rebuild, not with the frontend."""
    from . import schedule_ahead

    return schedule_ahead


def composite(method, traits=None, fuse=None):
    """Memoize the graph a composite Tensor method builds, per signature of its arguments (see above);
    traits(node), where given, names what else of an input node the frontend's choices read. fuse(self,
    *args, **kwargs), where given, returns (kind, parameters, input tensors) when one kernel of that kind
    may compute the whole composite (the scheduler decides where: schedule_attention.py), else None."""
    templates: OrderedDict = OrderedDict()

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        memo = switch("WB_COMPOSITE_MEMO")
        sig = _signature((self, *args), kwargs, traits)
        if sig is None or memo == "0":
            return method(self, *args, **kwargs)
        key, inputs = sig
        hit = templates.get(key)
        if hit is not None:
            templates.move_to_end(key)
            cls, template = hit
            if memo != "unpacked" and _packs(inputs, template):
                return cls(_replay_packed(template, inputs))
            return cls(_replay(template, inputs))
        start = lazy.next_id()
        out = method(self, *args, **kwargs)
        n = getattr(out, "node", None)
        if isinstance(n, Node):
            spec = fuse(self, *args, **kwargs) if fuse is not None else None
            if spec is not None:
                spec = (spec[0], spec[1], tuple(t.node for t in spec[2]))
            template = _record(n, inputs, start, spec)
            if template is not None:
                templates[key] = (type(out), template)
                if len(templates) > MAX_TEMPLATES:
                    templates.popitem(last=False)
        return out

    wrapper.templates = templates  # tests and benchmarks look inside
    return wrapper
