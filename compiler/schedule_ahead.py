"""Kernels launched while the graph is still being built: an eager model that builds the same graph call
after call (a forward pass, a training step) starts each kernel of its memoized plan as soon as the node it
computes exists, so the compute units work while Python builds the rest of the graph, and the graph's key
is never computed.

Each realize that runs a plan records the nodes built since the realize before it (the "stretch") in
creation order: per node its op, argument, shape, dtype, device and which earlier node or outside buffer
each source is, and which of them are kernel outputs. That recording becomes the prediction for the stretch
after the plan that ran before it (`PlanCache.successors`). After each realize, the prediction for what
follows is armed: every new node is compared with the node built at the same position last time, and
when the output node of one of the plan's kernels is built and every node so far has matched, that kernel
is launched on the spot. Its region lies among the nodes below its output, which all matched, so it
computes exactly the value the full schedule computes for that node. The first node that does not match
disarms the prediction; the rest of the graph then takes the ordinary path, with the nodes already computed
as buffers, and the prediction is dropped (the next realize records a new one). A realize whose roots
were all computed ahead only waits for them. Nothing here holds a node or buffer past the stretch.

It is on by default only where it pays (`wanted`): a CPU OpenCL device on fewer compute units than cores,
whose long kernels leave a host core to Python. Beside PoCL workers on every core, building the graph
slows down by about what it overlaps; on a GPU the kernels are short and already run while the host goes
on, so checking every node costs more than the overlap gains (the eager GPT-2 block on an H200: 1.56 ms a
call launching ahead, 1.09 without). WB_LAUNCH_AHEAD=1 turns it on anyway, WB_LAUNCH_AHEAD=0 off.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

from . import jit_trace, lazy
from .kernel_ir import arg_key
from .lazy import Node
from .opencl_devices import allowed_cpus
from .runtime_opencl import debug_level
from .schedule_cache import PLANS, Plan, backends_current
from .switches import switch

MAX_ROWS = 100_000  # a stretch of more nodes than this is not recorded (the memo's own bound on a key)


@dataclass(frozen=True)
class Recording:
    """A stretch of graph building that ended in `plan`, by creation position (no nodes, no buffers)."""

    plan: Plan
    # per position: None (no kernel reads it) or ((op, shape, dtype name, device, born), arg, refs, whether
    # any ref is an outside buffer)
    rows: tuple
    leaves: tuple  # per outside buffer, by first use: (shape, dtype name, device)
    launch_at: dict  # position of a kernel's output -> (plan step, its inputs as refs)
    keep: frozenset  # positions of nodes that kernels read as inputs
    search: str | None  # WB_SEARCH when recorded: it chose the programs


# a ref is a position in the stretch (>= 0) or -1 - the number of an outside buffer (a realized node made
# before the stretch), numbered in order of first use


class _Armed:
    """A prediction being checked against the nodes of the current stretch."""

    __slots__ = ("rec", "base", "thread", "nodes", "leaves", "leaf_no", "launched", "waiting", "on")

    def __init__(self, rec: Recording, base: int):
        self.rec, self.base, self.thread = rec, base, threading.get_ident()
        self.nodes: dict[int, Node] = {}  # kept positions -> their nodes
        self.leaves: list = [None] * len(rec.leaves)
        self.leaf_no: dict[int, int] = {}  # node id -> outside buffer number
        self.launched = 0
        self.waiting: dict[int, object] = {}  # backends with kernels launched ahead
        self.on = True


_BASE = lazy.next_id() + 1  # the id of the first node the current stretch may hold
_LAST: Plan | None = None  # the plan the last stretch ended in
_ARMED: _Armed | None = None
LAUNCHED = [0]  # kernels launched ahead so far (tests and benchmarks read it)


def _disarm() -> None:
    lazy.ON_NODE = None
    if _ARMED is not None:
        _ARMED.on = False


def _on_node(n: Node) -> None:
    """Check a new node against the prediction; launch the kernel it is the output of, if any."""
    a = _ARMED
    i = n.id - a.base
    rows = a.rec.rows
    if i >= len(rows) or jit_trace.ACTIVE is not None or threading.get_ident() != a.thread:
        return _disarm()
    row = rows[i]
    if row is None:
        return None
    head, arg, refs, outside = row
    src = n.src
    # one tuple compare in C for the usual fields; the sources by their positions in the stretch
    if (n.op, n.shape, n.dtype.name, n.device, n.buffer is not None) != head:
        return _disarm()
    x = n.arg
    if (arg_key(x) if type(x) is float else x) != arg:
        return _disarm()
    base = a.base
    if not outside:
        if [s.id - base for s in src] != refs:
            return _disarm()
    elif len(src) != len(refs) or not _outside_match(a, src, refs):
        return _disarm()
    if i in a.rec.keep:
        a.nodes[i] = n
    step = a.rec.launch_at.get(i)
    if step is not None:
        _launch(a, n, *step)
    return None


def _outside_match(a: _Armed, src: tuple, refs: list) -> bool:
    """Whether sources that include buffers from before the stretch are the ones recorded: the same
    positions, and each outside buffer the same node wherever it appears (one buffer in two slots is
    another program than two buffers)."""
    base = a.base
    for s, r in zip(src, refs, strict=True):
        if r >= 0:
            if s.id - base != r:
                return False
            continue
        j = -1 - r
        have = a.leaves[j]
        if have is s:
            continue
        if (
            have is not None
            or s.id >= base
            or s.buffer is None
            or a.leaf_no.get(s.id, j) != j
            or (s.shape, s.dtype.name, s.device) != a.rec.leaves[j]
        ):
            return False
        a.leaves[j], a.leaf_no[s.id] = s, j
    return True


def off() -> bool:
    """Whether launching ahead is off (then nothing is recorded either): WB_DEBUG (it reports each kernel),
    WB_PLAN_CACHE=0 or WB_LAUNCH_AHEAD=0 (for comparisons)."""
    return bool(debug_level()) or switch("WB_PLAN_CACHE") == "0" or switch("WB_LAUNCH_AHEAD") == "0"


def wanted(plan: Plan) -> bool:
    """Whether to record and launch ahead around plan: it launches ahead on every device of its kernels."""
    return all(launches_ahead(d) for d in {s.backend_device for s in plan.steps})


def launches_ahead(device: str) -> bool:
    """Whether kernels on device may be launched ahead: not off(), and it pays there (WB_LAUNCH_AHEAD=1:
    whatever the device). Where not, graph_template rebuilds composites packed."""
    return not off() and (switch("WB_LAUNCH_AHEAD") == "1" or pays(device))


@functools.cache
def pays(device: str) -> bool:
    """Whether launching ahead pays by default on device: a CPU OpenCL device with fewer compute units than
    this process may use cores (one compute unit of two: the GPT-2 block 4-7% faster). Beside kernels that
    use every core, building the graph slows down as much as it overlaps: the block's graph took 4.1-4.8 ms
    of main-thread CPU instead of 1.85 beside two PoCL workers on two cores, and the calls were no faster.
    On a GPU (CUDA, HIP, OpenCL) the kernels already run while the host goes on building and launching;
    the per-node check costs more than the little overlap left: the block's eager call on an H200 took
    1.34-1.96 ms launching ahead against 1.02-1.52 without, in 12 alternated rounds (docs/benchmarks.md)."""
    if device.split(":")[0] != "CL":  # GPUs (above); the simulator and REF run in this thread
        return False
    from .device import cl_index
    from .runtime_opencl import get_cl_device

    dev = get_cl_device(cl_index(device))
    if not dev.is_cpu:
        return False
    allowed = allowed_cpus()
    cores = len(allowed) if allowed is not None else os.cpu_count() or 1
    return (dev.device.max_compute_units or 1) < cores


def _launch(a: _Armed, n: Node, st, ins: tuple) -> None:
    if off():
        return _disarm()
    bufs = []
    for r in ins:
        m = a.nodes.get(r) if r >= 0 else a.leaves[-1 - r]
        if m is None or m.buffer is None:
            return _disarm()
        bufs.append(m.buffer)
    st.launch(n, bufs)
    if st.program is not None:
        a.waiting[id(st.backend)] = st.backend
    a.launched += 1
    LAUNCHED[0] += 1
    return None


def end_stretch(plan: Plan | None, rec: Recording | None = None) -> None:
    """A realize ran plan (None: ran without one): remember rec as what follows the previous plan, and arm
    the prediction of what follows this one."""
    global _BASE, _LAST, _ARMED
    _disarm()
    if rec is not None:
        PLANS.put_successor(_LAST, rec)
    _LAST, _ARMED = plan, None
    _BASE = lazy.next_id() + 1
    nxt = PLANS.successor(plan) if plan is not None else None
    if nxt is None or nxt.search != switch("WB_SEARCH") or not wanted(nxt.plan):
        return
    if not backends_current(nxt.plan):
        return
    _ARMED = _Armed(nxt, _BASE)
    lazy.ON_NODE = _on_node


def settle() -> None:
    """Called by a realize whose roots are all computed: wait for kernels launched ahead, and when every
    kernel of the prediction has run, end the stretch as the plan's own realize would."""
    a = _ARMED
    if a is None or not a.launched:
        return
    for be in a.waiting.values():
        be.synchronize()
    a.waiting.clear()
    if a.launched == len(a.rec.launch_at):
        PLANS.hits += 1
        end_stretch(a.rec.plan)


