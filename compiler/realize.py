"""Runs a schedule: each kernel's program and launch come from its device's backend; WB_DEBUG reports.

A graph whose structure was realized before runs its memoized plan (schedule_cache.py): no fusion and no
program lookup, only the launches; a graph built again after the same plan as last time has its kernels
launched while it is being built (schedule_ahead.py). WB_DEBUG and the jit's capture take the full path,
which reports each kernel as a `Kernel`; `WB_PLAN_CACHE=0` turns the memo off, for comparisons."""

from __future__ import annotations

from . import jit_trace, schedule_ahead
from .backend import get_backend
from .device import RefBuffer
from .interpreter import evaluate
from .kernel_ir import Kernel
from .lazy import Node, expand_all, mark_realized
from .runtime_opencl import debug_level
from .schedule import create_schedule
from .schedule_cache import PLANS, Plan, Slot, backends_current, graph_key, make_plan
from .switches import switch


def realize(roots: list[Node]) -> None:
    """Compute every unrealized root on its device."""
    roots = [r for r in roots if not r.realized]
    if not roots:
        schedule_ahead.settle()  # they may have been launched ahead while the graph was built
        return
    if roots[0].device == "REF":
        for r in roots:
            buf = RefBuffer(evaluate(r), r.dtype)
            if jit_trace.ACTIVE is not None:
                jit_trace.ACTIVE.ref_eval(r, buf)
            mark_realized(r, buf)
        return
    partial = schedule_ahead.diverged()  # some of this graph was launched ahead: not a whole recording
    if jit_trace.ACTIVE is not None or debug_level() or switch("WB_PLAN_CACHE") == "0":
        run_schedule(create_schedule(roots))
        schedule_ahead.end_stretch(None)
        return
    key, nodes = graph_key(roots)
    plan = PLANS.get(key, backends_current)
    if plan is None:
        if expand_all(roots):  # packed composites: the scheduler reads every node, so number the real ones
            key, nodes = graph_key(roots)
        kernels = create_schedule(roots)
        plan = make_plan(kernels, nodes, _programs(kernels), {d: get_backend(d) for d in {k.device for k in kernels}})
        PLANS.put(key, plan)
        del kernels
    del key
    # a recording numbers real nodes: none where a packed composite left its inner ones unmade (graph_template
    # packs only where launching ahead is off, but the switches may have changed since the graph was built)
    ahead = not partial and schedule_ahead.wanted(plan) and None not in nodes
    before = schedule_ahead.before_launch(plan, nodes) if ahead else None
    launch_plan(plan, nodes)
    rec = schedule_ahead.record(plan, nodes, before) if ahead else None  # recorded while the kernels run
    # the graph is freed while the kernels run, not after them: its nodes, rows and intermediate buffers
    # took ~0.1 ms to release at the end of each eager GPT-2 block call. A buffer back in its pool early is
    # safe: whatever reuses it is queued behind the kernels that read it (one in-order queue per device)
    del nodes, roots
    wait_plan(plan)
    schedule_ahead.end_stretch(plan, rec)


def _programs(kernels: list[Kernel]) -> dict:
    """Each kernel's program by id(kernel), every one built before the first launch (in parallel where
    the backend can: the cold start)."""
    programs = {id(k): get_backend(k.device).program(k) for k in kernels if k.out.size}
    for dev_name in dict.fromkeys(k.device for k in kernels):
        prepare = getattr(get_backend(dev_name), "prepare", None)
        if prepare is not None:
            prepare([programs[id(k)] for k in kernels if k.device == dev_name and id(k) in programs])
    return programs


def launch_plan(plan: Plan, nodes: list[Node]) -> None:
    """Launch a memoized schedule on the graph whose nodes (by number) are nodes (wait_plan waits)."""
    for st in plan.steps:
        out = nodes[st.out]
        if out is None:  # inside a packed composite: only the buffer is needed, by later steps
            out = nodes[st.out] = Slot()
        st.launch(out, [nodes[i].buffer for i in st.inputs])


def wait_plan(plan: Plan) -> None:
    """Wait for every backend a plan launched on: realize() returns with the results computed."""
    for be in {id(st.backend): st.backend for st in plan.steps}.values():
        be.synchronize()


def run_schedule(kernels: list[Kernel]) -> None:
    """Execute kernels in order, each on its device's backend."""
    dbg = debug_level()
    if dbg >= 2:
        print(f"schedule: {len(kernels)} kernels")
        for i, k in enumerate(kernels):
            print(f"  {i:3d} {k.name:40s} in={[n.shape for n in k.inputs]} flops={k.flops} bytes={k.bytes}")
    programs = _programs(kernels)
    for k in kernels:
        be = get_backend(k.device)
        if k.out.size == 0:  # nothing to compute; an empty buffer stands for the result
            out = be.alloc(0, k.out.dtype)
            if jit_trace.ACTIVE is not None:
                jit_trace.ACTIVE.kernel(k, be, None, out)
            mark_realized(k.out, out)
            continue
        prg = programs[id(k)]
        if dbg >= 4:
            print(f"IR {k.name}: full_shape={k.full_shape} reduce_axes={k.reduce_axes} opts={prg.opts}")
        if dbg >= 3:
            print(prg.src)
        out = be.alloc(k.out.size, k.out.dtype)
        t = be.run(prg, [out] + [n.buffer for n in k.buffers[1:]], wait=dbg >= 1)
        if jit_trace.ACTIVE is not None:
            jit_trace.ACTIVE.kernel(k, be, prg, out)
        if dbg >= 1:
            print(
                f"{k.name:40s} {t * 1e3:9.3f} ms {k.flops / t * 1e-9:9.2f} GFLOP/s "
                f"{k.bytes / t * 1e-9:9.2f} GB/s"
                f"  gsize={prg.global_size}"
            )
        mark_realized(k.out, out)
    for dev_name in {k.device for k in kernels}:
        get_backend(dev_name).synchronize()  # realize() returns with the results computed
