"""One scheduled kernel on a simulated design: matrix unit (GEMM), vector unit, or the host, with its record.

- A kernel whose reduce is a SUM of a product of two view chains (matmul, batched matmul, linear, conv2d's
  im2col windows) is a batched GEMM: each full-shape axis is classified by which operand varies along it
  (batch: both, M: the first, N: the second, K: reduced); the host lays A (M x K) and B (K x N) out in the
  DRAM image (for conv2d this is the explicit im2col), `gemm_lowering` tiles each batch, and the elementwise
  epilogue after the reduce (bias, relu, requantize) runs on the vector unit over the (batch*M, N) result.
- Any other kernel whose ops all have vector-unit ops (`vector_plan`) runs on the vector unit, its reduce (sum,
  max: pooling, softmax, layernorm statistics) as a tree over accumulator rows.
- Everything else runs on the host with numpy and is recorded as a host op (name, reason, FLOPs, bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..device import RefBuffer
from ..interpreter import evaluate
from ..lazy import Node, toposort
from ..ops import ELEMENTWISE, Ops
from .gemm_lowering import Epilogue, EpilogueDoesNotFit
from .gemm_run import run_gemm
from .graph_program import GraphCollector
from .host_values import chain_base, is_leaf_chain, leaf_value
from .vector_lowering import VectorDoesNotFit, run_vector, vector_program
from .vector_plan import VecPlan, acc_dtype_name, plan_vector

__all__ = ["KernelRecord", "HostOp", "run_kernel", "PROGRAM_SINK"]

# When a list, every simulated program is appended as (design, program, DRAM image): `runtime.sim_run(keep_programs=True)`.
PROGRAM_SINK: dict[str, list | None] = {"programs": None}


@dataclass
class HostOp:
    """Work the design could not run, done on the host: what, why, and its size."""

    kernel: str
    reason: str
    flops: int
    bytes: int


@dataclass
class KernelRecord:
    """One kernel's run on the simulated design (or on the host)."""

    name: str
    unit: str  # "matrix", "matrix+vector", "vector" or "host"
    cycles: int = 0
    macs: int = 0  # useful multiply-accumulates on the array
    flops: int = 0  # the kernel's FLOPs (one MAC = 2 FLOP)
    utilization: float = 0.0  # macs / (ROWS * COLS * cycles)
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    host_layout_bytes: int = 0  # operand/result bytes rearranged by the host when building DRAM images
    programs: int = 0  # isa programs generated for it (segments of the run's program in graph mode)
    instructions: int = 0
    units: dict[str, dict[str, int]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    host: HostOp | None = None
    program: int | None = None  # graph mode: index of the run's program that holds it (SimRun.graph_programs)
    start_cycle: int | None = None  # graph mode: the cycle before its first issue, counted over the whole run

    def add_sim(self, result, instructions: int) -> None:
        """Accumulate one program's counters (result None: a segment, timed later with the whole program)."""
        if result is None:
            self.programs += 1
            self.instructions += instructions
            return
        self.cycles += result.cycles
        self.dram_read_bytes += result.dram_read_bytes
        self.dram_write_bytes += result.dram_write_bytes
        self.programs += 1
        self.instructions += instructions
        for u, d in result.units.items():
            mine = self.units.setdefault(u, dict.fromkeys(d, 0))
            for key, v in d.items():
                mine[key] = mine.get(key, 0) + v
        for key, v in result.counters.items():
            self.counters[key] = self.counters.get(key, 0) + v


def _region(k) -> tuple[list[Node], set[int]]:
    leaf_ids = {i.id for i in k.inputs}
    return toposort([k.out], stop_realized=True), leaf_ids


def _alu_count(nodes: list[Node], leaf_ids: set[int]) -> int:
    return sum(1 for n in nodes if n.op in ELEMENTWISE and n.op != Ops.CAST and n.id not in leaf_ids)


def _host_value(root: Node, sub: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Evaluate root with numpy; `sub` gives values for unrealized nodes (a GEMM's reduce) by id."""
    patched = []
    for n in toposort([root]):
        if sub and n.id in sub and not n.realized:
            n.buffer = RefBuffer(sub[n.id], n.dtype)
            patched.append(n)
    try:
        return evaluate(root)
    finally:
        for n in patched:
            n.buffer = None


def _int8_valued(x: Node, leaf_ids: set[int]) -> bool:
    """True when a leaf chain's values fit int8: it passes through an int8 node and only widens after, or its
    int32 buffer holds only int8 values (a requantized activation the scheduler stored as int32)."""
    while True:
        if x.dtype.name == "int8":
            return True
        if x.dtype.name != "int32" or x.op == Ops.CONST:
            return False
        if x.id in leaf_ids or x.realized:
            v = x.buffer.numpy()
            return v.size > 0 and -128 <= int(v.min()) and int(v.max()) <= 127
        x = x.src[0]


def _gemm_dtypes_ok(design, red: Node, operands: tuple[Node, Node], leaf_ids: set[int]) -> str | None:
    if red.dtype.name != acc_dtype_name(design):
        hint = " (quantize the model: compiler.quantize)" if red.dtype.is_float and not design.is_float else ""
        return f"{red.dtype.name} matmul on a {design.matrix.input_dtype} array accumulating in " \
               f"{design.matrix.acc_dtype}{hint}"
    for x in operands:
        base = chain_base(x, leaf_ids)
        if base.op == Ops.CONST:
            return "a product with a constant is no matrix product"
        if design.is_float and not base.dtype.is_float:
            return f"{base.dtype.name} operand on a {design.matrix.input_dtype} array"
        if not design.is_float and not _int8_valued(x, leaf_ids):
            return f"{base.dtype.name} operand on an int8 array (quantize the model: compiler.quantize)"
    return None


def _match_gemm(k, design, leaf_ids: set[int]) -> tuple[Node, Node] | str:
    red = k.reduce
    if red is None or red.op != Ops.SUM:
        return "no sum reduce"
    mul = red.src[0]
    if mul.op != Ops.MUL or not all(is_leaf_chain(s, leaf_ids) for s in mul.src):
        return "the reduce is not over a product of two operands"
    why = _gemm_dtypes_ok(design, red, mul.src, leaf_ids)
    return why or (mul.src[0], mul.src[1])


@dataclass
class _GemmAxes:
    batch: list[int]
    m: list[int]
    n: list[int]
    k: list[int]


def _same_along(a: np.ndarray, i: int) -> bool:
    """True when a does not vary along axis i: a stride-0 broadcast, or (a copied view) equal values."""
    if a.strides[i] == 0:
        return True
    return bool(np.array_equal(a, np.broadcast_to(_take0(a, [i]), a.shape)))


def _classify(shape: tuple, red_axes: tuple, x: np.ndarray, y: np.ndarray) -> _GemmAxes:
    """Batch, M, N and K axes of a product's full shape from which operand varies along each axis.

    A view chain may copy a broadcast (numpy reshapes), so equal values count as not varying: taking index 0
    of an operand along an axis it does not vary on gives the same product, so the GEMM stays exact.
    """
    ax = _GemmAxes([], [], [], [])
    for i, s in enumerate(shape):
        if i in red_axes:
            ax.k.append(i)
        elif s == 1:
            ax.batch.append(i)
        elif y.strides[i] == 0 and x.strides[i] != 0:
            ax.m.append(i)
        elif x.strides[i] == 0:
            ax.n.append(i) if y.strides[i] != 0 else ax.m.append(i)
        elif _same_along(y, i):
            ax.m.append(i)
        elif _same_along(x, i):
            ax.n.append(i)
        else:
            ax.batch.append(i)
    return ax


def _take0(a: np.ndarray, axes: list[int]) -> np.ndarray:
    """a with index 0 on `axes` (kept as size-1 axes)."""
    return a[tuple(slice(0, 1) if i in axes else slice(None) for i in range(a.ndim))]


def _size(shape: tuple, axes: list[int]) -> int:
    return math.prod(shape[i] for i in axes)


def run_kernel(k, design, trace: bool = False, collector: GraphCollector | None = None
               ) -> tuple[np.ndarray, KernelRecord, list]:
    """Run kernel k on the design (or the host); returns its output value, its record and trace events.

    collector: graph mode, the kernel's programs become segments of the run's single program (values from the
    functional model; cycles, units and counters filled in when that program is simulated)."""
    nodes, leaf_ids = _region(k)
    flops = k.flops
    match = _match_gemm(k, design, leaf_ids)
    if not isinstance(match, str):
        return _run_gemm_kernel(k, design, match, nodes, leaf_ids, trace, collector)
    plan = plan_vector(k.out, leaf_ids, design, reduce=k.reduce)
    if isinstance(plan, VecPlan):
        try:
            return _run_vector_kernel(k, design, plan, leaf_ids, trace, collector)
        except VectorDoesNotFit as exc:
            why = f"vector unit: {exc}"
    else:
        why = plan if k.reduce is None or k.reduce.src[0].op != Ops.MUL else f"{match}; vector unit: {plan}"
    rec = KernelRecord(k.name, "host", flops=flops)
    rec.host = HostOp(k.name, why, flops, k.bytes)
    return _host_value(k.out), rec, []


def _fresh(x: Node, leaf_ids: set[int], collector: GraphCollector | None) -> bool:
    """Whether an operand's buffer was written by an earlier accelerator kernel of the pending program."""
    return collector is not None and collector.is_written(chain_base(x, leaf_ids).buffer)


def _offset_events(events: list | None, start: int, kernel: str) -> list:
    out = []
    for e in events or []:
        e = dict(e)
        e["ts"] += start
        e["args"] = dict(e["args"], kernel=kernel)
        out.append(e)
    return out


def _run_gemm_kernel(k, design, ops: tuple[Node, Node], nodes, leaf_ids, trace, collector):
    red = k.reduce
    shape = red.src[0].shape
    x, y = leaf_value(ops[0], leaf_ids), leaf_value(ops[1], leaf_ids)
    ax = _classify(shape, red.arg, x, y)
    bs, ms, ns, ks = (_size(shape, a) for a in (ax.batch, ax.m, ax.n, ax.k))
    in_np = np.float32 if design.is_float else np.int8
    a = np.ascontiguousarray(_take0(x, ax.n).transpose(ax.batch + ax.m + ax.k + ax.n).reshape(bs, ms, ks)).astype(in_np)
    b = np.ascontiguousarray(_take0(y, ax.m).transpose(ax.batch + ax.k + ax.n + ax.m).reshape(bs, ks, ns)).astype(in_np)
    rec = KernelRecord(k.name, "matrix", flops=k.flops, macs=bs * ms * ns * ks)
    rec.host_layout_bytes = a.nbytes + b.nbytes
    fresh = (_fresh(ops[0], leaf_ids, collector), _fresh(ops[1], leaf_ids, collector))
    events: list = []
    acc_np = np.float32 if design.is_float else np.int32
    keep = ax.batch + ax.m + ax.n
    order = np.argsort(keep)

    def to_c(v: np.ndarray) -> np.ndarray:
        """A value of the epilogue (any reshape of the reduce's shape) in C's (batch*M, N) layout."""
        full = np.broadcast_to(v, v.shape).reshape(red.shape).reshape([shape[i] for i in sorted(keep)])
        return full.transpose([sorted(keep).index(i) for i in keep]).reshape(bs * ms, ns)

    tail = k.out
    while tail is not red and tail.op == Ops.RESHAPE:
        tail = tail.src[0]
    plan = plan_vector(k.out, leaf_ids | {red.id}, design) if tail is not red else None
    fused = _fuse(plan, red, leaf_ids, to_c, acc_np) if isinstance(plan, VecPlan) else None
    c = np.empty((bs, ms, ns), dtype=acc_np)
    i = 0
    while i < bs:
        try:
            c[i], res, n_instr = run_gemm(design, a[i], b[i], trace=trace, sink=PROGRAM_SINK["programs"],
                                          epilogue=fused[0] if fused else None, operands=fused[1] if fused else (),
                                          collector=collector, owner=rec, fresh=fresh)
        except EpilogueDoesNotFit:
            fused = None  # every batch runs the epilogue as its own program instead
            continue
        if res is not None:
            events += _offset_events(res.trace_events, rec.cycles, k.name)
        rec.add_sim(res, n_instr)
        i += 1
    if fused:  # C left the chip already transformed (and narrowed)
        rec.unit = "matrix+vector"
        out = c.reshape([shape[i] for i in keep]).transpose(order).reshape(k.out.shape).astype(k.out.dtype.np)
        rec.utilization = rec.macs / (design.matrix.rows * design.matrix.cols * rec.cycles) if rec.cycles else 0.0
        return np.ascontiguousarray(out), rec, events
    # C back to the reduce's shape: (batch, M, N) axes in full-shape order, reduced axes as size 1
    red_val = c.reshape([shape[i] for i in keep]).transpose(order).reshape(red.shape)
    if tail is red:  # no epilogue but a reshape: the result is C as it is
        out = red_val
    else:
        value = None
        if isinstance(plan, VecPlan):
            arrays = {}
            for s, node, _ in plan.leaves:
                v = leaf_value(node, leaf_ids | {red.id}, {red.id: red_val})
                arrays[s] = to_c(np.asarray(v, dtype=acc_np))[None]
            try:
                vp = vector_program(design, plan, arrays, 1, bs * ms, ns)
            except VectorDoesNotFit as exc:
                plan = f"vector unit: {exc}"
            else:
                grid, res = run_vector(vp, trace=trace, sink=PROGRAM_SINK["programs"], collector=collector,
                                       owner=rec)
                if res is not None:
                    events += _offset_events(res.trace_events, rec.cycles, k.name + " epilogue")
                rec.add_sim(res, len(vp.program))
                rec.unit = "matrix+vector"
                full = grid.reshape([shape[i] for i in keep]).transpose(order)
                value = full.reshape(k.out.shape).astype(k.out.dtype.np)
                rec.host_layout_bytes += value.nbytes
        if value is None:
            epi = _alu_count([n for n in nodes if n is not red], leaf_ids | {red.id}) * k.out.size
            rec.host = HostOp(k.name + " epilogue", plan if isinstance(plan, str) else "", epi,
                              red_val.nbytes + k.out.size * k.out.dtype.itemsize)
            value = _host_value(k.out, {red.id: red_val})
        out = value
    rec.utilization = rec.macs / (design.matrix.rows * design.matrix.cols * rec.cycles) if rec.cycles else 0.0
    return np.ascontiguousarray(out).reshape(k.out.shape), rec, events


def _fuse(plan: VecPlan, red: Node, leaf_ids: set[int], to_c, acc_np) -> tuple[Epilogue, tuple] | None:
    """The epilogue as in-place vec ops on C's tiles inside the GEMM program, when it is a chain over C
    whose other operands are per-column rows (a bias, a per-channel multiplier) or immediates."""
    ids = leaf_ids | {red.id}
    c_slots = [s for s, node, _ in plan.leaves if chain_base(node, ids) is red]
    if len(c_slots) != 1:
        return None
    operands: dict[int, int] = {}
    rows = []
    for s, node, _ in plan.leaves:
        if s == c_slots[0]:
            continue
        grid = to_c(np.asarray(leaf_value(node, leaf_ids), dtype=acc_np))
        if grid.shape[0] > 1 and not (grid == grid[:1]).all():
            return None  # varies by row (a residual): needs its own load per tile
        operands[s] = len(rows)
        rows.append(np.ascontiguousarray(grid[0]))
    current, steps = c_slots[0], []
    for st in plan.steps:
        if st.src != current or (st.src2 is not None and st.src2 not in operands):
            return None
        steps.append((st.op, operands[st.src2] if st.src2 is not None else None, st.imm))
        current = st.dst
    if current != plan.out_slot:
        return None
    return Epilogue(tuple(steps), len(rows), plan.narrow), tuple(rows)


def _run_vector_kernel(k, design, plan: VecPlan, leaf_ids, trace, collector):
    dim = design.dim
    acc_np = np.float32 if design.is_float else np.int32
    p = k.out.size
    q = -(-p // dim)
    red = k.reduce
    r = 1
    red_axes: tuple = ()
    if red is not None:
        red_axes = red.arg
        r = math.prod(red.src[0].shape[i] for i in red_axes)

    def flat(v: np.ndarray, rows: int) -> np.ndarray:
        v = np.asarray(v, dtype=acc_np).reshape(rows, -1)
        out = np.zeros((rows, q * dim), dtype=acc_np)
        out[:, :p] = v
        return out.reshape(rows, q, dim)

    arrays = {}
    for s, node, phase in plan.leaves:
        v = leaf_value(node, leaf_ids)
        if phase == "pre" and red is not None:
            other = [i for i in range(v.ndim) if i not in red_axes]
            arrays[s] = flat(np.broadcast_to(v, v.shape).transpose(list(red_axes) + other), r)
        else:
            arrays[s] = flat(v, 1)
    vp = vector_program(design, plan, arrays, r, q, dim)
    rec = KernelRecord(k.name, "vector", flops=k.flops)
    grid, res = run_vector(vp, trace=trace, sink=PROGRAM_SINK["programs"], collector=collector, owner=rec)
    rec.add_sim(res, len(vp.program))
    rec.host_layout_bytes = sum(a.nbytes for a in arrays.values())
    out = grid.reshape(-1)[:p].reshape(k.out.shape).astype(k.out.dtype.np)
    return out, rec, _offset_events(res.trace_events if res is not None else None, 0, k.name)
