"""Schedules memoized by the structure of the lazy graph, so an eager model calling the same ops on new
data (a forward pass, a training step) skips fusion and program lookup from its second call on.

`graph_key` numbers the nodes of a graph in the order they were made (realized leaves at their first use) and
describes each one by what the scheduler and the renderers read: op, argument, shape, dtype, device and which
numbered nodes are its sources; a realized node is a leaf described by shape, dtype and device only (its data
never changes a program). A composite op rebuilt from its recorded graph (graph_template.py) is one row: its
template's number and its sources, its nodes numbered in the order made (a node computed inside it since, as
launching ahead may do, makes it a row per node again). Two graphs with equal keys fuse into the same
kernels, with the same programs, so a `Plan` stores a schedule as node numbers and programs, never nodes or
buffers: replaying it on a new graph looks up the new graph's nodes by number (no stale buffers, nothing
kept alive). The cache is an LRU of at most `MAX_PLANS` plans and `MAX_NODES` rows in their keys.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from operator import attrgetter

from . import lazy
from .kernel_ir import Kernel, arg_key
from .lazy import Node
from .switches import switch

MAX_PLANS = 256  # distinct graph structures remembered (each plan holds only numbers and Program handles)
# and at most this many graph nodes in all the keys (a node's row is ~150 bytes: ~15 MB), so a program
# of many large graphs (training steps of thousands of nodes) cannot grow the memo without bound
MAX_NODES = 100_000
_BY_ID = attrgetter("id")


@dataclass(frozen=True)
class Step:
    """One kernel of a plan: the node numbers of its output and of its input buffers, and its program."""

    out: int
    inputs: tuple
    program: object  # the backend's Program (None for an empty output)
    backend: object  # the backend that made program: a re-registered backend makes the plan stale
    backend_device: str
    name: str
    size: int  # the output's elements and dtype (a packed composite's inner output has no node to say)
    dtype: object

    def launch(self, out: Node | Slot, inputs: list) -> None:
        """Run this step's program into a new buffer for out, from the input buffers, and make out its leaf."""
        if self.program is None:  # nothing to compute; an empty buffer stands for the result
            buf = self.backend.alloc(0, self.dtype)
        else:
            buf = self.backend.alloc(self.size, self.dtype)
            self.backend.run(self.program, [buf, *inputs])
        if type(out) is Slot:
            out.buffer = buf
        else:
            lazy.mark_realized(out, buf)


class Slot:
    """The buffer of a kernel output inside a packed composite (graph_template), which has no node."""

    __slots__ = ("buffer",)

    def __init__(self):
        self.buffer = None


@dataclass(frozen=True)
class Plan:
    """A schedule by node numbers: its steps in execution order."""

    steps: tuple


def graph_key(roots: list[Node]) -> tuple[tuple, list[Node]]:
    """(key, nodes): the structure of the unrealized graph below roots, and its nodes by number."""
    # a node's sources are made before it, so creation order (ids) is already an order sources-first: one
    # walk collects the graph and a sort in C orders it, half the Python of a two-visit depth-first walk
    seen: set[int] = set()
    stack = list(roots)
    inner: list[Node] = []
    units: dict[int, tuple] = {}
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        if n.buffer is None:
            inner.append(n)
            u = n.unit
            if u is not None and (u[1] is None or all(m.buffer is None for m in u[1])):
                units[n.id] = u  # a composite rebuilt whole: its graph is its template's
                stack.extend(u[2])
            else:
                stack.extend(n.src)
    inner.sort(key=_BY_ID)
    num: dict[int, int] = {}
    nodes: list[Node] = []
    rows: list = []
    for n in inner:
        u = units.get(n.id)
        srcs = []
        for s in n.src if u is None else u[2]:
            j = num.get(s.id)
            if j is None:  # a realized leaf (unrealized sources come earlier in inner): numbered at first use
                j = num[s.id] = len(nodes)
                nodes.append(s)
                rows.append((s.shape, s.dtype.name, s.device))
            srcs.append(j)
        if u is not None:
            # one row (template number, sources) for the nodes the rebuild made, numbered in the order made:
            # no other node was made in between, and no node outside the composite reads one of them. A
            # packed rebuild made none: its numbers hold None until a kernel's output needs one (launch_plan)
            if u[1] is None:
                nodes.extend([None] * (len(u[3]) - 1))
            else:
                for m in u[1]:
                    num[m.id] = len(nodes)
                    nodes.append(m)
            num[n.id] = len(nodes)
            nodes.append(n)
            rows.append((u[0], tuple(srcs)))
            continue
        # the op itself (hashed by identity) and dtype.name, not op.value (a Python descriptor) or the
        # dtype (a dataclass hash in Python): the key is hashed in C on every lookup
        arg = n.arg if type(n.arg) is not float else arg_key(n.arg)
        num[n.id] = len(nodes)
        nodes.append(n)
        rows.append((n.op, arg, n.shape, n.dtype.name, n.device, tuple(srcs)))
    for r in roots:
        if r.id not in num:  # a root that is already a buffer
            num[r.id] = len(nodes)
            nodes.append(r)
            rows.append((r.shape, r.dtype.name, r.device))
    # the switches that change which program a kernel gets (optimizer.cached_program keys by them too),
    # and which kernels a schedule has (schedule_attention)
    key = (tuple(rows), tuple([num[r.id] for r in roots]), switch("WB_SEARCH"), switch("WB_WINOGRAD"),
           switch("WB_FUSED_ATTENTION"))
    return key, nodes


