"""A matrix-vector kernel for CPU OpenCL devices: `x @ W` with W stored (in, out), x a row or a few rows.

Such a product is memory bound: each weight is used once per row of x. The packed GEMM would copy W into
local memory first, and the plain reduce would walk a column of W at a stride of its row length. Here
each work-item owns NB neighbouring output columns and streams down W's rows: every step of the reduce
reads NB contiguous weights as float8 loads into float8 accumulators (one set per row of x), unrolled U
rows at a time. One work-group of one work-item per compute unit (or a multiple) spreads the columns over
the cores. The last work-item
is shifted back so that it ends at the last column (it recomputes a few columns of its neighbour with the
same values), so N need not be a multiple of NB or of 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .indexing import linear, reads, unravel
from .kernel_ir import Kernel, KernelOpts, Program
from .render_gemm import VEC, GemmPlan, _is_plain_load, gemm_plan
from .render_opencl import ExprWriter
from .symbolic import Lin

MAX_ROWS = 4  # rows of x one work-item keeps accumulators for; more rows go to the GEMM template
MAX_ACC = 4096  # float accumulators per work-item (16 KiB): half the smallest L1 data cache of current cores


@dataclass
class GemvPlan:
    """A GEMM view with few rows (M <= MAX_ROWS), one reduce axis, and W read at stride 1 along N."""

    gemm: GemmPlan
    rows: int  # M
    n: int  # N
    k: int  # K
    nbatch: int


def _full_index(plan: GemmPlan, shape: tuple, b: Lin, m: Lin, n: Lin, k: Lin) -> list:
    idx = [Lin()] * len(shape)
    for axes, v in ((plan.batch, b), (plan.m_axes, m), (plan.n_axes, n), (plan.k_axes, k)):
        for a, i in zip(axes, unravel(v, tuple(shape[a] for a in axes)), strict=True):
            idx[a] = i
    return idx


def _weight_load(k: Kernel, plan: GemmPlan, idx: list) -> tuple:
    """(buffer, position) of W at idx (a plain load), position a Lin in which n0 is a unit plain term."""
    ((buf, pos),) = reads(k, plan.b, tuple(idx)).loads
    return buf, pos


def gemv_plan(k: Kernel) -> GemvPlan | None:
    """The matrix-vector view of k, or None when k is not a float32 `x @ W` with few rows of x and W's
    rows along the outputs."""
    plan = gemm_plan(k)
    if plan is None or len(plan.k_axes) != 1 or not _is_plain_load(k, plan.b):
        return None
    shape = k.full_shape
    nbatch, m, n, kk = plan.sizes(shape)
    if m > MAX_ROWS or n < VEC:
        return None
    idx = _full_index(plan, shape, Lin.var("b", nbatch), Lin(), Lin.var("n0", n), Lin.var("k", kk))
    buf, pos = _weight_load(k, plan, idx)
    if buf.dtype.name != "float32" or pos.coefficient("n0") != 1 or not pos.is_affine:
        return None  # W read along the reduce, through a division, or not float32: not this kernel
    return GemvPlan(plan, m, n, kk, nbatch)


def default_gemv(gp: GemvPlan, compute_units: int = 1) -> tuple:
    """(NB, U): columns per work-item and reduce steps per loop trip. As few work-groups as keep every
    compute unit busy, so each streams the longest row segments: the work-item's segment of each row is
    read at the row's stride, and the shorter it is the more often the prefetchers restart (x @ W at
    4096x4096, PoCL device time: one thread 2.9-3.2 ms with 4096 columns against 3.8-4.0 ms with the
    former 1024; two threads 3.3-3.4 ms with 2048 against 3.8-4.0 with 1024, measured). Work-groups
    (column groups times batches) come in a multiple of the compute units so that none idles at the end,
    and a segment is capped at MAX_ACC accumulators so that they stay in any core's L1. 8 rows of W in
    flight per step (4 left a third of one core's DRAM bandwidth unused, measured)."""
    cu = max(1, compute_units)
    step = cu // math.gcd(cu, gp.nbatch)  # column groups per batch that make the total a multiple of cu
    groups = step
    while -(-gp.n // groups) * gp.rows > MAX_ACC:
        groups += step
    cols = -(-gp.n // groups)
    return (-(-cols // VEC) * VEC, 8 if gp.k >= 8 else 4 if gp.k >= 4 else 1)  # whole float8 loads


def render_gemv(k: Kernel, gp: GemvPlan, opts: KernelOpts) -> Program:
    """OpenCL C for k as a matrix-vector product with the (NB, U) in opts.gemv."""
    nb, unroll = opts.gemv
    nb = max(VEC, min(nb // VEC * VEC, gp.n // VEC * VEC))
    plan, shape = gp.gemm, k.full_shape
    chunks = nb // VEC
    groups = -(-gp.n // nb)
    r = ExprWriter(k, opts)
    emit = r.emit
    emit(f"int n0 = get_group_id(0)*{nb}; if (n0 > {gp.n - nb}) n0 = {gp.n - nb};")
    emit("int gb = get_group_id(1);")
    gb, n0 = Lin.var("gb", gp.nbatch), Lin.var("n0", gp.n)
    # float8 accumulators in a private array (L1): a work-item's columns can then span whole KiBs of a
    # row, which the hardware prefetchers stream far better than short segments at a row's stride
    emit(f"float8 accv[{gp.rows * chunks}];")
    emit(f"for (int c = 0; c < {gp.rows * chunks}; c++) accv[c] = (float8)(0.0f);")
    main = gp.k - gp.k % unroll
    for lo, hi, steps in ((0, main, unroll), (main, gp.k, 1)):
        if lo >= hi:
            continue
        emit(f"for (int k = {lo}; k < {hi}; k += {steps}) {{")
        r.indent += 1
        r.memo = {}
        # k's range as the loop runs it, so k+u needs no wrap-around in the index math
        kv = Lin.var("k", hi - steps + 1) if lo == 0 else Lin.var("k", hi)
        a_vals = [[r.expr(plan.a, tuple(_full_index(plan, shape, gb, Lin(const=m), Lin(), kv + u)), frozenset())
                   for u in range(steps)] for m in range(gp.rows)]
        w_pos = []
        for u in range(steps):
            buf, pos = _weight_load(k, plan, _full_index(plan, shape, gb, Lin(), n0, kv + u))
            w_pos.append((r.buf_index[buf.id], pos.render()))
        emit(f"for (int c = 0; c < {chunks}; c++) {{")
        r.indent += 1
        for u, (j, pos) in enumerate(w_pos):
            emit(f"float8 w{u} = *(const __global float8u*)(data{j}+{pos}+c*{VEC});")
        for m in range(gp.rows):
            emit(f"accv[{m * chunks}+c] += " + "+".join(f"{a}*w{u}" for u, a in enumerate(a_vals[m])) + ";")
        r.indent -= 1
        emit("}")
        r.indent -= 1
        emit("}")
    # epilogue: the fused elementwise ops after the reduce, one output at a time
    emit(f"for (int mm = 0; mm < {gp.rows}; mm++) for (int e = 0; e < {nb}; e++) {{")
    r.indent += 1
    emit("int n = n0 + e;")
    r.memo = {}
    r.acc_override = "acc"
    emit(f"float acc = ((float*)accv)[mm*{nb}+e];")
    oi = _full_index(plan, shape, gb, Lin.var("mm", gp.rows), Lin.var("n", gp.n), Lin())
    pos = linear(tuple(oi), k.reduce.shape)
    val = r.expr(k.out, unravel(pos, k.out.shape) if k.out.shape != k.reduce.shape else tuple(oi), frozenset())
    r.store(val, pos)
    r.indent -= 1
    emit("}")
    src, name = r.kernel_source()
    return Program(src, name, (groups, gp.nbatch), (1, 1), opts)


def gemv_candidates(gp: GemvPlan) -> list[KernelOpts]:
    """What WB_SEARCH times: columns per work-item (the length of the row segments it streams, against
    how many work-items share the cores) and the unroll of the reduce."""
    return [KernelOpts(gemv=(nb, u)) for nb in (64, 128, 256, 512, 1024, 2048) for u in (2, 4, 8) if nb <= gp.n]