def diverged() -> bool:
    """Called by a realize that still has kernels to run: disarm; True (and the prediction dropped) when
    some were launched ahead, so this stretch is no recording of a whole graph."""
    _disarm()
    a = _ARMED
    if a is None or not a.launched:
        return False
    PLANS.drop_successor(_LAST)
    return True


def before_launch(plan: Plan, nodes: list[Node]) -> dict:
    """What realizing changes in the nodes a recording reads: the op, argument and sources of each
    kernel's output, by node id."""
    return {n.id: (n.op, n.arg, n.src) for n in (nodes[st.out] for st in plan.steps)}


def record(plan: Plan, nodes: list[Node], before: dict) -> Recording | None:
    """The stretch that built nodes (graph_key's, as they were before `before`'s outputs were realized)
    by creation position, or None when it cannot be replayed (a node from before the stretch that was
    not a buffer, or too many nodes)."""
    base = _BASE
    live = []
    for n in nodes:
        if n.id >= base:
            live.append(n)
        elif n.id in before or n.buffer is None:  # computed here, yet made before the stretch
            return None
    if not live or max(n.id for n in live) - base >= MAX_ROWS:
        return None
    rows: list = [None] * (max(n.id for n in live) - base + 1)
    leaf_no: dict[int, int] = {}
    leaves: list = []

    def ref(s: Node) -> int:
        if s.id >= base:
            return s.id - base
        j = leaf_no.get(s.id)
        if j is None:
            j = leaf_no[s.id] = len(leaves)
            leaves.append((s.shape, s.dtype.name, s.device))
        return -1 - j

    for n in sorted(live, key=lambda n: n.id):
        op, arg, src = before.get(n.id) or (n.op, n.arg, n.src)
        born = n.id not in before and n.buffer is not None
        arg = arg_key(arg) if type(arg) is float else arg
        refs = [ref(s) for s in src]
        rows[n.id - base] = ((op, n.shape, n.dtype.name, n.device, born), arg, refs, min(refs, default=0) < 0)
    launch_at, keep = {}, set()
    for st in plan.steps:
        out = nodes[st.out]
        if out.id < base:
            return None
        ins = []
        for i in st.inputs:
            m = nodes[i]
            if m.id >= base:
                keep.add(m.id - base)
            elif m.id not in leaf_no:
                return None
            ins.append(ref(m))
        launch_at[out.id - base] = (st, tuple(ins))
    return Recording(plan, tuple(rows), tuple(leaves), launch_at, frozenset(keep), switch("WB_SEARCH"))