def backends_current(plan: Plan) -> bool:
    """Whether every step's backend is still its device's (register_backend may have replaced one)."""
    from .backend import get_backend  # the backends load their runtimes: only when a plan is checked

    return all(get_backend(s.backend_device) is s.backend for s in plan.steps)


def make_plan(kernels: list[Kernel], nodes: list[Node], programs: dict, backends: dict) -> Plan:
    """The plan of a schedule made for the graph whose nodes (by number) are `nodes`."""
    num = {n.id: i for i, n in enumerate(nodes)}
    steps = tuple(
        Step(
            num[k.out.id],
            tuple(num[b.id] for b in k.buffers[1:]),
            programs.get(id(k)),
            backends[k.device],
            k.device,
            k.name,
            k.out.size,
            k.out.dtype,
        )
        for k in kernels
    )
    return Plan(steps)


class PlanCache:
    """An LRU map from graph keys to plans, holding at most `size` plans and `max_nodes` nodes' rows."""

    def __init__(self, size: int = MAX_PLANS, max_nodes: int = MAX_NODES):
        self.size, self.max_nodes = size, max_nodes
        self.plans: OrderedDict[tuple, Plan] = OrderedDict()
        self.nodes = 0  # rows in the keys held
        self.hits = self.misses = 0
        # the most recently used plan, kept rather than read back: an OrderedDict finds its last value through
        # the last key, which hashes the whole key again (what skipping the reorder is for)
        self._newest = None
        # id(plan) -> (plan, what was built after it last time): schedule_ahead's predictions (id 0: the start)
        self.successors: OrderedDict[int, tuple] = OrderedDict()

    def get(self, key: tuple, valid=None) -> Plan | None:
        """The plan for key (now the most recently used), or None; a plan for which valid(plan) is false
        is dropped and counts as a miss."""
        plan = self.plans.get(key)
        if plan is not None and valid is not None and not valid(plan):
            del self.plans[key]
            self.nodes -= _rows(key)
            if plan is self._newest:
                self._newest = None
            plan = None
        if plan is None:
            self.misses += 1
            return None
        if plan is not self._newest:  # an eager loop hits the same plan call after call: no second hash of key
            self.plans.move_to_end(key)
            self._newest = plan
        self.hits += 1
        return plan

    def put(self, key: tuple, plan: Plan) -> None:
        """Remember plan, forgetting the least recently used ones past `size` plans or `max_nodes` rows."""
        if key in self.plans:
            self.nodes -= _rows(key)
        self.plans[key] = plan  # each put stores a plan object of its own (make_plan makes one per schedule)
        self.plans.move_to_end(key)
        self._newest = plan
        self.nodes += _rows(key)
        while len(self.plans) > 1 and (len(self.plans) > self.size or self.nodes > self.max_nodes):
            old, _ = self.plans.popitem(last=False)
            self.nodes -= _rows(old)

    def put_successor(self, prev: Plan | None, rec) -> None:
        """Remember rec (a schedule_ahead recording) as what followed plan prev, keeping the `size` newest."""
        key = 0 if prev is None else id(prev)
        self.successors[key] = (prev, rec)  # the plan itself too: its id stays its own while held
        self.successors.move_to_end(key)
        while len(self.successors) > self.size:
            self.successors.popitem(last=False)

    def successor(self, prev: Plan | None):
        """The recording of what followed plan prev last time, or None."""
        got = self.successors.get(0 if prev is None else id(prev))
        return got[1] if got is not None and got[0] is prev else None

    def drop_successor(self, prev: Plan | None) -> None:
        """Forget what followed plan prev (it did not happen again)."""
        self.successors.pop(0 if prev is None else id(prev), None)

    def clear(self) -> None:
        """Forget every plan and prediction (and the hit counts)."""
        self.plans.clear()
        self._newest = None
        self.successors.clear()
        lazy.ON_NODE = None  # and stop checking the graph being built against one
        self.nodes = self.hits = self.misses = 0


def _rows(key: tuple) -> int:
    """How many graph nodes a key describes (graph_key's first element holds a row per node)."""
    return len(key[0]) if key and isinstance(key[0], tuple) else 1


PLANS = PlanCache()
